// SPDX-License-Identifier: Apache-2.0
#include "cli/repos.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "cli/iam.h"
#include "cli/table.h"
#include "cli/util.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/url.h"

namespace berth::cli {

namespace {

// The audit API's ceiling for one answer.
constexpr int kMaxAuditLimit = 100000;

}  // namespace

struct RepoCommands {
  CLI::App* repo_create = nullptr;
  CLI::App* repo_ls = nullptr;
  CLI::App* repo_rm = nullptr;
  CLI::App* repo_policy_put = nullptr;
  CLI::App* lifecycle_put = nullptr;
  CLI::App* lifecycle_get = nullptr;
  CLI::App* lifecycle_rm = nullptr;
  CLI::App* lifecycle_preview = nullptr;
  CLI::App* image_ls = nullptr;
  CLI::App* image_rm = nullptr;
  CLI::App* gc = nullptr;
  CLI::App* audit_ls = nullptr;

  bool json = false;
  std::string name;  // repository
  bool immutable = false;
  bool make_public = false;
  std::vector<std::string> mutable_globs;
  std::string policy_file;
  std::string rules_file;
  std::string image_ref;
  std::string audit_since, audit_principal;
  int audit_limit = 100;
};

namespace {

std::string repo_path(const std::string& name) {
  return "/api/v1/repositories/" + url::encode(name);
}

// " except latest, dev-*" for the mutable tag globs of an immutable repository.
std::string exceptions(const std::vector<std::string>& globs) {
  std::string out;
  for (size_t i = 0; i < globs.size(); ++i) {
    out += (i == 0 ? " except " : ", ") + globs[i];
  }
  return out;
}

// "mutable", "immutable", or "immutable except latest, dev-*".
std::string tag_mutability(bool immutable, const std::vector<std::string>& globs) {
  return immutable ? "immutable" + exceptions(globs) : "mutable";
}

// --since: 90s, 15m, 2h, 1d ago, or absolute UNIX seconds.
Result<int64_t> audit_since(const std::string& since) {
  if (since.empty()) {
    return int64_t{0};
  }
  Error bad(Errc::InvalidArgument, "--since '" + since + "': use 90s, 15m, 2h, 1d or UNIX seconds");
  size_t digits = since.find_first_not_of("0123456789");
  if (digits == 0 || (digits == std::string::npos ? since.size() : digits) > 15) {
    return bad;
  }
  int64_t n = std::stoll(since.substr(0, digits));
  std::string unit = digits == std::string::npos ? "" : since.substr(digits);
  if (unit.empty()) {
    return n;  // absolute UNIX seconds
  }
  int64_t mult = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (mult == 0) {
    return bad;
  }
  return static_cast<int64_t>(std::time(nullptr)) - n * mult;
}

// An image's tags, comma-separated ("<none>" for an untagged image).
Column tags_column() {
  return {"TAGS", [](const Json& x) {
            std::string tags;
            for (const auto& t : x.value("tags", Json::array())) {
              tags += (tags.empty() ? "" : ",") + t.get<std::string>();
            }
            return tags.empty() ? "<none>" : tags;
          }};
}

int run_audit_ls(const RepoCommands& s, const api::Client& client) {
  if (s.audit_limit < 1 || s.audit_limit > kMaxAuditLimit) {
    return fail(Error(Errc::InvalidArgument,
                      "--limit must be from 1 to " + std::to_string(kMaxAuditLimit)));
  }
  auto since = audit_since(s.audit_since);
  if (!since) {
    return fail(since.error());
  }
  // One event more than asked tells whether more exist.
  int ask = std::min(s.audit_limit + 1, kMaxAuditLimit);
  std::string path =
      "/api/v1/audit?since=" + std::to_string(*since) + "&limit=" + std::to_string(ask);
  if (!s.audit_principal.empty()) {
    path += "&principal=" + url::encode(s.audit_principal);
  }
  auto r = client.call("GET", path);
  if (!r) {
    return fail(r.error());
  }
  Json& events = (*r)["events"];
  bool more = events.is_array() && events.size() > static_cast<size_t>(s.audit_limit);
  if (more) {
    events.erase(events.begin() + s.audit_limit, events.end());
  }
  int rc = print_list(*r, "events", s.json,
                      {{"TIME", [](const Json& e) { return when(num(e, "time")); }},
                       field("PRINCIPAL", "principal"),
                       field("ACTION", "action"),
                       field("RESOURCE", "resource"),
                       field("DECISION", "decision"),
                       field("SOURCE", "source")});
  if (more) {
    std::fprintf(stderr,
                 "showing the newest %d events; more exist: raise --limit (up to %d) or narrow "
                 "with --since or --principal\n",
                 s.audit_limit, kMaxAuditLimit);
  }
  return rc;
}

int run_image_rm(const RepoCommands& s, const api::Client& client) {
  std::string name, ref;
  auto at = s.image_ref.find('@');
  if (at != std::string::npos) {
    name = s.image_ref.substr(0, at);
    ref = s.image_ref.substr(at + 1);
  } else {
    auto colon = s.image_ref.rfind(':');
    if (colon == std::string::npos || s.image_ref.find('/', colon) != std::string::npos) {
      return fail(
          Error(Errc::InvalidArgument, "'" + s.image_ref + "' must be REPO:TAG or REPO@DIGEST"));
    }
    name = s.image_ref.substr(0, colon);
    ref = s.image_ref.substr(colon + 1);
  }
  auto r = client.call("DELETE", repo_path(name) + "/images/" + url::encode(ref));
  if (!r) {
    return fail(r.error());
  }
  if (s.json) {
    return print_json(*r);
  }
  std::printf("removed %s\n", s.image_ref.c_str());
  return 0;
}

// `repo lifecycle put|get|rm|preview`: the server validates the rules (ECR's shape) and names
// the field at fault; the CLI only reads the file.
std::optional<int> run_lifecycle(const RepoCommands& s, const api::Client& client) {
  std::string path = repo_path(s.name) + "/lifecycle";
  if (*s.lifecycle_put) {
    auto text = fs::read_file(s.rules_file);
    if (!text) {
      return fail(Error(Errc::InvalidArgument,
                        "cannot read rules file " + s.rules_file + ": " + text.error().message()));
    }
    auto doc = parse_json(*text, ("rules file " + s.rules_file).c_str());
    if (!doc) {
      return fail(doc.error());
    }
    auto r = client.call("PUT", path, *doc);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    size_t n = r->contains("rules") ? (*r)["rules"].size() : 0;
    std::printf("set %zu lifecycle rule(s) on repository %s\n", n, s.name.c_str());
    return 0;
  }
  if (*s.lifecycle_get) {
    auto r = client.call("GET", path);
    if (!r) {
      return fail(r.error());
    }
    std::printf("%s\n", s.json ? r->dump().c_str() : r->dump(2).c_str());
    return 0;
  }
  if (*s.lifecycle_rm) {
    auto r = client.call("DELETE", path);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("removed the lifecycle rules of repository %s\n", s.name.c_str());
    return 0;
  }
  if (*s.lifecycle_preview) {
    return print_list(client.call("GET", path + "/preview"), "images", s.json,
                      {field("DIGEST", "digest"),
                       tags_column(),
                       {"PUSHED", [](const Json& x) { return when(num(x, "pushedAt")); }},
                       field("ACTION", "action"),
                       field("REASON", "reason")});
  }
  return std::nullopt;
}

}  // namespace

std::shared_ptr<RepoCommands> add_repo_commands(CLI::App& app) {
  auto s = std::make_shared<RepoCommands>();
  auto* repo = app.add_subcommand("repo", "repositories");
  repo->require_subcommand(1);
  s->repo_create = repo->add_subcommand("create", "create a repository");
  s->repo_create->add_option("name", s->name, "repository name, e.g. web/app")->required();
  auto* immutable =
      s->repo_create->add_flag("--immutable-tags", s->immutable, "refuse to move an existing tag");
  s->repo_create->add_flag("--public", s->make_public,
                           "anyone (anonymous included) may pull; pushes still need rights");
  add_repeatable(s->repo_create, "--mutable-tags", s->mutable_globs, "GLOB",
                 "a tag glob that stays mutable in an immutable repository, e.g. latest "
                 "(repeatable)")
      ->needs(immutable);
  add_json_flag(s->repo_create, s->json);
  s->repo_ls = repo->add_subcommand("ls", "list repositories");
  add_json_flag(s->repo_ls, s->json);
  s->repo_rm = repo->add_subcommand("rm", "delete a repository with its tags and manifests");
  s->repo_rm->add_option("name", s->name, "repository name")->required();
  add_json_flag(s->repo_rm, s->json);

  auto* policy = repo->add_subcommand("policy", "repository (resource) policies");
  policy->require_subcommand(1);
  s->repo_policy_put =
      policy->add_subcommand("put", "set a repository's resource policy from a file");
  s->repo_policy_put->add_option("name", s->name, "repository name")->required();
  s->repo_policy_put->add_option("--file", s->policy_file, "policy document (JSON)")->required();
  add_json_flag(s->repo_policy_put, s->json);

  auto* lifecycle =
      repo->add_subcommand("lifecycle", "lifecycle rules: expire old images (ECR's policy shape)");
  lifecycle->require_subcommand(1);
  s->lifecycle_put = lifecycle->add_subcommand("put", "set a repository's lifecycle rules");
  s->lifecycle_put->add_option("name", s->name, "repository name")->required();
  s->lifecycle_put->add_option("--file", s->rules_file, "rules (JSON, ECR's lifecycle policy)")
      ->required();
  s->lifecycle_get = lifecycle->add_subcommand("get", "print a repository's lifecycle rules");
  s->lifecycle_rm = lifecycle->add_subcommand("rm", "remove a repository's lifecycle rules");
  s->lifecycle_preview = lifecycle->add_subcommand(
      "preview", "what the rules would expire now and why, changing nothing");
  for (auto* c : {s->lifecycle_put, s->lifecycle_get, s->lifecycle_rm, s->lifecycle_preview}) {
    if (c != s->lifecycle_put) {
      c->add_option("name", s->name, "repository name")->required();
    }
    add_json_flag(c, s->json);
  }

  auto* image = app.add_subcommand("image", "images in a repository");
  image->require_subcommand(1);
  s->image_ls = image->add_subcommand("ls", "list images: digest, tags, size, platform");
  s->image_ls->add_option("repo", s->name, "repository name")->required();
  add_json_flag(s->image_ls, s->json);
  s->image_rm = image->add_subcommand("rm", "remove REPO:TAG (the tag) or REPO@DIGEST");
  s->image_rm->add_option("ref", s->image_ref, "REPO:TAG or REPO@DIGEST")->required();
  add_json_flag(s->image_rm, s->json);

  s->gc = app.add_subcommand("gc",
                             "delete blobs no manifest references, older than the grace period "
                             "(registry.gc_grace)");
  add_json_flag(s->gc, s->json);

  auto* audit = app.add_subcommand("audit", "the audit log: state changes and denials");
  audit->require_subcommand(1);
  s->audit_ls = audit->add_subcommand("ls", "list audit events, newest first");
  s->audit_ls->add_option("--since", s->audit_since,
                          "only events this recent (e.g. 90s, 15m, 2h, 1d) or since UNIX seconds");
  s->audit_ls->add_option("--principal", s->audit_principal,
                          "only this principal (user/NAME, role/NAME)");
  s->audit_ls
      ->add_option("--limit", s->audit_limit,
                   "at most this many events, newest first (up to 100000); says so when more "
                   "exist")
      ->capture_default_str();
  add_json_flag(s->audit_ls, s->json);
  return s;
}

std::optional<int> run_repo_commands(RepoCommands& s, const api::Client& client) {
  if (*s.repo_create) {
    Json body{{"name", s.name},
              {"immutable_tags", s.immutable},
              {"mutable_tags", s.mutable_globs},
              {"public", s.make_public}};
    auto r = client.call("POST", "/api/v1/repositories", body);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::string mode = s.immutable ? " (immutable tags" + exceptions(s.mutable_globs) + ")" : "";
    std::printf("created repository %s%s\n", s.name.c_str(), mode.c_str());
    return 0;
  }
  if (*s.repo_ls) {
    return print_list(client.call("GET", "/api/v1/repositories"), "repositories", s.json,
                      {field("NAME", "name"),
                       {"TAG MUTABILITY",
                        [](const Json& x) {
                          return tag_mutability(
                              x.value("immutable_tags", false),
                              x.value("mutable_tags", std::vector<std::string>{}));
                        }},
                       {"CREATED", [](const Json& x) { return when(num(x, "created_at")); }}});
  }
  if (*s.repo_rm) {
    auto r = client.call("DELETE", repo_path(s.name));
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("deleted repository %s\n", s.name.c_str());
    return 0;
  }
  if (*s.repo_policy_put) {
    auto doc = read_policy_file(s.policy_file);
    if (!doc) {
      return fail(doc.error());
    }
    auto r = client.call("PUT", repo_path(s.name) + "/policy", *doc);
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf("set the policy of repository %s\n", s.name.c_str());
    return 0;
  }
  if (auto rc = run_lifecycle(s, client)) {
    return rc;
  }
  if (*s.image_ls) {
    return print_list(client.call("GET", repo_path(s.name) + "/images"), "images", s.json,
                      {field("DIGEST", "digest"),
                       tags_column(),
                       {"SIZE", [](const Json& x) { return human_size(num(x, "size")); }},
                       {"PLATFORM",
                        [](const Json& x) {
                          std::string p = x.contains("artifact_type") ? str(x, "artifact_type")
                                                                      : str(x, "platform");
                          return p.empty() ? "-" : p;
                        }},
                       {"PUSHED", [](const Json& x) { return when(num(x, "pushed_at")); }}});
  }
  if (*s.image_rm) {
    return run_image_rm(s, client);
  }
  if (*s.gc) {
    auto r = client.call("POST", "/api/v1/gc");
    if (!r) {
      return fail(r.error());
    }
    if (s.json) {
      return print_json(*r);
    }
    std::printf(
        "gc: deleted %lld blob(s) and %lld orphan file(s), freed %s, removed %lld stale "
        "upload(s)\n",
        static_cast<long long>(num(*r, "blobs_deleted")),
        static_cast<long long>(num(*r, "orphan_files_deleted")),
        human_size(num(*r, "bytes_freed")).c_str(),
        static_cast<long long>(num(*r, "uploads_removed")));
    return 0;
  }
  if (*s.audit_ls) {
    return run_audit_ls(s, client);
  }
  return std::nullopt;
}

}  // namespace berth::cli
