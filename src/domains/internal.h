// SPDX-License-Identifier: Apache-2.0
// Private to src/domains: the stored documents, the manager's state, and the link steps.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "certs/certs.h"
#include "common/json.h"
#include "common/log.h"
#include "domains/domains.h"

namespace berth::domains {

inline constexpr const char* kDomainKind = "domain";
inline constexpr const char* kCertificateKind = "certificate";
inline constexpr const char* kTlsKind = "tls";  // "ca" (berth's CA), "acme-account"

/// A certificate as stored (objects kind "certificate", name = id = the group it was issued
/// for). The private key is sealed.
struct CertDoc {
  std::string id;
  std::vector<std::string> names;
  std::string issuer;  // "internal" or "acme"
  std::string chain_pem;
  std::string key_sealed;
  int64_t not_before = 0;
  int64_t not_after = 0;
  std::string serial;    // the leaf's serial number, lower-case hex
  int64_t renew_at = 0;  // not_before + 2/3 of the lifetime
  int failures = 0;      // renewals failed in a row
  int64_t next_attempt = 0;
  std::string last_error;
};

Result<Domain> domain_from_json(const std::string& text);
Json cert_to_json(const CertDoc& c);
Result<CertDoc> cert_from_json(const std::string& text);

int64_t unix_now();
/// "2026-12-06 09:30 UTC".
std::string format_time(int64_t t);

/// Why a normalised name cannot be linked ("" when it can): it must be a host name that a
/// certificate can carry and that DNS outside this machine can answer for.
std::string unlinkable(std::string_view name);

/// The zone berth hosts that holds name (longest suffix match), or "".
std::string hosted_zone_for(const std::vector<std::string>& zones, std::string_view name);

struct Manager::Impl {
  store::MetadataStore& store;
  dns::Service* dns;
  std::shared_ptr<SecretBox> box;
  Settings settings;
  Hooks hooks;
  std::shared_ptr<spdlog::logger> log = log::get("domains");

  std::optional<certs::Authority> ca;
  std::mutex rows_mu;  // one read-modify-write of domain rows at a time

  std::mutex mu;  // the queue, stopping, challenges
  std::condition_variable cv;
  std::deque<std::string> queue;  // groups to work on
  bool stopping = false;
  bool wake_now = false;
  std::thread worker;
  std::unordered_map<std::string, std::string> challenges;

  // OCSP responses stapled to the served certificates whose issuer offers OCSP (ocsp.cc).
  struct Staple {
    std::string chain_pem;  // the chain it is for: a renewal makes it stale at once
    certs::OcspStaple ocsp;
    int64_t next_try = 0;  // after a failure: not before (Unix seconds)
  };
  std::mutex staples_mu;
  std::map<std::string, Staple> staples;  // certificate id ->

  Impl(store::MetadataStore& s, dns::Service* d, std::shared_ptr<SecretBox> b, Settings st, Hooks h)
      : store(s), dns(d), box(std::move(b)), settings(std::move(st)), hooks(std::move(h)) {}

  // Store helpers (rows_mu held by the caller where a read-modify-write needs it).
  Result<std::vector<Domain>> load_all() const;
  /// One linked name (normalized); NotFound says it is not linked.
  Result<Domain> load_domain(const std::string& name) const;
  Result<std::vector<Domain>> load_group(const std::string& group) const;
  Status save(Domain& d, bool create);
  Result<CertDoc> load_cert(const std::string& id) const;
  Status save_cert(const CertDoc& c);

  /// Records names (the first is the group) as linking to what proto says and queues them.
  Result<std::vector<Domain>> link_names(const Domain& proto,
                                         const std::vector<std::string>& names);
  void enqueue(const std::string& group);
  /// Wakes the worker for renewals due now (Manager::wake).
  void wake_worker();
  void run_worker();
  /// Routes and certificates of every ACTIVE name, to the router.
  void publish();
  void publish_challenges();
  /// The current OCSP response for a certificate's chain, or "".
  std::string staple_for(const std::string& cert_id, const std::string& chain_pem);
  /// Fetches the OCSP responses that are missing or past half their validity, publishing the
  /// certificates again when one changed. Returns when the next one is due (Unix seconds; 0:
  /// none). On the worker thread.
  int64_t refresh_staples();

  // The link steps (steps.cc).
  void work_group(const std::string& group);
  /// DNS step for one domain: writes its record or checks the user's. True when done.
  bool step_dns(Domain& d);
  /// Certificate step for a group whose DNS is done.
  Status step_certificate(std::vector<Domain>& group);
  Result<certs::Issued> issue(const std::vector<std::string>& names);
  Status check_caa(const std::string& name);
  /// Renews what is due; returns the unix time of the next renewal or retry (0: none).
  int64_t renew_due();
  /// Removes the record sets link wrote for d that still hold what it wrote; the others (the
  /// user's now) are left, and named in the result ("ALIAS a.example.com in zone example.com").
  Result<std::vector<std::string>> remove_records(const Domain& d);
  /// After a name stopped using certificate id (rows_mu held): deletes it when no name uses
  /// it, or, when it still covers a name no longer linked, makes it due for renewal with only
  /// the names that use it. True when a renewal was scheduled (wake the worker).
  Result<bool> release_cert(const std::string& id);
};

void set_step(Domain& d, const std::string& step, const std::string& status,
              const std::string& detail);

}  // namespace berth::domains
