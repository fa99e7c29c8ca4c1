// SPDX-License-Identifier: Apache-2.0
// Custom domains: `berth domain link web example.com --www` makes a service answer on the
// user's own names over HTTPS (docs/domains.md). Linking runs in three steps, each recorded
// on the domain so that `domain show` tells where it stands:
//   1. DNS: in a zone berth hosts, link writes an ALIAS to the service (and remembers exactly
//      which records it wrote, so unlink removes those and never the user's own); elsewhere
//      the domain waits in PENDING_DNS, listing the records the user must create.
//   2. Certificate: from berth's own CA at once (tls.issuer: internal), or from an ACME server
//      (tls.issuer: acme), answering DNS-01 in berth's zones and HTTP-01 through the router.
//   3. Route: ACTIVE, the router serves the name over HTTPS with the certificate.
// Certificates are renewed at two thirds of their lifetime with back-off on failure; a
// failed renewal keeps the old certificate serving and shows the error on the domain.
//
// The store is the truth (objects of kind "domain", "certificate" and "tls"); private keys
// are sealed with the data directory's SecretBox. One worker thread runs link jobs and
// renewals one at a time, since an ACME order blocks for seconds.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "tls/tls.h"

namespace berth {
class SecretBox;
}  // namespace berth
namespace berth::store {
class MetadataStore;
}  // namespace berth::store
namespace berth::dns {
class Service;
}  // namespace berth::dns

namespace berth::domains {

inline constexpr const char* kLinking = "LINKING";  // queued, the worker has not run yet
inline constexpr const char* kPendingDns = "PENDING_DNS";
inline constexpr const char* kPendingCertificate = "PENDING_CERTIFICATE";
inline constexpr const char* kActive = "ACTIVE";
inline constexpr const char* kFailed = "FAILED";

/// One step of a link as `domain show` prints it.
struct Step {
  std::string step;    // "dns", "certificate", "route"
  std::string status;  // "pending", "done", "failed"
  std::string detail;  // what was done, or why it failed
  int64_t at = 0;      // unix seconds of the last change
};

/// A record set that link wrote into one of berth's zones (and unlink removes while it still
/// holds what link wrote: a set the user has changed since is theirs).
struct CreatedRecord {
  std::string zone;
  std::string name;
  std::string type;
  /// What link wrote (record_content): "service web" for an ALIAS, else the sorted values.
  /// Empty in rows from before berth kept it: removed whatever it holds.
  std::vector<std::string> content;
};

struct Domain {
  std::string name;     // "example.com", "www.example.com", "*.preview.example.com"
  std::string service;  // the service it routes to ("" for the registry)
  /// Linked with --registry: the name is berthd's own registry/API listener, served over TLS
  /// there (records point at Settings::registry_addresses; no router route).
  bool registry = false;
  std::string status;  // kLinking, kPendingDns, kPendingCertificate, kActive, kFailed
  std::string issuer;  // "internal" or "acme"
  std::string group;   // the name it was linked with (apex for --www pairs)
  std::vector<Step> steps;
  std::vector<CreatedRecord> records;
  /// PENDING_DNS: the records the user must create at their DNS host, zone-file lines.
  std::vector<std::string> required_records;
  std::string certificate;  // id of the certificate that covers it ("" until issued)
  int64_t expires_at = 0;   // the certificate's notAfter (unix seconds)
  std::string serial;       // the certificate's serial number (lower-case hex)
  int64_t renew_at = 0;     // when renewal starts
  int64_t retry_at = 0;     // after a failed renewal: when it is tried again (0: none pending)
  std::string last_error;   // of the last failed step or renewal ("" when none)
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

/// What the router needs for one linked name.
struct HostRoute {
  std::string service;
  bool https_redirect = true;
  bool hsts = false;
};

struct Settings {
  std::string issuer = "internal";      // tls.issuer: internal | acme
  std::string acme_directory_url;       // acme.directory_url
  std::string acme_email;               // acme.email
  std::string acme_ca_bundle;           // acme.ca_bundle: trust for the ACME server's own TLS
  std::string acme_challenge = "auto";  // acme.challenge: auto, http-01 or dns-01
  /// Lifetime of certificates from berth's CA (tls.internal_lifetime).
  std::chrono::seconds internal_lifetime{90 * 24 * 3600};
  bool redirect_http = true;  // router.redirect_http
  /// The router serves HTTPS (router_tls_listen is not off); without it a linked name is
  /// ACTIVE over plain HTTP only, and its route step says so.
  bool https = true;
  bool hsts = false;  // router.hsts
  /// How often the worker looks for certificates to renew and PENDING_DNS names to recheck.
  std::chrono::seconds check_interval{60};
  /// Addresses the user's records must point at for names outside berth's zones (the
  /// router's public addresses; dns.service_addresses).
  std::vector<std::string> service_addresses;
  /// Where a name linked with --registry must point: the addresses clients reach berthd's
  /// registry/API listener at (dns.registry_addresses; default: its listen address).
  std::vector<std::string> registry_addresses;
  /// Check names outside berth's zones at their zones' own name servers (off in tests, whose
  /// machines must not send queries off the host), found through dns_check_resolver ("":
  /// /etc/resolv.conf's).
  bool dns_check = true;
  std::string dns_check_resolver;
};

/// How the manager reaches the rest of berthd (the daemon wires these).
struct Hooks {
  /// Whether a service exists (link refuses unknown services).
  std::function<bool(const std::string& service)> service_exists;
  /// Every ACTIVE name -> its route. Called after each change, from the worker or a caller.
  std::function<void(std::map<std::string, HostRoute>)> publish_routes;
  /// The certificates ACTIVE names use: the router's (services' names) and, apart, the
  /// registry/API listener's (names linked with --registry), so that neither listener answers
  /// under the other's names.
  std::function<void(std::vector<tls::Certificate> router, std::vector<tls::Certificate> registry)>
      publish_certificates;
  /// ACME HTTP-01: token -> key authorization, served by the router.
  std::function<void(std::shared_ptr<const std::unordered_map<std::string, std::string>>)>
      publish_challenges;
};

/// A domain as the API shows it and the store keeps it (one mapping for both).
Json domain_to_json(const Domain& d);

/// Normalises a domain name as link takes it: lower-case, no trailing dot, a leading "*."
/// allowed once. InvalidArgument naming what is wrong.
Result<std::string> normalize_domain(std::string_view name);

class Manager {
 public:
  /// dns may be null (no DNS server): every name then waits for the user's own records.
  Manager(store::MetadataStore& store, dns::Service* dns, std::shared_ptr<SecretBox> box,
          Settings settings, Hooks hooks);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  /// Loads berth's CA (creating it on first start), publishes what is ACTIVE, resumes
  /// unfinished links and starts the worker.
  Status start();
  void stop();

  // Blocking (store): call from the blocking pool.
  /// Links name (and www.name with www) to service: validates, records the domains as
  /// pending and queues the work; returns at once. AlreadyExists when a name is linked to
  /// another service; NotFound for an unknown service.
  Result<std::vector<Domain>> link(const std::string& service, const std::string& name, bool www);
  /// Links name to berthd's own registry/API listener (`berth domain link --registry`): the
  /// same DNS and certificate steps, the certificate served on that listener by SNI.
  /// AlreadyExists when the name is linked to a service.
  Result<std::vector<Domain>> link_registry(const std::string& name);
  /// Removes the route, the records link created and, when no other name uses it, the
  /// certificate. Records the user has changed since link are left, and named in the result.
  /// NotFound when name is not linked; Conflict when it is linked to another service or to the
  /// registry (service "": unlink from the registry).
  Result<std::vector<std::string>> unlink(const std::string& service, const std::string& name);
  Result<Domain> get(const std::string& name) const;
  /// Sorted by name; service "" = all.
  Result<std::vector<Domain>> list(const std::string& service) const;
  /// The root certificate of berth's own CA (PEM).
  std::string ca_root_pem() const;
  /// `berth domain renew`: an ACTIVE name's certificate is renewed now, whatever its back-off;
  /// a name still PENDING_DNS or PENDING_CERTIFICATE is tried again now (it shows LINKING
  /// until that attempt ends). Returns the domain as it is once the attempt is queued
  /// (retry_at 0). NotFound when not linked; FailedPrecondition for a FAILED name (unlink, fix
  /// the cause, link it again), and without force for an ACME certificate issued less than a
  /// day (or a third of its lifetime) ago whose last renewal did not fail: ACME CAs rate-limit.
  Result<Domain> renew(const std::string& name, bool force = false);
  /// Queues a renewal check now (tests).
  void wake();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::domains
