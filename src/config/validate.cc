// SPDX-License-Identifier: Apache-2.0
// validate(): the checks a whole configuration must pass before berthd starts (addresses,
// ranges, combinations, files it must read), and split_host_port().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "config/config.h"
#include "config/internal.h"

namespace berth::config {

namespace {

// "repo/name", "repo/name:tag" or "repo/name@sha256:<hex>": the shape only (the build
// service resolves it in the registry, which has the full grammar).
bool plausible_image(const std::string& image) {
  auto sep = image.find_first_of(":@");
  std::string repo = image.substr(0, sep);
  if (repo.empty() || repo.front() == '/' || repo.back() == '/' ||
      repo.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-/") != std::string::npos) {
    return false;
  }
  if (sep == std::string::npos) {
    return true;
  }
  std::string rest = image.substr(sep + 1);
  if (image[sep] == '@') {
    return rest.size() == 71 && rest.rfind("sha256:", 0) == 0 &&
           rest.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
  }
  return !rest.empty() && rest.size() <= 128 && rest.front() != '.' && rest.front() != '-' &&
         rest.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos;
}

}  // namespace

std::string join_host_port(const std::string& host, uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& listen) {
  auto bad_listen = [&](const std::string& why) {
    return bad("listen", why + " in '" + listen + "' (expected ADDR:PORT or [IPv6]:PORT)");
  };
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return bad_listen("no port");
  }
  std::string host = listen.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return bad_listen("malformed IPv6 address");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad_listen("IPv6 addresses need brackets");
  }
  std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stol(port) > 65535) {
    return bad_listen("invalid port");
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stol(port)));
}

namespace {

// S3's rules for bucket names that work with both addressing styles.
bool valid_bucket(const std::string& b) {
  return b.size() >= 3 && b.size() <= 63 &&
         b.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") == std::string::npos &&
         b.front() != '-' && b.front() != '.' && b.back() != '-' && b.back() != '.';
}

Status validate_storage(const StorageConfig& st) {
  if (st.driver != "fs" && st.driver != "s3") {
    return bad("storage.driver", "'" + st.driver + "' is not a blob storage (fs or s3)");
  }
  if (st.driver != "s3") {
    return ok();
  }
  const auto& s3 = st.s3;
  bool http = s3.endpoint.rfind("http://", 0) == 0, https = s3.endpoint.rfind("https://", 0) == 0;
  std::string rest = http ? s3.endpoint.substr(7) : https ? s3.endpoint.substr(8) : "";
  while (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  if (rest.empty() || rest.find('/') != std::string::npos) {
    return bad("storage.s3.endpoint",
               "storage.driver is s3: set the service's URL, http(s)://HOST[:PORT] without a "
               "path (got '" +
                   s3.endpoint + "')");
  }
  if (s3.region.empty()) {
    return bad("storage.s3.region", "must not be empty (us-east-1 for RGW and MinIO)");
  }
  if (!valid_bucket(s3.bucket)) {
    return bad("storage.s3.bucket",
               "expected an S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a "
               "letter or digit), got '" +
                   s3.bucket + "'");
  }
  for (const auto& [key, file] :
       {std::pair{"storage.s3.access_key_id_file", &s3.access_key_id_file},
        std::pair{"storage.s3.secret_access_key_file", &s3.secret_access_key_file}}) {
    if (file->empty()) {
      return bad(key, "storage.driver is s3: set the file that holds the key");
    }
    if (::access(file->c_str(), R_OK) != 0) {
      return bad(key, *file + ": cannot read the file");
    }
  }
  return ok();
}

}  // namespace

Status validate(const Config& cfg) {
  BERTH_TRY(split_host_port(cfg.listen));
  for (const auto& [key, list] : {std::pair{"router_listen", &cfg.router_listen},
                                  std::pair{"router_tls_listen", &cfg.router_tls_listen}}) {
    for (const auto& a : *list) {
      if (!split_host_port(a)) {
        return bad(key, "expected ADDR:PORT or [IPv6]:PORT, got '" + a + "'");
      }
    }
  }
  if (cfg.router.hsts_max_age.count() < 0) {
    return bad("router.hsts_max_age", "must not be negative");
  }
  if (cfg.apps_domain.empty() || cfg.apps_domain.front() == '.' || cfg.apps_domain.back() == '.' ||
      cfg.apps_domain.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") !=
          std::string::npos) {
    return bad("apps_domain", "expected a lower-case DNS name like apps.example.com, got '" +
                                  cfg.apps_domain + "'");
  }
  if (cfg.data_dir.empty()) {
    return bad("data", "must not be empty");
  }
  BERTH_TRY(validate_storage(cfg.storage));
  if (cfg.store.driver != "sqlite" && cfg.store.driver != "postgres") {
    return bad("store.driver", "'" + cfg.store.driver + "' is not a store (sqlite or postgres)");
  }
  if (cfg.store.driver == "postgres" && cfg.store.postgres.dsn.empty()) {
    return bad("store.postgres.dsn",
               "store.driver is postgres: set the connection string (\"host=... dbname=... "
               "user=...\") or BERTH_STORE_POSTGRES_DSN");
  }
  if (cfg.store.postgres.max_connections < 1 || cfg.store.postgres.max_connections > 1024) {
    return bad("store.postgres.max_connections",
               "must be 1..1024, got " + std::to_string(cfg.store.postgres.max_connections));
  }
  if (cfg.store.postgres.query_timeout < std::chrono::seconds(1) ||
      cfg.store.postgres.query_timeout > std::chrono::hours(1)) {
    return bad(
        "store.postgres.query_timeout",
        "must be 1s..1h, got " + std::to_string(cfg.store.postgres.query_timeout.count()) + "s");
  }
  if (cfg.registry.upload_ttl.count() <= 0) {
    return bad("registry.upload_ttl", "must be positive");
  }
  if (cfg.tls.cert_file.empty() != cfg.tls.key_file.empty()) {
    return bad(cfg.tls.cert_file.empty() ? "tls.cert_file" : "tls.key_file",
               "set both tls.cert_file and tls.key_file, or neither");
  }
  if (const auto& r = cfg.tls.dns_check_resolver; !r.empty()) {
    auto is_ip = [](const std::string& h) {
      in_addr a4{};
      in6_addr a6{};
      return ::inet_pton(AF_INET, h.c_str(), &a4) == 1 ||
             ::inet_pton(AF_INET6, h.c_str(), &a6) == 1;
    };
    auto hp = split_host_port(r);
    if (!is_ip(r) && !(hp && is_ip(hp->first) && hp->second != 0)) {
      return bad("tls.dns_check_resolver",
                 "'" + r +
                     "' is not an IP address with an optional port (127.0.0.53, "
                     "[::1]:5353)");
    }
  }
  if (cfg.tls.issuer == "acme" && cfg.acme.directory_url.rfind("https://", 0) != 0) {
    return bad("acme.directory_url",
               cfg.acme.directory_url.empty()
                   ? "tls.issuer is acme: set the ACME server's https:// directory URL"
                   : "'" + cfg.acme.directory_url +
                         "' is not an https:// URL (ACME runs over TLS only, RFC 8555 6.1)");
  }
  if (cfg.tls.internal_lifetime.count() < 10) {
    return bad("tls.internal_lifetime", "must be at least 10s");
  }
  if (!cfg.acme.ca_bundle.empty() && ::access(cfg.acme.ca_bundle.c_str(), R_OK) != 0) {
    return bad("acme.ca_bundle", cfg.acme.ca_bundle + ": cannot read the file");
  }
  for (const auto* f : {&cfg.tls.cert_file, &cfg.tls.key_file}) {
    if (!f->empty() && ::access(f->c_str(), R_OK) != 0) {
      return bad(f == &cfg.tls.cert_file ? "tls.cert_file" : "tls.key_file",
                 *f + ": cannot read the file");
    }
  }
  if (cfg.iam.token_ttl.count() < 60) {
    return bad("iam.token_ttl", "must be at least 60s");
  }
  if (cfg.registry.gc_grace.count() < 0 || cfg.registry.gc_interval.count() < 0) {
    return bad("registry.gc_grace", "durations must not be negative");
  }
  if (cfg.registry.lifecycle_interval.count() < 0) {
    return bad("registry.lifecycle_interval", "must not be negative (0 turns it off)");
  }
  if (cfg.registry.max_upstream_fetches < 1 || cfg.registry.max_upstream_fetches > 1024) {
    return bad("registry.max_upstream_fetches", "must be between 1 and 1024");
  }
  if (cfg.registry.upstream_timeout.count() < 1) {
    return bad("registry.upstream_timeout", "must be at least 1s");
  }
  if (cfg.console.session_ttl.count() < 60 || cfg.console.session_ttl.count() > 30 * 86400) {
    return bad("console.session_ttl", "must be between 60s and 30d");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool level_ok = false;
  for (auto* l : kLevels) {
    level_ok = level_ok || cfg.log_level == l;
  }
  if (!level_ok) {
    return bad("log_level", "expected trace, debug, info, warn, error or off");
  }
  for (auto [key, d] : {std::pair{"router.connect_timeout", cfg.router.connect_timeout},
                        std::pair{"router.response_timeout", cfg.router.response_timeout},
                        std::pair{"router.idle_timeout", cfg.router.idle_timeout},
                        std::pair{"router.header_timeout", cfg.router.header_timeout},
                        std::pair{"router.keepalive_timeout", cfg.router.keepalive_timeout},
                        std::pair{"router.body_timeout", cfg.router.body_timeout},
                        std::pair{"http.header_timeout", cfg.http.header_timeout},
                        std::pair{"http.keepalive_timeout", cfg.http.keepalive_timeout},
                        std::pair{"http.body_timeout", cfg.http.body_timeout}}) {
    if (d.count() < 1) {
      return bad(key, "must be at least 1s");
    }
  }
  if (cfg.build.max_concurrent < 1 || cfg.build.max_concurrent > 64) {
    return bad("build.max_concurrent",
               "expected a number from 1 to 64, got " + std::to_string(cfg.build.max_concurrent));
  }
  if (cfg.build.timeout.count() < 1) {
    return bad("build.timeout", "must be at least 1s");
  }
  if (!cfg.build.builder_image.empty() && !plausible_image(cfg.build.builder_image)) {
    return bad("build.builder_image",
               "expected an image in berth's registry like tools/builder:1, got '" +
                   cfg.build.builder_image + "'");
  }
  for (const auto& a : cfg.dns.listen) {
    if (!split_host_port(a)) {
      return bad("dns.listen", "expected ADDR:PORT or [IPv6]:PORT, got '" + a + "'");
    }
  }
  for (const auto* list :
       {&cfg.dns.nameserver_addresses, &cfg.dns.service_addresses, &cfg.dns.registry_addresses}) {
    for (const auto& a : *list) {
      if (a.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos || a.empty()) {
        return bad(list == &cfg.dns.service_addresses    ? "dns.service_addresses"
                   : list == &cfg.dns.registry_addresses ? "dns.registry_addresses"
                                                         : "dns.nameserver_addresses",
                   "expected IP addresses, got '" + a + "'");
      }
    }
  }
  for (const auto& n : cfg.dns.nameservers) {
    if (n.empty() ||
        n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos ||
        n.front() == '.') {
      return bad("dns.nameservers",
                 "expected lower-case host names like ns1.example.com, got '" + n + "'");
    }
  }
  if (cfg.dns.tcp_idle_timeout.count() < 1) {
    return bad("dns.tcp_idle_timeout", "must be at least 1s");
  }
  if (cfg.blocking_threads < 1) {
    return bad("blocking_threads", "must be at least 1");
  }
  return ok();
}

}  // namespace berth::config
