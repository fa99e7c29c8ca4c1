// SPDX-License-Identifier: Apache-2.0
#include "support/rgw.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>
#include <vector>

#include "support/shared_servers.h"

namespace berth::test {

namespace {

const char* const kTools[] = {"ceph-mon",      "ceph-osd",   "radosgw",
                              "radosgw-admin", "monmaptool", "ceph"};

bool port_answers(uint16_t port) {
  int fd = connect_loopback(port);
  if (fd >= 0) {
    ::close(fd);
  }
  return fd >= 0;
}

void kill_child(pid_t& pid) { stop_child(pid, std::chrono::milliseconds(0), SIGKILL); }

}  // namespace

RgwServer::RgwServer() : own_dir_(std::make_unique<TempDir>()), dir_(own_dir_->path()) {
  for (const char* tool : kTools) {
    if (!have(tool)) {
      error_ = std::string(tool) +
               " is not installed (scripts/setup --test installs radosgw, ceph-mon and ceph-osd)";
      return;
    }
  }
  auto started = std::chrono::steady_clock::now();
  if (!bootstrap()) {
    kill_child(rgw_pid_);
    kill_child(osd_pid_);
    kill_child(mon_pid_);
    return;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started);
  std::fprintf(stderr, "[rgw] single-node Ceph + radosgw on 127.0.0.1:%u up in %lld ms (%s)\n",
               rgw_port_, static_cast<long long>(ms.count()), dir_.c_str());
}

RgwServer::RgwServer(const SharedRgw& s)
    : dir_(s.dir),
      rgw_port_(s.port),
      region_(s.region),
      access_key_(s.access_key),
      secret_key_(s.secret_key),
      attached_(true) {
  std::error_code ec;
  auto size = std::filesystem::file_size(dir_ + "/log/client.rgw.log", ec);
  log_from_ = ec ? 0 : size;
}

RgwServer::~RgwServer() {
  if (attached_ && !made_.empty()) {
    // For the holder to delete (purge_done_buckets): one append, so that processes ending at
    // once do not interleave their lines.
    std::string lines;
    for (const auto& b : made_) {
      lines += b + "\n";
    }
    std::ofstream(dir_ + "/" + kDoneBuckets, std::ios::app) << lines << std::flush;
  }
  kill_child(rgw_pid_);
  kill_child(osd_pid_);
  kill_child(mon_pid_);
}

std::string RgwServer::endpoint() const { return "http://127.0.0.1:" + std::to_string(rgw_port_); }

storage::S3Options RgwServer::client_options(const std::string& bucket) const {
  storage::S3Options o;
  o.endpoint = endpoint();
  o.region = region_;
  o.bucket = bucket;
  o.access_key_id = access_key_;
  o.secret_access_key = secret_key_;
  return o;
}

CmdResult RgwServer::ceph_tool(const std::string& tool, const std::string& args) const {
  // The tools wait for the monitor for minutes by default: a broken cluster must fail fast.
  return run("timeout 60 " + tool + " -c '" + conf_ + "' " + args);
}

pid_t RgwServer::spawn(const std::string& name, const std::string& args) {
  return spawn_server({"/bin/bash", "-c", "exec " + name + " -f -c '" + conf_ + "' " + args},
                      dir_ + "/log/" + name + ".out");
}

std::string RgwServer::log_tail(const std::string& name) const {
  return "\n" + name + ".log: " + tail_of(read_file(dir_ + "/log/" + name + ".log")) + "\n" + name +
         ".out: " + tail_of(read_file(dir_ + "/log/" + name + ".out"));
}

bool RgwServer::bootstrap() {
  const std::string& d = dir_;
  for (const char* sub : {"run", "log", "mon/a", "osd/0", "crash", "rgw"}) {
    std::filesystem::create_directories(d + "/" + sub);
  }
  conf_ = d + "/ceph.conf";
  mon_port_ = free_port();
  rgw_port_ = free_port();
  std::string fsid = trimmed(read_file("/proc/sys/kernel/random/uuid"));
  std::string mon_addr = "v2:127.0.0.1:" + std::to_string(mon_port_);
  // Without cephx a connection can only be checksummed (crc), never "secure": the client
  // modes must say so, or radosgw retries its monitor handshake for five minutes (EACCES).
  // The pg and free-space limits are for a one-OSD cluster on a test machine's /tmp. The
  // monitor's paxos batching (1 s per proposal by default) is what makes a cold start slow:
  // radosgw's first start creates pools one proposal at a time (13 s with defaults, 2.5 s so).
  write_file(conf_,
             "[global]\n"
             "fsid = " +
                 fsid +
                 "\n"
                 "mon host = " +
                 mon_addr +
                 "\n"
                 "public addr = 127.0.0.1\n"
                 "ms bind ipv6 = false\n"
                 "ms bind msgr1 = false\n"
                 "ms mon client mode = crc\n"
                 "ms client mode = crc\n"
                 "auth cluster required = none\n"
                 "auth service required = none\n"
                 "auth client required = none\n"
                 "osd objectstore = memstore\n"
                 "memstore device bytes = 4294967296\n"
                 "osd pool default size = 1\n"
                 "osd pool default min size = 1\n"
                 "osd pool default pg num = 1\n"
                 "osd pool default pgp num = 1\n"
                 "osd pool default pg autoscale mode = off\n"
                 "mon allow pool size one = true\n"
                 "mon max pg per osd = 1000\n"
                 "mon data avail crit = 1\n"
                 "mon data avail warn = 2\n"
                 "paxos propose interval = 0.01\n"
                 "paxos min wait = 0.001\n"
                 "osd mon report interval = 1\n"
                 // A radosgw that was killed (stop()) keeps its watches on the control objects
                 // until they time out, and the next one's first bucket creation waits for
                 // them: 30 s by default.
                 "osd client watch timeout = 3\n"
                 "run dir = " +
                 d +
                 "/run\n"
                 "admin socket = " +
                 d +
                 "/run/$name.asok\n"
                 "pid file = " +
                 d +
                 "/run/$name.pid\n"
                 "log file = " +
                 d +
                 "/log/$name.log\n"
                 // The monitor's cluster and audit logs would go to /var/log/ceph.
                 "mon cluster log file = " +
                 d +
                 "/log/$cluster.$channel.log\n"
                 "crash dir = " +
                 d +
                 "/crash\n"
                 "keyring = " +
                 d +
                 "/keyring\n"
                 "mon data = " +
                 d +
                 "/mon/$id\n"
                 "osd data = " +
                 d +
                 "/osd/$id\n"
                 "rgw data = " +
                 d +
                 "/rgw\n"
                 "[mon.a]\n"
                 "mon addr = " +
                 mon_addr + "\n");
  auto r = run("monmaptool --create --fsid " + fsid + " --addv a '[" + mon_addr + "]' '" + d +
               "/monmap'");
  if (r.code != 0) {
    error_ = "monmaptool failed: " + tail_of(r.all());
    return false;
  }
  r = run("ceph-mon -c '" + conf_ + "' --mkfs -i a --monmap '" + d + "/monmap'");
  if (r.code != 0) {
    error_ = "ceph-mon --mkfs failed: " + tail_of(r.all());
    return false;
  }
  mon_pid_ = spawn("ceph-mon", "-i a");
  std::string osd_uuid = trimmed(read_file("/proc/sys/kernel/random/uuid"));
  r = ceph_tool("ceph", "--connect-timeout 30 osd new " + osd_uuid);
  if (r.code != 0 || trimmed(r.out) != "0") {
    error_ = "ceph osd new failed (is the monitor up?): " + tail_of(r.all()) + log_tail("mon.a");
    return false;
  }
  r = ceph_tool("ceph-osd", "-i 0 --mkfs --osd-uuid " + osd_uuid);
  if (r.code != 0) {
    error_ = "ceph-osd --mkfs failed: " + tail_of(r.all());
    return false;
  }
  osd_pid_ = spawn("ceph-osd", "-i 0");
  if (!wait_osd_up()) {
    return false;
  }
  if (!start()) {
    return false;
  }
  access_key_ = random_text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 20);
  secret_key_ = random_text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 40);
  r = ceph_tool("radosgw-admin",
                "user create --uid berth-test --display-name berth-test --max-buckets 100000 "
                "--access-key " +
                    access_key_ + " --secret-key " + secret_key_);
  if (r.code != 0) {
    error_ = "radosgw-admin user create failed: " + tail_of(r.all());
    return false;
  }
  return true;
}

bool RgwServer::wait_osd_up() {
  auto up = [&] {
    auto r = ceph_tool("ceph", "--connect-timeout 10 osd stat");
    return r.code == 0 && r.out.find("1 up") != std::string::npos;
  };
  error_ = wait_started(osd_pid_, "ceph-osd", up, std::chrono::seconds(60),
                        std::chrono::milliseconds(200));
  if (!error_.empty()) {
    error_ += log_tail("osd.0");
  }
  return error_.empty();
}

bool RgwServer::refuse_shared() const {
  if (attached_) {
    ADD_FAILURE() << "a test that stops or starts radosgw needs a cluster of its own: call "
                     "RgwServer::use_own() before anything uses RgwServer::shared()";
  }
  return attached_;
}

bool RgwServer::start() {
  if (refuse_shared()) {
    return false;
  }
  if (rgw_pid_ > 0) {
    return true;
  }
  rgw_pid_ = spawn("radosgw", "-n client.rgw --rgw-frontends 'beast endpoint=127.0.0.1:" +
                                  std::to_string(rgw_port_) + "'");
  // The first start creates radosgw's pools; later ones find them.
  error_ = wait_started(
      rgw_pid_, "radosgw on 127.0.0.1:" + std::to_string(rgw_port_),
      [&] { return port_answers(rgw_port_); }, std::chrono::seconds(60));
  if (!error_.empty()) {
    kill_child(rgw_pid_);
    error_ += log_tail("client.rgw");
  }
  return error_.empty();
}

void RgwServer::stop() {
  if (!refuse_shared()) {
    kill_child(rgw_pid_);
  }
}

std::string RgwServer::log() const {
  // The shared cluster's log covers the whole run: read only this process's part.
  std::ifstream in(dir_ + "/log/client.rgw.log", std::ios::binary);
  in.seekg(static_cast<std::streamoff>(log_from_));
  return in ? std::string(std::istreambuf_iterator<char>(in), {}) : std::string();
}

std::string RgwServer::curl_s3() const {
  return "curl -s --aws-sigv4 'aws:amz:" + region_ + ":s3' -u '" + access_key_ + ":" + secret_key_ +
         "' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' ";
}

std::string RgwServer::create_bucket() {
  // Unique across the test processes sharing a cluster, and across a pid used again.
  std::string name = "t";  // (GCC 12's -Wrestrict misfires on "t" + std::to_string(...))
  name.append(std::to_string(::getpid()))
      .append("-")
      .append(std::to_string(made_.size() + 1))
      .append("-")
      .append(random_text("abcdefghijklmnopqrstuvwxyz0123456789", 6));
  auto r = run(curl_s3() + "-o /dev/null -w '%{http_code}' -X PUT " + endpoint() + "/" + name);
  EXPECT_EQ(r.out, "200") << "create bucket " << name << ": " << r.all();
  if (r.out != "200") {
    return {};
  }
  made_.push_back(name);
  return name;
}

int RgwServer::purge_done_buckets() {
  std::ifstream in(dir_ + "/" + kDoneBuckets);
  in.seekg(static_cast<std::streamoff>(done_read_));
  int purged = 0;
  std::string name;
  // Whole lines only: a process may be writing the next one.
  while (in && std::getline(in, name) && !in.eof()) {
    done_read_ += name.size() + 1;
    auto r =
        ceph_tool("radosgw-admin", "bucket rm --bucket='" + name + "' --purge-objects --bypass-gc");
    if (r.code == 0) {
      ++purged;
    } else {  // into the holder's log; the bucket stays until the cluster stops
      std::fprintf(stderr, "deleting bucket %s failed: %s\n", name.c_str(),
                   tail_of(r.all()).c_str());
    }
  }
  return purged;
}

namespace {

struct Own {
  std::unique_ptr<RgwServer> server = std::make_unique<RgwServer>();
  bool ok = server->running();
  std::string error = server->error();
};

Own& own_state() {
  static Own s;
  return s;
}

bool& use_own_flag() {
  static bool flag = false;
  return flag;
}

}  // namespace

void RgwServer::use_own() { use_own_flag() = true; }

RgwServer* RgwServer::shared() {
  if (!use_own_flag() && shared_rgw()) {
    static RgwServer attached(*shared_rgw());
    return &attached;
  }
  auto& s = own_state();
  if (!s.ok) {
    server_missing("RGW cannot run here: " + s.error);
    return nullptr;
  }
  return s.server.get();
}

const std::string& RgwServer::shared_error() {
  static const std::string none;
  return !use_own_flag() && shared_rgw() ? none : own_state().error;
}

size_t wait_for_multipart_uploads(storage::S3Client& s3, const std::string& prefix) {
  size_t n = 0;
  eventually(
      [&] {
        auto ups = s3.list_multipart_uploads(prefix);
        n = ups ? ups->size() : 0;
        return n > 0;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(100));
  return n;
}

}  // namespace berth::test
