// SPDX-License-Identifier: Apache-2.0
// Authorization seam called by every handler before it acts. Until users, keys and policies
// land (issue 3), the only implementation allows everything; handlers already name the
// action ("registry:Push") and resource ("repository/web/app") they need.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/async.h"
#include "common/result.h"
#include "http/http.h"
#include "store/store.h"

namespace berth::iam {

struct Request {
  std::string principal;  // "anonymous" until authentication lands
  std::string action;     // "registry:Pull"
  std::string resource;   // "repository/web/app"
};

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  /// PermissionDenied with "AccessDenied: <principal> may not <action> on <resource>" when
  /// refused. Pure and quick: safe to call on an I/O thread.
  virtual Status authorize(const Request& req) const = 0;
};

using AuthorizerPtr = std::shared_ptr<const Authorizer>;

/// Allows every request. The default until IAM lands.
AuthorizerPtr allow_all();

/// The message every denial uses: "AccessDenied: user/ci may not registry:Push on repository
/// web/app".
std::string denial_message(const Request& req);

// ---- Policies (pure) ------------------------------------------------------------------------

/// One statement of a policy document in the familiar cloud shape.
struct Statement {
  std::string sid;
  bool allow = false;
  std::vector<std::string> actions;     // "registry:Pull", "registry:*", "*"
  std::vector<std::string> resources;   // "repository/web/*"
  std::vector<std::string> principals;  // resource policies only: "user/alice", "role/x", "*"
};

struct Policy {
  std::string name;
  std::vector<Statement> statements;
};

/// Parses {"Version":"2012-10-17","Statement":[{"Sid","Effect","Action","Resource"}]}. Action,
/// Resource and Principal may be a string or a list. A resource policy (is_resource_policy)
/// needs "Principal" in every statement; an identity policy must not have one. Errors are
/// InvalidArgument naming the statement and field ("Statement[1].Effect: ...").
Result<Policy> parse_policy(std::string_view json, std::string name, bool is_resource_policy);

/// Why a request was allowed or denied, for the API, `berth iam simulate` and the audit log.
struct Decision {
  bool allowed = false;
  std::string policy;  // the policy of the deciding statement ("" when nothing matched)
  std::string sid;     // its Sid
  std::string reason;  // "explicit deny", "allowed", "no statement allows it"
};

/// Default deny; an explicit Deny in any applicable statement wins over every Allow. `*` and
/// `?` are wildcards in actions (case-insensitive) and resources (case-sensitive). A resource
/// policy's statements apply when one of their principals matches req.principal ("*" matches
/// everyone, anonymous included).
Decision evaluate(const std::vector<Policy>& identity_policies, const Policy* resource_policy,
                  const Request& req);

/// The audit log: every state-changing request and every denial. record() is cheap and safe
/// from any thread (a bounded in-memory queue); flush() writes the queue in one transaction
/// (blocking: the daemon calls flush_if_due() on the pool once a second, flush() at shutdown).
///
/// A batch whose write fails (disk full, database locked) stays queued, oldest first, and is
/// retried with back-off (1 s doubling to 30 s), so a transient failure loses nothing. The
/// queue holds at most max_pending records (kMaxPending, 100,000 by default); past that, new
/// records are dropped and the count dropped is logged at error level. Records still queued
/// when the log is destroyed are reported the same way.
class AuditLog {
 public:
  static constexpr size_t kMaxPending = 100000;
  static constexpr std::chrono::seconds kMinBackoff{1};
  static constexpr std::chrono::seconds kMaxBackoff{30};

  explicit AuditLog(store::MetadataStore& store, size_t max_pending = kMaxPending);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Records when the action changes state or was denied; reads that were allowed are not.
  void record(const Request& req, bool allowed, const std::string& source);
  /// Writes every queued record now, whatever the back-off. On failure the records stay queued
  /// and the error says how many ("audit: 12 records queued for retry in 2s: sqlite: ...").
  Status flush();
  /// flush() unless a failed write's back-off has not yet run out (then Ok, nothing written).
  Status flush_if_due();
  /// Records waiting to be written, and records dropped because the queue was full.
  size_t pending() const;
  uint64_t dropped() const;
  /// Read actions (allowed ones are not recorded): Pull, List*, Describe*, Get*, Simulate*.
  static bool is_read_action(const std::string& action);

 private:
  using Clock = std::chrono::steady_clock;
  Status flush_locked();
  void note_full_locked();
  void report_drops_locked();

  store::MetadataStore& store_;
  const size_t max_pending_;
  mutable std::mutex mu_;  // pending_, the drop counters
  std::vector<store::AuditEvent> pending_;
  uint64_t dropped_ = 0;             // since start
  uint64_t dropped_unreported_ = 0;  // since the last error line about it
  bool full_reported_ = false;       // "queue full" logged; cleared when a write succeeds
  std::mutex flush_mu_;              // one write at a time, so retries keep their order
  int failures_ = 0;                 // consecutive failed writes (under flush_mu_)
  Clock::time_point next_try_{};     // back-off after a failed write (under flush_mu_)
};

// ---- The IAM service ------------------------------------------------------------------------

/// A newly created access key: the only time the secret exists outside the caller's hands.
struct NewKey {
  store::AccessKey key;
  std::string secret;
};

/// Users, roles, keys and policies over the metadata store, plus the simulator. Every method
/// authorizes ctx.principal first. Coroutines may be called from any I/O thread; storage work
/// goes to the blocking pool.
class Service {
 public:
  /// on_change runs (on the blocking pool) after every successful IAM write; the daemon
  /// reloads the PolicyAuthorizer there.
  Service(store::MetadataStore& store, BlockingPool& pool, AuthorizerPtr authorizer,
          std::function<void()> on_change = {}, AuditLog* audit = nullptr);

  /// First start: with no users, creates `admin` (policy `admin`: Allow * on *) and a key,
  /// writes DATA/admin.credentials (0600). Returns the key id, or "" when users existed.
  Result<std::string> bootstrap(const std::string& data_dir);

  /// kind: "user" or "role". Names: [a-z0-9][a-z0-9._-]{0,63}.
  awaitable<Result<store::Principal>> create_principal(http::RequestContext ctx, std::string kind,
                                                       std::string name);
  awaitable<Result<std::vector<store::Principal>>> list_principals(http::RequestContext ctx,
                                                                   std::string kind);
  awaitable<Status> delete_principal(http::RequestContext ctx, std::string kind, std::string name);

  awaitable<Result<NewKey>> create_key(http::RequestContext ctx, std::string user);
  awaitable<Result<std::vector<store::AccessKey>>> list_keys(http::RequestContext ctx,
                                                             std::string user);
  awaitable<Result<store::AccessKey>> deactivate_key(http::RequestContext ctx, std::string id);
  /// A new key for the same user; the old one is deactivated (delete it once nothing uses it).
  awaitable<Result<NewKey>> rotate_key(http::RequestContext ctx, std::string id);
  awaitable<Status> delete_key(http::RequestContext ctx, std::string id);

  /// Validates the document first (InvalidArgument naming the field; nothing stored).
  awaitable<Result<store::AttachedPolicy>> put_policy(http::RequestContext ctx, std::string kind,
                                                      std::string principal, std::string name,
                                                      std::string document);
  awaitable<Result<std::vector<store::AttachedPolicy>>> list_policies(http::RequestContext ctx,
                                                                      std::string kind,
                                                                      std::string principal);
  awaitable<Status> delete_policy(http::RequestContext ctx, std::string kind, std::string principal,
                                  std::string name);
  /// "" document removes the policy.
  awaitable<Status> set_repository_policy(http::RequestContext ctx, std::string repo,
                                          std::string document);
  awaitable<Result<std::string>> get_repository_policy(http::RequestContext ctx, std::string repo);

  /// Evaluates the stored policies for (principal, action, resource): the principal's attached
  /// policies plus, for repository/NAME, that repository's resource policy.
  awaitable<Result<Decision>> simulate(http::RequestContext ctx, Request req);

  /// Audit events at or after since (unix seconds), newest first.
  awaitable<Result<std::vector<store::AuditEvent>>> list_audit(http::RequestContext ctx,
                                                               int64_t since, std::string principal,
                                                               int limit);

  /// Verifies an access key (constant-time); returns "user/NAME". Unauthenticated otherwise.
  Result<std::string> authenticate_key(const std::string& id, const std::string& secret);

  /// Authorizes ctx's principal (recording denials and changes in the audit log): the check
  /// every API handler makes before acting.
  Status authorize(const http::RequestContext& ctx, const std::string& action,
                   const std::string& resource) const;

 private:
  Result<Decision> simulate_blocking(const Request& req);

  store::MetadataStore& store_;
  BlockingPool& pool_;
  AuthorizerPtr authz_;
  std::function<void()> on_change_;
  AuditLog* audit_;
};

// ---- Enforcement ----------------------------------------------------------------------------

/// The enforcing authorizer: stored policies, repository policies and access keys held in
/// memory as an immutable snapshot, rebuilt (reload) after every IAM change. Lookups never
/// block, so authentication and authorization run on I/O threads.
class PolicyAuthorizer final : public Authorizer {
 public:
  explicit PolicyAuthorizer(store::MetadataStore& store);
  ~PolicyAuthorizer() override;

  /// Rebuilds the snapshot from the store. Blocking.
  Status reload();
  Status authorize(const Request& req) const override;
  Decision decide(const Request& req) const;
  /// "user/NAME" for an active key whose secret matches (constant-time), else Unauthenticated.
  Result<std::string> authenticate(const std::string& key_id, const std::string& secret) const;
  /// True while key_id exists and is active (a console session signed in with a key ends when
  /// the key is deactivated or deleted).
  bool key_active(const std::string& key_id) const;

 private:
  struct Snapshot;
  std::shared_ptr<const Snapshot> snapshot() const;
  store::MetadataStore& store_;
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snap_;
};

/// Limits on failed authentications within a sliding window. Key ids are not secret (they
/// appear in logs), so a key's failures lock it out only from the address they came from: an
/// attacker elsewhere cannot lock its owner out. A second, higher limit counts one address's
/// failures across all key ids, so guessing many keys from one place is slowed too.
struct LockoutLimits {
  int per_key_and_address = 10;  // failures of one key id from one address
  int per_address = 100;         // failures from one address, any key id
  std::chrono::seconds window{60};
  size_t max_tracked = 100000;  // (key id, address) pairs and addresses remembered, each
};

/// Failed-authentication bookkeeping for the lockout above. Thread-safe (a mutex held for a
/// few map operations; never across co_await); time is the caller's, so tests need no sleep.
class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit AuthThrottle(LockoutLimits limits = {});

  /// Zero when key_id may try to authenticate from address now; otherwise how long until it
  /// may (whole seconds, at least 1: the Retry-After of the 429).
  std::chrono::seconds retry_after(const std::string& key_id, const std::string& address,
                                   Clock::time_point now);
  /// Counts one failed authentication of key_id from address.
  void record_failure(const std::string& key_id, const std::string& address, Clock::time_point now);
  const LockoutLimits& limits() const { return limits_; }

 private:
  using Times = std::deque<Clock::time_point>;
  std::chrono::seconds wait_locked(Times& t, int limit, Clock::time_point now) const;
  void prune_locked(std::map<std::string, Times>& m, Clock::time_point now, const char* what);

  const LockoutLimits limits_;
  std::mutex mu_;
  std::map<std::string, Times> by_key_and_address_;  // "KEYID ADDRESS" -> failure times
  std::map<std::string, Times> by_address_;          // "ADDRESS" -> failure times
};

/// The address of a peer "ip:port" ("127.0.0.1:5000" -> "127.0.0.1", "::1:5000" and
/// "[::1]:5000" -> "::1"); IPv4-mapped IPv6 addresses ("::ffff:10.0.0.1") become IPv4.
std::string peer_address(const std::string& peer);

/// ES256 JSON Web Tokens, signed with a P-256 key kept in the data directory.
class TokenSigner {
 public:
  /// Loads the PEM key at path, or generates one (mode 0600) when the file is missing.
  static Result<std::shared_ptr<TokenSigner>> load_or_create(const std::string& path);
  ~TokenSigner();
  TokenSigner(const TokenSigner&) = delete;
  TokenSigner& operator=(const TokenSigner&) = delete;

  /// header.payload.signature for the given JSON payload.
  std::string sign(const std::string& payload_json) const;
  /// The payload JSON of a token whose signature verifies; Unauthenticated otherwise (expiry
  /// is the caller's to check).
  Result<std::string> verify(const std::string& token) const;

 private:
  TokenSigner() = default;
  struct Key;
  std::unique_ptr<Key> key_;
};

/// Hex SHA-256 of a secret, as stored.
std::string hash_secret(const std::string& secret);

}  // namespace berth::iam
