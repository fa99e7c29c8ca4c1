// SPDX-License-Identifier: Apache-2.0
#include "support/pebble.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/json.h"

namespace berth::test {

Pebble::Pebble(Options options)
    : options_(std::move(options)),
      port_(free_port()),
      management_port_(free_port()),
      tls_port_(free_port()) {
  if (options_.http_port == 0) {
    options_.http_port = free_port();
  }
}

Pebble::~Pebble() { stop(); }

bool Pebble::available() { return have("pebble"); }

std::string Pebble::directory_url() const {
  return "https://127.0.0.1:" + std::to_string(port_) + "/dir";
}

std::string Pebble::config() const {
  Json p = Json::object();
  p["listenAddress"] = "127.0.0.1:" + std::to_string(port_);
  p["managementListenAddress"] = "127.0.0.1:" + std::to_string(management_port_);
  p["certificate"] = dir_ / "pebble-tls.pem";
  p["privateKey"] = dir_ / "pebble-tls.key";
  p["httpPort"] = options_.http_port;
  p["tlsPort"] = tls_port_;
  p["ocspResponderURL"] = options_.ocsp_responder_url;
  p["externalAccountBindingRequired"] = false;
  if (!options_.blocked_domains.empty()) {
    p["domainBlocklist"] = options_.blocked_domains;
  }
  if (options_.certificate_validity_seconds != 0) {
    p["certificateValidityPeriod"] = options_.certificate_validity_seconds;
  }
  Json c = Json::object();
  c["pebble"] = std::move(p);
  return c.dump(2);
}

// Free ports are picked before pebble binds them, so another test process may take one in
// between ("address already in use"): then new ports, and again (three tries).
bool Pebble::start(std::string* why) {
  for (int attempt = 1;; ++attempt) {
    if (start_once(why)) {
      started_ = true;
      return true;
    }
    // A restart keeps its ports: the berthd under test knows the directory URL. Taken
    // meanwhile, it fails saying so rather than coming back where nobody looks.
    if (started_ || attempt == 3 || why->find("address already in use") == std::string::npos) {
      return false;
    }
    port_ = free_port();
    management_port_ = free_port();
    tls_port_ = free_port();
    ::unlink((dir_ / "pebble.log").c_str());
    why->clear();
  }
}

bool Pebble::start_once(std::string* why) {
  // Pebble's API certificate: P-256, for the address clients dial.
  auto gen = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" +
                 (dir_ / "pebble-tls.key") + "' -out '" + (dir_ / "pebble-tls.pem") +
                 "' -days 2 -subj /CN=pebble -addext subjectAltName=IP:127.0.0.1 2>&1");
  if (gen.code != 0) {
    *why = "openssl req: " + gen.all();
    return false;
  }
  write_file(dir_ / "pebble-config.json", config());
  std::string conf = dir_ / "pebble-config.json";
  std::string log_path = dir_ / "pebble.log";
  std::string dns = options_.dns_port == 0 ? "" : "127.0.0.1:" + std::to_string(options_.dns_port);
  std::string nonce = std::to_string(options_.nonce_reject_percent);
  std::string reuse = std::to_string(options_.authz_reuse_percent);
  std::vector<std::string> argv = {"pebble", "-config", conf, "-strict=false"};
  if (!dns.empty()) {
    argv.insert(argv.end(), {"-dnsserver", dns});
  }
  SpawnOptions opts;
  opts.env = {"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=" + nonce,
              "PEBBLE_AUTHZREUSE=" + reuse};
  pid_ = spawn_server(argv, log_path, opts);
  auto ready = [&] {
    auto r = run("curl -sf -m 2 --cacert '" + ca_bundle() + "' " + directory_url());
    return r.code == 0 && r.out.find("newOrder") != std::string::npos;
  };
  *why =
      wait_started(pid_, "pebble", ready, std::chrono::seconds(15), std::chrono::milliseconds(100));
  if (!why->empty()) {
    *why += ": " + log();
  }
  return why->empty();
}

void Pebble::stop() { stop_child(pid_, std::chrono::seconds(5)); }

std::string Pebble::management(const std::string& path, std::string* why) const {
  auto r = run("curl -sf -m 10 --cacert '" + ca_bundle() +
               "' https://127.0.0.1:" + std::to_string(management_port_) + path);
  if (r.code != 0 || r.out.find("-----BEGIN ") == std::string::npos) {
    *why = "GET " + path + ": " + r.all();
    return "";
  }
  return r.out;
}

std::string Pebble::log() const { return read_file(dir_ / "pebble.log"); }

}  // namespace berth::test
