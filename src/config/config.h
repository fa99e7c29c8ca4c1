// SPDX-License-Identifier: Apache-2.0
// berthd's typed configuration: defaults, the YAML file (version: 1), BERTH_* environment
// overrides and command-line flags, validated before any subsystem starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace berth::config {

/// Where blob content lives (docs/storage.md): DATA/blobs, or an S3 bucket.
struct StorageConfig {
  std::string driver = "fs";  // fs (DATA/blobs) | s3
  bool fsync = true;          // fsync blobs before they become visible
  struct S3 {
    std::string endpoint;  // http(s)://host[:port] of the S3 service
    std::string region = "us-east-1";
    std::string bucket;                  // created at start when missing
    std::string access_key_id_file;      // the access key id, read at start
    std::string secret_access_key_file;  // the secret, read at start
    bool path_style = true;              // host/bucket/key (RGW, MinIO) or bucket.host/key (AWS)
    bool redirect_pulls = false;         // blob GETs answer 307 to a presigned URL
    // The most disk the local copies of blobs (DATA/cache/blobs) take; least recently used
    // go first. 0 = no limit.
    uint64_t cache_size = uint64_t{10} << 30;
    bool cache_pushed = true;              // a pushed blob's checked spool becomes its local copy
    uint64_t cache_min_free_percent = 10;  // copies go to leave this much of the disk free
  } s3;
};

/// The metadata store's engine (docs/storage.md).
struct StoreConfig {
  std::string driver = "sqlite";  // sqlite (DATA/berth.db) | postgres
  struct Postgres {
    std::string dsn;            // libpq connection string; env BERTH_STORE_POSTGRES_DSN
    std::string password_file;  // optional: the password, read at start ("" = libpq's lookup)
    int max_connections = 16;   // 1..1024
    // How long one statement may wait for the server's answer before its connection is
    // dropped and the operation fails with 503 (1 s..1 h).
    std::chrono::seconds query_timeout{30};
  } postgres;
};

struct RegistryConfig {
  bool auto_create_repositories = false;
  std::chrono::seconds upload_ttl{24 * 3600};     // abandoned uploads are removed after this
  std::chrono::seconds gc_interval{0};            // 0 = no periodic gc
  std::chrono::seconds gc_grace{3600};            // blobs linked this recently are never collected
  std::chrono::seconds lifecycle_interval{3600};  // how often lifecycle rules run; 0 = never
  uint64_t max_manifest_bytes = 4 * 1024 * 1024;
  int max_upstream_fetches = 16;              // blobs fetched from upstreams at once; more queue
  std::chrono::seconds upstream_timeout{30};  // each step of a request to an upstream
};

struct IamConfig {
  bool enforce = true;                      // false: every request is allowed (loopback labs)
  std::chrono::seconds token_ttl{15 * 60};  // registry and API bearer tokens
};

struct TlsConfig {
  std::string cert_file;  // PEM certificate chain; with key_file, the listener speaks TLS only
  std::string key_file;   // PEM private key
  /// Who issues certificates for linked domains (docs/domains.md): "internal" (berth's own
  /// CA) or "acme" (acme.directory_url).
  std::string issuer = "internal";
  std::chrono::seconds internal_lifetime{90 * 24 * 3600};  // of berth's CA's certificates
  /// Check names outside berth's zones at their zones' own name servers (PENDING_DNS).
  bool dns_check = true;
  /// The recursive resolver those checks find the name servers through ("ADDR[:PORT]");
  /// empty: the first nameserver of /etc/resolv.conf.
  std::string dns_check_resolver;
};

/// The ACME server certificates come from when tls.issuer is acme.
struct AcmeConfig {
  std::string directory_url;  // https://acme-v02.api.letsencrypt.org/directory, or a test CA
  std::string email;          // contact for the account (optional)
  std::string ca_bundle;      // PEM file trusted for the ACME server's own TLS ("" = system)
  /// "auto": DNS-01 in zones berth hosts, HTTP-01 elsewhere; "http-01": HTTP-01 through the
  /// router (a wildcard still needs DNS-01); "dns-01": only DNS-01.
  std::string challenge = "auto";
};

struct RuntimeConfig {
  bool enabled = true;               // false: no services (registry and IAM only)
  std::string oci_runtime = "runc";  // the OCI runtime CLI: runc, or crun where it works
  bool userns = false;  // true: each instance in its own user namespace (docs/security.md)
};

/// Limits every listener has (the API/registry listener: `http.*`; the router: `router.*`).
/// Past a connection cap a new connection is closed at once; berthd lowers the caps at start
/// when the process's file-descriptor limit cannot hold them (and says so).
struct ListenerLimits {
  std::chrono::seconds header_timeout{30};     // a request head must arrive whole within this
  std::chrono::seconds keepalive_timeout{60};  // idle between requests on a kept-alive conn
  std::chrono::seconds body_timeout{60};       // a request body with nothing arriving
  uint64_t max_connections = 4096;             // open at once, in total
  uint64_t max_connections_per_address = 256;  // from one IPv4 address or IPv6 /64
};

struct HttpConfig : ListenerLimits {
  uint64_t max_header_bytes = 64 * 1024;
  uint64_t max_header_fields = 100;
};

struct RouterConfig : ListenerLimits {
  RouterConfig() {
    max_connections = 16384;
    max_connections_per_address = 1024;
  }
  std::chrono::seconds connect_timeout{5};    // to an instance
  std::chrono::seconds response_timeout{60};  // until the response head; bodies are not capped
  std::chrono::seconds idle_timeout{300};     // a streaming response or tunnel with no bytes
  bool redirect_http = true;  // plain HTTP to a service with a certificate -> 308 to HTTPS
  bool hsts = false;          // Strict-Transport-Security on HTTPS responses
  std::chrono::seconds hsts_max_age{365 * 24 * 3600};
  /// Idle kept-alive connections to one instance, per I/O thread. Below the streams in
  /// flight, every response past it closes its connection and the next request opens one.
  uint64_t max_idle_per_upstream = 1024;
};

struct BuildConfig {
  int max_concurrent = 1;              // builds running at once, 1..64
  bool allow_file_remotes = false;     // allow file:// git URLs in build projects (tests, labs)
  std::string builder_image;           // image buildspec.yml commands run in ("" = buildspecs fail)
  std::chrono::seconds timeout{3600};  // per build, SOURCE to PUSH
};

inline constexpr const char* kDefaultDnsListen = "127.0.0.1:5353";
inline constexpr const char* kDefaultRouterListen = "127.0.0.1:8080";
inline constexpr const char* kDefaultRouterTlsListen = "127.0.0.1:8443";

/// The authoritative DNS server (docs/dns.md).
struct DnsConfig {
  /// UDP+TCP addresses ("127.0.0.1:5353", "[::1]:5353"); --dns-listen, repeatable. Empty: the
  /// default, kDefaultDnsListen. (Not an initializer here: GCC 12 -O3 then warns falsely
  /// about every Config{} temporary.)
  std::vector<std::string> listen;
  bool enabled = true;  // `dns.listen: []`, `--dns-listen off`: no DNS server
  /// Name servers every zone lists; empty: ns1.<zone> with nameserver_addresses.
  std::vector<std::string> nameservers;
  /// Addresses of those name servers; empty: dns_nameserver_addresses() works them out.
  std::vector<std::string> nameserver_addresses;
  /// What an ALIAS to a service answers; empty: dns_service_addresses() works them out.
  std::vector<std::string> service_addresses;
  /// Where `berth domain link --registry` points a name; empty: dns_registry_addresses().
  std::vector<std::string> registry_addresses;
  int udp_threads = 0;  // UDP sockets per address; 0 = one per core
  uint64_t max_tcp_connections = 512;
  uint64_t max_tcp_connections_per_address = 64;
  std::chrono::seconds tcp_idle_timeout{10};
  uint64_t max_record_sets_per_zone = 100000;
};

/// The web console (docs/console.md).
struct ConsoleConfig {
  bool enabled = true;                          // false: no /console/ and no console sign-in
  std::chrono::seconds session_ttl{12 * 3600};  // a signed-in browser stays signed in this long
};

struct Config {
  std::string data_dir = "./var";
  std::string listen = "127.0.0.1:5000";
  /// Where services are served over plain HTTP ("127.0.0.1:8080", "[::1]:8080"); repeatable.
  /// Empty: kDefaultRouterListen.
  std::vector<std::string> router_listen;
  /// Where services are served over HTTPS; repeatable. Empty: kDefaultRouterTlsListen.
  std::vector<std::string> router_tls_listen;
  bool router_tls_enabled = true;         // `router_tls_listen: off` / `[]`: no TLS listener
  std::string apps_domain = "localhost";  // service web answers at web.<apps_domain>
  std::string log_level = "info";
  bool access_log = true;
  int io_threads = 0;        // 0 = number of cores
  int blocking_threads = 8;  // SQLite, fsync, whole-file hashing
  HttpConfig http;
  StorageConfig storage;
  StoreConfig store;
  RegistryConfig registry;
  IamConfig iam;
  TlsConfig tls;
  AcmeConfig acme;
  RuntimeConfig runtime;
  RouterConfig router;
  BuildConfig build;
  DnsConfig dns;
  ConsoleConfig console;
};

/// Loads a YAML file over the defaults. Errors name the key path ("registry.gc_interval: ...").
/// Relative paths in the file (data, tls.*_file, a runtime.oci_runtime with a '/') are taken
/// relative to the file's own directory and returned absolute.
Result<Config> load_file(const std::string& path);

/// Parses YAML text over the defaults.
Result<Config> load_string(const std::string& yaml_text);

/// Applies BERTH_<SECTION>_<KEY> environment overrides (BERTH_DATA, BERTH_LISTEN,
/// BERTH_REGISTRY_AUTO_CREATE_REPOSITORIES, ...).
Status apply_env(Config& cfg);

/// Makes every path setting that is still relative (the default ./var, or one from the
/// environment or a flag) absolute against the current directory, once at start: runc, git and
/// other children run in other directories, and a relative data dir broke them.
Status make_paths_absolute(Config& cfg);

/// Checks values that parse but make no sense (bad listen address, zero TTL, ...).
Status validate(const Config& cfg);

/// The addresses berth's DNS gives out (docs/dns.md): each setting when set, else the IP
/// addresses of the listeners it stands for, each once ("localhost" as 127.0.0.1; wildcards and
/// other names dropped: 0.0.0.0 is no address to give anyone, and an A record holds no name).
/// - name servers: dns.nameserver_addresses, else dns.listen's (none with DNS off);
/// - ALIASes to services: dns.service_addresses, else router_listen's and the router_tls_listen
///   addresses the user set (an IPv6 listener, even an HTTPS-only one, gives AAAA). Loopback
///   ones count only when every one is loopback: clients that asked the DNS cannot come to a
///   local proxy's 127.0.0.1 next to a public address;
/// - `domain link --registry` names: dns.registry_addresses, else the registry listener's.
std::vector<std::string> dns_nameserver_addresses(const Config& cfg);
std::vector<std::string> dns_service_addresses(const Config& cfg);
std::vector<std::string> dns_registry_addresses(const Config& cfg);

/// Splits "ADDR:PORT" ("127.0.0.1:5000", "[::1]:5000").
Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& listen);
/// The reverse: "127.0.0.1:5000", "[::1]:5000".
std::string join_host_port(const std::string& host, uint16_t port);

/// "90s", "15m", "1h", "2d" or a plain number of seconds.
Result<std::chrono::seconds> parse_duration(const std::string& text);

}  // namespace berth::config
