// SPDX-License-Identifier: Apache-2.0
// Upstream registries as configuration: created, listed, tested and removed through the control
// API, kept in the objects table (kind "upstream") with the password sealed, and loaded into
// memory at start. Also how a user's image reference is read (qualify).
#include <algorithm>
#include <chrono>

#include "common/json.h"
#include "common/secret_box.h"
#include "registry/registry_impl.h"

namespace berth::registry {

namespace {

constexpr const char* kKind = "upstream";

// Whether one prefix shadows the other ("docker.io" and "docker.io/library").
bool prefixes_overlap(const std::string& a, const std::string& b) {
  auto under = [](const std::string& x, const std::string& y) {
    return x == y || x.rfind(y + "/", 0) == 0;
  };
  return under(a, b) || under(b, a);
}

UpstreamView view_of(const Upstream& u) {
  UpstreamView v;
  v.spec = u.spec();
  v.has_password = !v.spec.password.empty();
  v.spec.password.clear();
  v.created_at = u.created_at();
  return v;
}

}  // namespace

Status validate_upstream_name(const std::string& name, const std::string& what) {
  bool good = !name.empty() && name.size() <= 63 && name.front() != '-' && name.back() != '-' &&
              std::all_of(name.begin(), name.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
              });
  if (!good) {
    return Error(Errc::InvalidArgument, what + " name '" + name +
                                            "' must be 1-63 characters of a-z, 0-9 and '-', "
                                            "not starting or ending with '-'");
  }
  return ok();
}

Status Registry::Impl::check_credentials(const std::string& username, const std::string& password,
                                         const std::string& what) const {
  if (!password.empty() && username.empty()) {
    return Error(Errc::InvalidArgument, "a password needs a username");
  }
  if (!password.empty() && !opts.secrets) {
    return Error(Errc::FailedPrecondition,
                 what + " credentials cannot be sealed: this berthd has no secrets key");
  }
  return ok();
}

Result<std::string> Registry::Impl::open_password(const Json& doc) const {
  std::string sealed = doc.value("password", std::string());
  if (sealed.empty()) {
    return std::string();
  }
  if (!opts.secrets) {
    return Error(Errc::DataLoss, "no secrets key");
  }
  return opts.secrets->open(sealed);
}

Result<UpstreamPtr> Registry::Impl::make_upstream(UpstreamSpec spec, int64_t created_at) {
  BERTH_ASSIGN_OR_RETURN(auto base, http::parse_client_url(spec.url));
  if (base.target != "/") {
    return Error(Errc::InvalidArgument, "upstream URL " + spec.url +
                                            " must name only the registry's origin "
                                            "(scheme, host and port), not a path");
  }
  http::Client::Options o;
  o.ca_file = spec.ca_file;
  o.timeout = opts.upstream_timeout;
  o.user_agent = "berth (pull-through)";
  BERTH_ASSIGN_OR_RETURN(auto client, http::Client::create(o));
  while (!spec.url.empty() && spec.url.back() == '/') {
    spec.url.pop_back();
  }
  return std::make_shared<Upstream>(std::move(spec), created_at, std::move(base),
                                    std::move(client));
}

Status Registry::Impl::load_upstreams() {
  BERTH_ASSIGN_OR_RETURN(auto rows, store.list_objects(kKind));
  std::vector<UpstreamPtr> loaded;
  for (const auto& row : rows) {
    auto j = parse_json(row.document, "upstream");
    if (!j || !j->is_object()) {
      log->error("upstream {} is unreadable and skipped", row.name);
      continue;
    }
    UpstreamSpec spec;
    spec.name = row.name;
    spec.url = j->value("url", std::string());
    spec.prefix = j->value("prefix", std::string());
    spec.username = j->value("username", std::string());
    spec.ca_file = j->value("ca_file", std::string());
    spec.ttl = std::chrono::seconds(j->value("ttl_seconds", int64_t{6 * 3600}));
    spec.is_default = j->value("default", false);
    auto pw = open_password(*j);
    if (!pw) {
      log->error("upstream {}: its password cannot be opened ({}); it is skipped", row.name,
                 pw.error().message());
      continue;
    }
    spec.password = *pw;
    auto u = make_upstream(std::move(spec), row.created_at);
    if (!u) {
      log->error("upstream {} is skipped: {}", row.name, u.error().message());
      continue;
    }
    loaded.push_back(std::move(*u));
  }
  std::unique_lock lock(up_mu);
  upstreams = std::move(loaded);
  return ok();
}

UpstreamPtr Registry::Impl::upstream_for(const std::string& repository) {
  std::shared_lock lock(up_mu);
  for (const auto& u : upstreams) {
    const auto& p = u->spec().prefix;
    if (repository.size() > p.size() + 1 && repository.rfind(p + "/", 0) == 0) {
      return u;
    }
  }
  return nullptr;
}

Result<UpstreamView> Registry::create_upstream(const http::RequestContext& ctx, UpstreamSpec spec) {
  auto& d = *impl_;
  BERTH_TRY(d.authorize(ctx, "registry:CreateUpstream", "upstream/" + spec.name));
  BERTH_TRY(validate_upstream_name(spec.name, "upstream"));
  if (auto s = oci::validate_repository_name(spec.prefix + "/x"); !s || spec.prefix.empty()) {
    return Error(Errc::InvalidArgument,
                 "prefix '" + spec.prefix +
                     "' must be the start of a repository name, such as docker.io or ghcr.io");
  }
  if (spec.ttl.count() < 0) {
    return Error(Errc::InvalidArgument, "ttl must not be negative");
  }
  BERTH_TRY(d.check_credentials(spec.username, spec.password, "upstream"));
  {
    std::shared_lock lock(d.up_mu);
    for (const auto& u : d.upstreams) {
      if (u->spec().name == spec.name) {
        return Error(Errc::AlreadyExists, "upstream " + spec.name + " already exists");
      }
      if (prefixes_overlap(u->spec().prefix, spec.prefix)) {
        return Error(Errc::AlreadyExists, "prefix " + spec.prefix + " overlaps upstream " +
                                              u->spec().name + "'s prefix " + u->spec().prefix);
      }
      if (spec.is_default && u->spec().is_default) {
        return Error(Errc::AlreadyExists,
                     "upstream " + u->spec().name +
                         " is already the default; remove it or create this one without "
                         "--default");
      }
    }
  }
  int64_t now = now_unix();
  BERTH_ASSIGN_OR_RETURN(auto up, d.make_upstream(spec, now));
  Json doc{{"url", up->spec().url},
           {"prefix", spec.prefix},
           {"username", spec.username},
           {"ca_file", spec.ca_file},
           {"ttl_seconds", static_cast<int64_t>(spec.ttl.count())},
           {"default", spec.is_default}};
  if (!spec.password.empty()) {
    doc["password"] = d.opts.secrets->seal(spec.password);
  }
  BERTH_TRY(d.store.put_object(store::ObjectRow{kKind, spec.name, doc.dump(), now, now}, true));
  {
    std::unique_lock lock(d.up_mu);
    d.upstreams.push_back(up);
  }
  d.log->info("upstream created name={} url={} prefix={} default={} principal={}", spec.name,
              up->spec().url, spec.prefix, spec.is_default, ctx.principal);
  return view_of(*up);
}

Result<std::vector<UpstreamView>> Registry::list_upstreams(const http::RequestContext& ctx) {
  auto& d = *impl_;
  BERTH_TRY(d.authorize(ctx, "registry:ListUpstreams", "upstream/*"));
  std::vector<UpstreamView> out;
  std::shared_lock lock(d.up_mu);
  for (const auto& u : d.upstreams) {
    out.push_back(view_of(*u));
  }
  std::sort(out.begin(), out.end(),
            [](const UpstreamView& a, const UpstreamView& b) { return a.spec.name < b.spec.name; });
  return out;
}

Result<UpstreamPtr> Registry::Impl::find_upstream(const std::string& name) {
  std::shared_lock lock(up_mu);
  for (const auto& u : upstreams) {
    if (u->spec().name == name) {
      return u;
    }
  }
  return Error(Errc::NotFound, "upstream " + name + " does not exist");
}

Result<UpstreamView> Registry::get_upstream(const http::RequestContext& ctx,
                                            const std::string& name) {
  BERTH_TRY(impl_->authorize(ctx, "registry:GetUpstream", "upstream/" + name));
  BERTH_ASSIGN_OR_RETURN(auto u, impl_->find_upstream(name));
  return view_of(*u);
}

Status Registry::delete_upstream(const http::RequestContext& ctx, const std::string& name) {
  auto& d = *impl_;
  BERTH_TRY(d.authorize(ctx, "registry:DeleteUpstream", "upstream/" + name));
  BERTH_TRY(d.find_upstream(name));
  BERTH_TRY(d.store.delete_object(kKind, name));
  {
    std::unique_lock lock(d.up_mu);
    d.upstreams.erase(std::remove_if(d.upstreams.begin(), d.upstreams.end(),
                                     [&](const UpstreamPtr& u) { return u->spec().name == name; }),
                      d.upstreams.end());
  }
  // What was pulled through stays: its repositories are ordinary ones now.
  d.log->info("upstream deleted name={} principal={}", name, ctx.principal);
  return ok();
}

Result<UpstreamCheck> Registry::test_upstream(const http::RequestContext& ctx,
                                              const std::string& name) {
  BERTH_TRY(impl_->authorize(ctx, "registry:TestUpstream", "upstream/" + name));
  BERTH_ASSIGN_OR_RETURN(auto u, impl_->find_upstream(name));
  UpstreamCheck c;
  auto start = std::chrono::steady_clock::now();
  http::ClientRequest req;
  auto r = u->request(req, "/v2/", "");
  c.millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)
                 .count();
  c.auth = u->auth_seen();
  if (!r) {
    c.message = r.error().message();
    return c;
  }
  c.status = r->status;
  c.ok = r->status == 200;
  c.message = c.ok ? u->describe() + " answered /v2/ with 200"
                   : u->describe() + " answered /v2/ with " + std::to_string(r->status) +
                         (r->status == 401 ? ": check the username and password" : "");
  return c;
}

namespace {

// "registry.example.com:5000" -> "registry.example.com"; "[::1]:5000" -> "::1".
std::string host_without_port(const std::string& host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  return host.substr(0, host.find(':'));
}

bool is_loopback_host(const std::string& host) {
  std::string h = host_without_port(host);
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

}  // namespace

std::string Registry::qualify(const std::string& reference) {
  auto& d = *impl_;
  std::string ref = reference;
  size_t slash = ref.find('/');
  if (slash != std::string::npos) {
    std::string first = ref.substr(0, slash);
    bool hostlike = first.find_first_of(".:") != std::string::npos || first == "localhost";
    if (hostlike) {
      bool is_prefix = false;
      {
        std::shared_lock lock(d.up_mu);
        is_prefix = std::any_of(d.upstreams.begin(), d.upstreams.end(), [&](const auto& u) {
          return u->spec().prefix == first || u->spec().prefix.rfind(first + "/", 0) == 0;
        });
      }
      if (is_prefix) {
        // docker's own rule for Docker Hub: "docker.io/busybox" is "docker.io/library/busybox".
        std::string rest = ref.substr(slash + 1);
        if (first == "docker.io" && rest.find('/') == std::string::npos) {
          return first + "/library/" + rest;
        }
        return ref;
      }
      bool own = is_loopback_host(first) || (d.opts.is_own_host && d.opts.is_own_host(first));
      if (!own) {
        return ref;  // another registry's image: local only if pulled through under its host
      }
      ref = ref.substr(slash + 1);  // berth's own address ("127.0.0.1:5000/web/app")
    }
  }
  // The repository part: up to '@', or to the last ':' after the last '/'.
  size_t at = ref.find('@');
  size_t end = at;
  if (end == std::string::npos) {
    size_t colon = ref.rfind(':');
    size_t last_slash = ref.rfind('/');
    end = colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash)
              ? colon
              : std::string::npos;
  }
  std::string repo = ref.substr(0, end);
  if (d.upstream_for(repo) != nullptr || d.store.get_repository(repo)) {
    return ref;
  }
  UpstreamPtr def;
  {
    std::shared_lock lock(d.up_mu);
    for (const auto& u : d.upstreams) {
      if (u->spec().is_default) {
        def = u;
      }
    }
  }
  if (!def) {
    return ref;
  }
  std::string lib = repo.find('/') == std::string::npos ? "library/" : "";
  return def->spec().prefix + "/" + lib + ref;
}

}  // namespace berth::registry
