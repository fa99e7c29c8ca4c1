// SPDX-License-Identifier: Apache-2.0
#include "support/distribution.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

namespace berth::test {

Distribution::Distribution(Options options) : options_(std::move(options)), port_(free_port()) {}

Distribution::~Distribution() { stop(); }

bool Distribution::available() {
  return have("docker-registry") && have("htpasswd") && have("openssl");
}

std::string Distribution::url() const {
  return std::string(options_.tls ? "https" : "http") + "://" + host();
}

std::string Distribution::skopeo_dest_flags() const {
  std::string f = " --dest-tls-verify=false ";
  if (!options_.username.empty()) {
    f += "--dest-creds '" + options_.username + ":" + options_.password + "' ";
  }
  return f;
}

std::string Distribution::skopeo_src_flags() const {
  std::string f = " --src-tls-verify=false ";
  if (!options_.username.empty()) {
    f += "--src-creds '" + options_.username + ":" + options_.password + "' ";
  }
  return f;
}

std::string Distribution::skopeo_inspect_flags() const {
  std::string f = " --tls-verify=false ";
  if (!options_.username.empty()) {
    f += "--creds '" + options_.username + ":" + options_.password + "' ";
  }
  return f;
}

bool Distribution::start(std::string* why) {
  std::string conf =
      "version: 0.1\n"
      "log:\n  level: info\n  accesslog:\n    disabled: false\n"
      "storage:\n  filesystem:\n    rootdirectory: " +
      (dir_ / "data") +
      "\n  delete:\n    enabled: true\n"
      "http:\n  addr: 127.0.0.1:" +
      std::to_string(port_) + "\n";
  if (options_.tls) {
    if (::access(ca_file().c_str(), R_OK) != 0) {
      auto gen =
          run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
              "-keyout '" +
              (dir_ / "tls.key") + "' -out '" + ca_file() +
              "' -days 2 -subj /CN=distribution -addext subjectAltName=IP:127.0.0.1 2>&1");
      if (gen.code != 0) {
        *why = "openssl req: " + gen.all();
        return false;
      }
    }
    conf += "  tls:\n    certificate: " + ca_file() + "\n    key: " + (dir_ / "tls.key") + "\n";
  }
  if (!options_.username.empty()) {
    auto pw = run("htpasswd -Bbn '" + options_.username + "' '" + options_.password + "'");
    if (pw.code != 0) {
      *why = "htpasswd: " + pw.all();
      return false;
    }
    write_file(dir_ / "htpasswd", pw.out);
    conf += "auth:\n  htpasswd:\n    realm: test-realm\n    path: " + (dir_ / "htpasswd") + "\n";
  }
  write_file(dir_ / "config.yml", conf);
  std::string conf_path = dir_ / "config.yml";
  std::string log_path = dir_ / "registry.log";
  pid_ = spawn_server({"docker-registry", "serve", conf_path}, log_path);
  std::string auth =
      options_.username.empty() ? "" : " -u '" + options_.username + ":" + options_.password + "'";
  auto ready = [&] {
    return run("curl -sk -m 2 -o /dev/null -w '%{http_code}'" + auth + " " + url() + "/v2/").out ==
           "200";
  };
  *why = wait_started(pid_, "docker-registry", ready, std::chrono::seconds(15),
                      std::chrono::milliseconds(100));
  if (!why->empty()) {
    *why += ": " + log();
  }
  return why->empty();
}

void Distribution::stop() { stop_child(pid_, std::chrono::seconds(5)); }

int Distribution::count_requests(const std::string& needle) const {
  std::string text = log();
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

std::string Distribution::log() const { return read_file(dir_ / "registry.log"); }

}  // namespace berth::test
