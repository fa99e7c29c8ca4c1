// SPDX-License-Identifier: Apache-2.0
#include "support/nsd.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace berth::test {

Nsd::Nsd() : port_(free_port()) {}

Nsd::~Nsd() { stop(); }

bool Nsd::available() { return have("nsd") || run("test -x /usr/sbin/nsd").code == 0; }

void Nsd::add_primary(const std::string& zone, const std::string& zone_file) {
  write_file(dir_ / ("zones/" + zone + ".zone"), zone_file);
  zones_.push_back(Zone{zone, false, 0});
}

void Nsd::add_secondary(const std::string& zone, uint16_t primary_port) {
  zones_.push_back(Zone{zone, true, primary_port});
}

std::string Nsd::config() const {
  const std::string& d = dir_.path();
  std::string c = "server:\n";
  c += "  ip-address: 127.0.0.1\n";
  c += "  port: " + std::to_string(port_) + "\n";
  c += "  username: \"\"\n";
  c += "  chroot: \"\"\n";
  c += "  zonesdir: \"" + d + "/zones\"\n";
  c += "  pidfile: \"" + d + "/nsd.pid\"\n";
  c += "  xfrdfile: \"" + d + "/xfrd.state\"\n";
  c += "  zonelistfile: \"" + d + "/zone.list\"\n";
  c += "  xfrdir: \"" + d + "/xfr\"\n";
  c += "  database: \"\"\n";
  c += "  server-count: 1\n";
  c += "  verbosity: 1\n";
  c += "  hide-version: yes\n";
  c += "  rrl-ratelimit: 0\n";  // response rate limiting would drop or TC test queries
  c += "remote-control:\n  control-enable: no\n";
  for (const auto& z : zones_) {
    c += "zone:\n  name: \"" + z.name + "\"\n";
    if (z.secondary) {
      // Written by NSD after each transfer, so a restart would start from it.
      c += "  zonefile: \"" + z.name + ".secondary.zone\"\n";
      c += "  request-xfr: 127.0.0.1@" + std::to_string(z.primary_port) + " NOKEY\n";
      c += "  allow-notify: 127.0.0.1 NOKEY\n";
    } else {
      c += "  zonefile: \"" + z.name + ".zone\"\n";
    }
  }
  return c;
}

bool Nsd::start(std::string* why) {
  run("mkdir -p '" + (dir_ / "zones") + "' '" + (dir_ / "xfr") + "'");
  write_file(dir_ / "nsd.conf", config());
  std::string nsd_bin = have("nsd") ? "nsd" : "/usr/sbin/nsd";
  std::string conf = dir_ / "nsd.conf";
  std::string log_path = dir_ / "nsd.log";
  pid_ = spawn_server({nsd_bin, "-d", "-c", conf}, log_path);
  // Any reply (even SERVFAIL from a secondary not yet transferred) means it is serving.
  std::string zone = zones_.empty() ? "." : zones_.front().name;
  *why = wait_started(
      pid_, "nsd", [&] { return dig("+time=1 +tries=1 +norec " + zone + " SOA").code == 0; },
      std::chrono::seconds(15), std::chrono::milliseconds(100));
  if (!why->empty()) {
    *why += ": " + log();
  }
  return why->empty();
}

void Nsd::stop() {
  stop_child(pid_, std::chrono::seconds(5));
  // NSD's server child may outlive the parent for a moment; the pidfile names the parent
  // only, so nothing else to reap here.
}

std::string Nsd::log() const { return read_file(dir_ / "nsd.log"); }

CmdResult Nsd::dig(const std::string& args) const {
  return run("dig @127.0.0.1 -p " + std::to_string(port_) + " " + args);
}

}  // namespace berth::test
