// SPDX-License-Identifier: Apache-2.0
// The IAM service: identities, keys and policies in the metadata store, and the simulator.
// (GCC 12: every blocking job is a named lambda; none is written inside a co_await.)
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <ctime>

#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"
#include "iam/iam.h"

namespace berth::iam {

namespace {

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

// Random characters from an alphabet, rejection-sampled so every one is equally likely.
std::string random_chars(size_t n, std::string_view alphabet) {
  std::string out;
  while (out.size() < n) {
    unsigned char buf[64];
    RAND_bytes(buf, sizeof buf);
    size_t limit = 256 - (256 % alphabet.size());
    for (unsigned char c : buf) {
      if (c < limit && out.size() < n) {
        out.push_back(alphabet[c % alphabet.size()]);
      }
    }
  }
  return out;
}

constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kSecretChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

Status validate_kind(const std::string& kind) {
  if (kind != "user" && kind != "role") {
    return Error(Errc::InvalidArgument, "kind must be user or role, not '" + kind + "'");
  }
  return ok();
}

Status validate_name(const std::string& kind, const std::string& name) {
  auto bad = [&] {
    return Error(Errc::InvalidArgument,
                 "invalid " + kind + " name '" + name +
                     "': use 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  };
  if (name.empty() || name.size() > 64) {
    return bad();
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
      return bad();
    }
  }
  return ok();
}

Status validate_policy_name(const std::string& name) {
  if (name.empty() || name.size() > 128 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
          std::string::npos) {
    return Error(Errc::InvalidArgument,
                 "invalid policy name '" + name + "': use 1 to 128 of A-Z a-z 0-9 . _ -");
  }
  return ok();
}

constexpr const char* kAdminPolicy =
    R"({"Version":"2012-10-17","Statement":[{"Sid":"FullAccess","Effect":"Allow","Action":"*","Resource":"*"}]})";

// Runs a store write on the pool and, when it succeeds, the change hook (reloading the
// enforcing authorizer). Not a coroutine: the job is boxed by run_blocking.
template <class F>
awaitable<Status> write_then_notify(BlockingPool& pool, const std::function<void()>& on_change,
                                    F&& f) {
  auto job = [on_change, f = std::forward<F>(f)]() mutable -> Status {
    Status s = f();
    if (s && on_change) {
      on_change();
    }
    return s;
  };
  return run_blocking(pool, std::move(job));
}

}  // namespace

std::string hash_secret(const std::string& secret) { return Sha256::hex_of(secret); }

Service::Service(store::MetadataStore& store, BlockingPool& pool, AuthorizerPtr authorizer,
                 std::function<void()> on_change, AuditLog* audit)
    : store_(store),
      pool_(pool),
      authz_(std::move(authorizer)),
      on_change_(std::move(on_change)),
      audit_(audit) {}

Status Service::authorize(const http::RequestContext& ctx, const std::string& action,
                          const std::string& resource) const {
  Request req{ctx.principal, action, resource};
  bool allowed = authz_->authorize(req).has_value();
  if (audit_ != nullptr) {
    audit_->record(req, allowed, ctx.peer);
  }
  if (!allowed) {
    return Error(Errc::PermissionDenied, denial_message(req));
  }
  return ok();
}

Result<std::string> Service::bootstrap(const std::string& data_dir) {
  BERTH_ASSIGN_OR_RETURN(auto users, store_.list_principals("user"));
  if (!users.empty()) {
    return std::string();
  }
  int64_t now = now_unix();
  BERTH_TRY(store_.create_principal(store::Principal{"user", "admin", now}));
  BERTH_TRY(store_.put_policy(store::AttachedPolicy{"user", "admin", "admin", kAdminPolicy, now}));
  std::string id = "BK" + random_chars(18, kUpperAlnum);
  std::string secret = random_chars(40, kSecretChars);
  BERTH_TRY(store_.create_key(store::AccessKey{id, "admin", hash_secret(secret), true, now}));
  std::string path = data_dir + "/admin.credentials";
  BERTH_TRY(fs::write_atomic(
      path, "BERTH_ACCESS_KEY_ID=" + id + "\nBERTH_SECRET_ACCESS_KEY=" + secret + "\n", 0600));
  ::chmod(path.c_str(), 0600);
  log::get("iam")->info("bootstrap admin user created access_key_id={} credentials={}", id, path);
  return id;
}

awaitable<Result<store::Principal>> Service::create_principal(http::RequestContext ctx,
                                                              std::string kind, std::string name) {
  BERTH_CO_TRY(validate_kind(kind));
  BERTH_CO_TRY(
      authorize(ctx, kind == "user" ? "iam:CreateUser" : "iam:CreateRole", kind + "/" + name));
  BERTH_CO_TRY(validate_name(kind, name));
  store::Principal p{kind, name, now_unix()};
  auto create = [this, p] { return store_.create_principal(p); };
  Status s = co_await write_then_notify(pool_, on_change_, std::move(create));
  if (!s) {
    co_return s.error();
  }
  log::get("iam")->info("principal created kind={} name={} by={}", kind, name, ctx.principal);
  co_return p;
}

awaitable<Result<std::vector<store::Principal>>> Service::list_principals(http::RequestContext ctx,
                                                                          std::string kind) {
  BERTH_CO_TRY(validate_kind(kind));
  BERTH_CO_TRY(authorize(ctx, kind == "user" ? "iam:ListUsers" : "iam:ListRoles", kind + "/*"));
  auto list = [this, kind] { return store_.list_principals(kind); };
  co_return co_await run_blocking(pool_, std::move(list));
}

awaitable<Status> Service::delete_principal(http::RequestContext ctx, std::string kind,
                                            std::string name) {
  BERTH_CO_TRY(validate_kind(kind));
  BERTH_CO_TRY(
      authorize(ctx, kind == "user" ? "iam:DeleteUser" : "iam:DeleteRole", kind + "/" + name));
  // Removing the last user would leave nobody able to sign in once requests are authenticated.
  auto del = [this, kind, name]() -> Status {
    if (kind == "user") {
      BERTH_ASSIGN_OR_RETURN(auto users, store_.list_principals("user"));
      if (users.size() == 1 && users[0].name == name) {
        return Error(Errc::FailedPrecondition,
                     "user " + name + " is the last user; create another one first");
      }
    }
    return store_.delete_principal(kind, name);
  };
  Status s = co_await write_then_notify(pool_, on_change_, std::move(del));
  if (s) {
    log::get("iam")->info("principal deleted kind={} name={} by={}", kind, name, ctx.principal);
  }
  co_return s;
}

awaitable<Result<NewKey>> Service::create_key(http::RequestContext ctx, std::string user) {
  BERTH_CO_TRY(authorize(ctx, "iam:CreateAccessKey", "user/" + user));
  NewKey k;
  k.secret = random_chars(40, kSecretChars);
  k.key = store::AccessKey{"BK" + random_chars(18, kUpperAlnum), user, hash_secret(k.secret), true,
                           now_unix()};
  auto create = [this, key = k.key] { return store_.create_key(key); };
  Status s = co_await write_then_notify(pool_, on_change_, std::move(create));
  if (!s) {
    co_return s.error();
  }
  log::get("iam")->info("access key created user={} access_key_id={} by={}", user, k.key.id,
                        ctx.principal);
  co_return k;
}

awaitable<Result<std::vector<store::AccessKey>>> Service::list_keys(http::RequestContext ctx,
                                                                    std::string user) {
  BERTH_CO_TRY(authorize(ctx, "iam:ListAccessKeys", "user/" + user));
  auto list = [this, user] { return store_.list_keys(user); };
  co_return co_await run_blocking(pool_, std::move(list));
}

awaitable<Result<store::AccessKey>> Service::deactivate_key(http::RequestContext ctx,
                                                            std::string id) {
  auto get = [this, id] { return store_.get_key(id); };
  auto key = co_await run_blocking(pool_, std::move(get));
  if (!key) {
    co_return key.error();
  }
  BERTH_CO_TRY(authorize(ctx, "iam:UpdateAccessKey", "user/" + key->user));
  auto update = [this, id] { return store_.set_key_active(id, false); };
  Status s = co_await write_then_notify(pool_, on_change_, std::move(update));
  if (!s) {
    co_return s.error();
  }
  key->active = false;
  log::get("iam")->info("access key deactivated access_key_id={} by={}", id, ctx.principal);
  co_return key;
}

awaitable<Result<NewKey>> Service::rotate_key(http::RequestContext ctx, std::string id) {
  auto get = [this, id] { return store_.get_key(id); };
  auto old = co_await run_blocking(pool_, std::move(get));
  if (!old) {
    co_return old.error();
  }
  auto fresh = co_await create_key(ctx, old->user);
  if (!fresh) {
    co_return fresh.error();
  }
  auto off = co_await deactivate_key(ctx, id);
  if (!off) {
    co_return off.error();
  }
  co_return fresh;
}

awaitable<Status> Service::delete_key(http::RequestContext ctx, std::string id) {
  auto get = [this, id] { return store_.get_key(id); };
  auto key = co_await run_blocking(pool_, std::move(get));
  if (!key) {
    co_return key.error();
  }
  BERTH_CO_TRY(authorize(ctx, "iam:DeleteAccessKey", "user/" + key->user));
  auto del = [this, id] { return store_.delete_key(id); };
  Status s = co_await write_then_notify(pool_, on_change_, std::move(del));
  if (s) {
    log::get("iam")->info("access key deleted access_key_id={} by={}", id, ctx.principal);
  }
  co_return s;
}

awaitable<Result<store::AttachedPolicy>> Service::put_policy(http::RequestContext ctx,
                                                             std::string kind,
                                                             std::string principal,
                                                             std::string name,
                                                             std::string document) {
  BERTH_CO_TRY(validate_kind(kind));
  BERTH_CO_TRY(authorize(ctx, "iam:PutPolicy", kind + "/" + principal));
  BERTH_CO_TRY(validate_policy_name(name));
  BERTH_CO_TRY(parse_policy(document, name, /*is_resource_policy=*/false));
  store::AttachedPolicy p{kind, principal, name, document, now_unix()};
  auto put = [this, p] { return store_.put_policy(p); };
  Status s = co_await write_then_notify(pool_, on_change_, std::move(put));
  if (!s) {
    co_return s.error();
  }
  log::get("iam")->info("policy put kind={} principal={} name={} by={}", kind, principal, name,
                        ctx.principal);
  co_return p;
}

awaitable<Result<std::vector<store::AttachedPolicy>>> Service::list_policies(
    http::RequestContext ctx, std::string kind, std::string principal) {
  BERTH_CO_TRY(authorize(ctx, "iam:ListPolicies",
                         kind.empty() ? "*" : kind + "/" + (principal.empty() ? "*" : principal)));
  auto list = [this, kind, principal] { return store_.list_policies(kind, principal); };
  co_return co_await run_blocking(pool_, std::move(list));
}

awaitable<Status> Service::delete_policy(http::RequestContext ctx, std::string kind,
                                         std::string principal, std::string name) {
  BERTH_CO_TRY(validate_kind(kind));
  BERTH_CO_TRY(authorize(ctx, "iam:DeletePolicy", kind + "/" + principal));
  auto del = [this, kind, principal, name] { return store_.delete_policy(kind, principal, name); };
  co_return co_await write_then_notify(pool_, on_change_, std::move(del));
}

awaitable<Status> Service::set_repository_policy(http::RequestContext ctx, std::string repo,
                                                 std::string document) {
  BERTH_CO_TRY(authorize(ctx, "registry:SetRepositoryPolicy", "repository/" + repo));
  if (!document.empty()) {
    BERTH_CO_TRY(parse_policy(document, "repository/" + repo, /*is_resource_policy=*/true));
  }
  auto set = [this, repo, document] { return store_.set_repository_policy(repo, document); };
  Status s = co_await write_then_notify(pool_, on_change_, std::move(set));
  if (s) {
    log::get("iam")->info("repository policy set repo={} by={}", repo, ctx.principal);
  }
  co_return s;
}

awaitable<Result<std::string>> Service::get_repository_policy(http::RequestContext ctx,
                                                              std::string repo) {
  BERTH_CO_TRY(authorize(ctx, "registry:DescribeImages", "repository/" + repo));
  auto get = [this, repo] { return store_.get_repository_policy(repo); };
  co_return co_await run_blocking(pool_, std::move(get));
}

Result<Decision> Service::simulate_blocking(const Request& req) {
  std::vector<Policy> identity;
  auto slash = req.principal.find('/');
  if (slash != std::string::npos) {
    std::string kind = req.principal.substr(0, slash), name = req.principal.substr(slash + 1);
    if (kind == "user" || kind == "role") {
      BERTH_ASSIGN_OR_RETURN(auto attached, store_.list_policies(kind, name));
      for (const auto& a : attached) {
        BERTH_ASSIGN_OR_RETURN(auto p, parse_policy(a.document, a.name, false));
        identity.push_back(std::move(p));
      }
    }
  }
  std::optional<Policy> resource;
  const std::string prefix = "repository/";
  if (req.resource.rfind(prefix, 0) == 0) {
    auto doc = store_.get_repository_policy(req.resource.substr(prefix.size()));
    if (doc && !doc->empty()) {
      BERTH_ASSIGN_OR_RETURN(auto p, parse_policy(*doc, req.resource, true));
      resource = std::move(p);
    }
  }
  return evaluate(identity, resource ? &*resource : nullptr, req);
}

awaitable<Result<Decision>> Service::simulate(http::RequestContext ctx, Request req) {
  BERTH_CO_TRY(authorize(ctx, "iam:SimulatePolicy", req.principal.empty() ? "*" : req.principal));
  if (req.principal.empty() || req.action.empty() || req.resource.empty()) {
    co_return Error(Errc::InvalidArgument, "principal, action and resource are all required");
  }
  if (req.principal != "anonymous" && req.principal.rfind("user/", 0) != 0 &&
      req.principal.rfind("role/", 0) != 0) {
    co_return Error(Errc::InvalidArgument,
                    "principal '" + req.principal + "' must be user/NAME, role/NAME or anonymous");
  }
  auto sim = [this, req] { return simulate_blocking(req); };
  co_return co_await run_blocking(pool_, std::move(sim));
}

awaitable<Result<std::vector<store::AuditEvent>>> Service::list_audit(http::RequestContext ctx,
                                                                      int64_t since,
                                                                      std::string principal,
                                                                      int limit) {
  BERTH_CO_TRY(authorize(ctx, "iam:ListAuditEvents", "*"));
  // Flush first, so what just happened is visible.
  auto list = [this, since, principal, limit]() -> Result<std::vector<store::AuditEvent>> {
    if (audit_ != nullptr) {
      BERTH_TRY(audit_->flush());
    }
    return store_.list_audit(since, principal, limit);
  };
  co_return co_await run_blocking(pool_, std::move(list));
}

Result<std::string> Service::authenticate_key(const std::string& id, const std::string& secret) {
  auto key = store_.get_key(id);
  std::string want = key ? key->secret_hash : std::string(64, '0');
  std::string got = hash_secret(secret);
  bool match = CRYPTO_memcmp(want.data(), got.data(), want.size()) == 0 && key.has_value();
  if (!match || !key->active) {
    return Error(Errc::Unauthenticated, "invalid or inactive access key " + id);
  }
  return "user/" + key->user;
}

}  // namespace berth::iam
