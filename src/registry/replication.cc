// SPDX-License-Identifier: Apache-2.0
// Replication: every push to a repository a rule matches is copied to the rule's destination
// registry. Changes are queued in the store (objects of kind "replication-task", named by a
// sequence number so the store's order is the queue's), so a restart loses nothing; one worker
// thread copies them in order per rule and repository (a later push of a repository waits for
// the earlier one), blobs first (skipped when the destination has them), then the manifest,
// retrying failures with back-off from 2 s to 5 min.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "common/json.h"
#include "common/secret_box.h"
#include "registry/registry_impl.h"

namespace berth::registry {

namespace {

constexpr const char* kRuleKind = "replication";
constexpr const char* kTaskKind = "replication-task";
constexpr int64_t kMaxBackoff = 300;

std::string seq_name(int64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(seq));
  return buf;
}

bool matches(const ReplicationSpec& spec, const std::string& repo) {
  return std::any_of(spec.repos.begin(), spec.repos.end(),
                     [&](const std::string& g) { return oci::glob_match(g, repo); });
}

ReplicationStatus status_of(const ReplicationRule& r) {
  ReplicationStatus s;
  s.spec = r.spec;
  s.has_password = !s.spec.password.empty();
  s.spec.password.clear();
  s.created_at = r.created_at;
  s.replicated = r.replicated;
  s.last_success_at = r.last_success_at;
  s.last_error = r.last_error;
  s.last_error_at = r.last_error_at;
  return s;
}

}  // namespace

Result<UpstreamPtr> Registry::Impl::make_destination(const ReplicationSpec& spec,
                                                     int64_t created_at) {
  UpstreamSpec u;
  u.name = spec.name;
  u.url = spec.url;
  u.username = spec.username;
  u.password = spec.password;
  u.ca_file = spec.ca_file;
  BERTH_ASSIGN_OR_RETURN(auto up, make_upstream(std::move(u), created_at));
  up->set_role("destination");
  return up;
}

Status Registry::Impl::load_replications() {
  BERTH_ASSIGN_OR_RETURN(auto rows, store.list_objects(kRuleKind));
  std::vector<std::shared_ptr<ReplicationRule>> loaded;
  for (const auto& row : rows) {
    auto j = parse_json(row.document, "replication");
    if (!j || !j->is_object()) {
      log->error("replication {} is unreadable and skipped", row.name);
      continue;
    }
    auto r = std::make_shared<ReplicationRule>();
    r->spec.name = row.name;
    r->spec.url = j->value("url", std::string());
    r->spec.repos = j->value("repos", std::vector<std::string>());
    r->spec.username = j->value("username", std::string());
    r->spec.ca_file = j->value("ca_file", std::string());
    r->spec.deletes = j->value("deletes", false);
    r->created_at = row.created_at;
    auto pw = open_password(*j);
    if (!pw) {
      log->error("replication {}: its password cannot be opened ({}); it is skipped", row.name,
                 pw.error().message());
      continue;
    }
    r->spec.password = *pw;
    auto dest = make_destination(r->spec, row.created_at);
    if (!dest) {
      log->error("replication {} is skipped: {}", row.name, dest.error().message());
      continue;
    }
    r->remote = *dest;
    loaded.push_back(std::move(r));
  }
  BERTH_ASSIGN_OR_RETURN(auto tasks, store.list_objects(kTaskKind));
  std::lock_guard lock(repl_mu);
  replications = std::move(loaded);
  if (!tasks.empty()) {
    repl_seq = std::stoll(tasks.back().name);
  }
  return ok();
}

std::shared_ptr<ReplicationRule> Registry::Impl::find_replication(const std::string& name) {
  std::lock_guard lock(repl_mu);
  for (const auto& r : replications) {
    if (r->spec.name == name) {
      return r;
    }
  }
  return nullptr;
}

void Registry::Impl::note_change(const std::string& repo, const std::string& tag,
                                 const std::string& digest, bool deleted) {
  std::vector<std::shared_ptr<ReplicationRule>> rules;
  {
    std::lock_guard lock(repl_mu);
    rules = replications;
  }
  int64_t at = now_unix();
  bool queued = false;
  for (const auto& r : rules) {
    if (!matches(r->spec, repo) || (deleted && !r->spec.deletes)) {
      continue;
    }
    Json doc{{"rule", r->spec.name},
             {"repo", repo},
             {"tag", tag},
             {"digest", digest},
             {"action", deleted ? "delete" : "push"},
             {"created_at", at},
             {"attempts", 0},
             {"next_at", 0}};
    int64_t seq = 0;
    {
      std::lock_guard lock(repl_mu);
      seq = ++repl_seq;
    }
    if (auto s =
            store.put_object(store::ObjectRow{kTaskKind, seq_name(seq), doc.dump(), at, at}, true);
        !s) {
      log->error("replication {}: cannot queue {}@{}: {}", r->spec.name, repo, digest,
                 s.error().message());
      continue;
    }
    queued = true;
  }
  if (queued) {
    std::lock_guard lock(repl_mu);
    repl_wake = true;
    repl_cv.notify_all();
  }
}

Status Registry::Impl::delete_reference(const std::string& repo, int64_t repo_id,
                                        const std::string& reference) {
  bool by_digest = oci::is_digest_reference(reference);
  Status s =
      by_digest ? store.delete_manifest(repo_id, reference) : store.delete_tag(repo_id, reference);
  if (s) {
    note_change(repo, by_digest ? "" : reference, by_digest ? reference : "", true);
  }
  return s;
}

// Pushes one manifest (an index: its children first) and the blobs it needs.
Status Registry::Impl::push_to(ReplicationRule& r, const store::Repository& repo,
                               const std::string& digest, const std::string& reference) {
  auto m = store.get_manifest(repo.id, digest);
  if (!m) {
    return m.error().code() == Errc::NotFound ? ok() : Status(m.error());  // deleted meanwhile
  }
  BERTH_ASSIGN_OR_RETURN(auto parsed, oci::parse_manifest(m->content, m->media_type));
  auto& dest = *r.remote;
  const std::string& name = repo.name;
  if (parsed.is_index()) {
    for (const auto& c : parsed.manifests) {
      BERTH_TRY(push_to(r, repo, c.digest.str(), c.digest.str()));
    }
  } else {
    std::vector<oci::Digest> blobs_needed;
    if (parsed.config) {
      blobs_needed.push_back(parsed.config->digest);
    }
    for (const auto& l : parsed.layers) {
      blobs_needed.push_back(l.digest);
    }
    for (const auto& d : blobs_needed) {
      http::ClientRequest head;
      head.method = "HEAD";
      BERTH_ASSIGN_OR_RETURN(auto h, dest.request(head, "/v2/" + name + "/blobs/" + d.str(), name));
      if (h.status == 200) {
        continue;
      }
      auto local = blobs.local_file(d.hex);
      std::string path = local ? *local : std::string();
      if (!local && local.error().code() != Errc::NotFound) {
        return local.error().with_context("replicate " + d.str() + " of " + name);
      }
      if (!local) {
        return Error(Errc::FailedPrecondition, "blob " + d.str() + " of " + name +
                                                   " is not stored here (pulled through " +
                                                   "partially?): it cannot be replicated");
      }
      http::ClientRequest post;
      post.method = "POST";
      BERTH_ASSIGN_OR_RETURN(auto p, dest.request(post, "/v2/" + name + "/blobs/uploads/", name));
      if (p.status != 202 || p.header("location").empty()) {
        return Error(Errc::Unavailable, dest.describe() + " answered " + std::to_string(p.status) +
                                            " to starting an upload to " + name);
      }
      std::string loc = p.header("location");
      loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + d.str();
      http::ClientRequest put;
      put.method = "PUT";
      put.body_file = path;
      put.headers.emplace_back("Content-Type", "application/octet-stream");
      BERTH_ASSIGN_OR_RETURN(auto u, dest.request(put, loc, name));
      if (u.status != 201) {
        return Error(Errc::Unavailable, dest.describe() + " answered " + std::to_string(u.status) +
                                            " to blob " + d.str() + " of " + name + ": " +
                                            u.body.substr(0, 300));
      }
    }
  }
  http::ClientRequest put;
  put.method = "PUT";
  put.body = m->content;
  put.headers.emplace_back("Content-Type", m->media_type);
  BERTH_ASSIGN_OR_RETURN(auto u,
                         dest.request(put, "/v2/" + name + "/manifests/" + reference, name));
  if (u.status != 201) {
    return Error(Errc::Unavailable, dest.describe() + " answered " + std::to_string(u.status) +
                                        " to manifest " + name + ":" + reference + ": " +
                                        u.body.substr(0, 300));
  }
  return ok();
}

Status Registry::Impl::replicate(ReplicationRule& r, const Json& task) {
  std::string repo = task.value("repo", std::string());
  std::string digest = task.value("digest", std::string());
  std::string tag = task.value("tag", std::string());
  if (task.value("action", std::string()) == "delete") {
    // A manifest by digest, or (untagging) only a tag.
    std::string ref = digest.empty() ? tag : digest;
    std::string what = repo + (digest.empty() ? ":" : "@") + ref;
    http::ClientRequest del;
    del.method = "DELETE";
    BERTH_ASSIGN_OR_RETURN(auto d,
                           r.remote->request(del, "/v2/" + repo + "/manifests/" + ref, repo));
    if (d.status == 202 || d.status == 200 || d.status == 404) {
      return ok();
    }
    if (digest.empty() && d.status >= 400 && d.status < 500) {
      // Deleting a tag alone is optional in the OCI distribution spec (CNCF distribution
      // refuses it): that destination keeps the tag, and the changes after it still go.
      log->warn("replication rule={} {} cannot delete tags (HTTP {}): {} kept there", r.spec.name,
                r.remote->describe(), d.status, what);
      return ok();
    }
    return Error(Errc::Unavailable, r.remote->describe() + " answered " + std::to_string(d.status) +
                                        " to deleting " + what);
  }
  auto rec = store.get_repository(repo);
  if (!rec) {
    return rec.error().code() == Errc::NotFound ? ok() : Status(rec.error());
  }
  return push_to(r, *rec, digest, tag.empty() ? digest : tag);
}

namespace {

// One rule's pass over its pending tasks, on a thread of its own: a slow or unreachable
// destination holds up only its own rule.
struct RuleWorker {
  std::thread thread;
  std::atomic<bool> done{true};
};

}  // namespace

void Registry::Impl::replication_loop() {
  std::map<std::string, RuleWorker> workers;
  while (!stopping.load()) {
    {
      std::unique_lock lock(repl_mu);
      repl_cv.wait_for(lock, std::chrono::seconds(1),
                       [this] { return stopping.load() || repl_wake; });
      repl_wake = false;
      if (replications.empty()) {
        continue;  // nothing can be pending: a rule's tasks go with it (delete_replication)
      }
    }
    auto tasks = store.list_objects(kTaskKind);
    if (!tasks) {
      continue;
    }
    // Each rule's tasks, oldest first (sequence order); tasks of deleted rules go.
    std::map<std::string, std::vector<QueuedTask>> by_rule;
    for (auto& row : *tasks) {
      auto task = parse_json(row.document, "replication task");
      std::string rule = task ? task->value("rule", std::string()) : "";
      if (!task || !find_replication(rule)) {
        (void)store.delete_object(kTaskKind, row.name);
        continue;
      }
      by_rule[rule].push_back(QueuedTask{std::move(row), std::move(*task)});
    }
    for (auto& [rule, rows] : by_rule) {
      auto& w = workers[rule];
      if (!w.done.load()) {
        continue;  // still in its previous pass
      }
      if (w.thread.joinable()) {
        w.thread.join();
      }
      w.done = false;
      w.thread = std::thread([this, rows = std::move(rows), &w]() mutable {
        replication_pass(std::move(rows));
        w.done = true;
      });
    }
  }
  for (auto& [rule, w] : workers) {
    if (w.thread.joinable()) {
      w.thread.join();
    }
  }
}

void Registry::Impl::replication_pass(std::vector<QueuedTask> rows) {
  std::set<std::string> blocked;  // repositories with an earlier task still pending
  int64_t now = now_unix();
  for (auto& [row, task] : rows) {
    if (stopping.load()) {
      return;
    }
    std::string rule = task.value("rule", std::string());
    std::string repo = task.value("repo", std::string());
    if (blocked.count(repo) != 0) {
      continue;
    }
    auto r = find_replication(rule);
    if (!r) {
      return;  // deleted meanwhile (its tasks went with it)
    }
    if (task.value("next_at", int64_t{0}) > now) {
      blocked.insert(repo);
      continue;
    }
    Status s = replicate(*r, task);
    std::lock_guard lock(repl_mu);
    if (s) {
      (void)store.delete_object(kTaskKind, row.name);
      r->replicated++;
      r->last_success_at = now_unix();
      r->last_error.clear();
      log->info("replicated rule={} repo={} ref={} action={}", rule, repo,
                task.value("tag", std::string()).empty() ? task.value("digest", std::string())
                                                         : task.value("tag", std::string()),
                task.value("action", std::string()));
      continue;
    }
    int64_t attempts = task.value("attempts", int64_t{0}) + 1;
    task["attempts"] = attempts;
    task["next_at"] =
        now_unix() + std::min<int64_t>(kMaxBackoff, int64_t{1} << std::min<int64_t>(attempts, 9));
    task["last_error"] = s.error().message();
    (void)store.put_object(
        store::ObjectRow{kTaskKind, row.name, task.dump(), row.created_at, now_unix()}, false);
    r->last_error = s.error().message();
    r->last_error_at = now_unix();
    log->warn("replication rule={} repo={} attempt={} failed: {}", rule, repo, attempts,
              s.error().message());
    blocked.insert(repo);
  }
}

void Registry::Impl::stop_replication() {
  stopping.store(true);
  repl_cv.notify_all();
  if (repl_thread.joinable()) {
    repl_thread.join();
  }
}

void Registry::start_replication() {
  auto& d = *impl_;
  if (d.repl_thread.joinable()) {
    return;
  }
  d.repl_thread = std::thread([impl = impl_.get()] { impl->replication_loop(); });
}

Result<ReplicationStatus> Registry::create_replication(const http::RequestContext& ctx,
                                                       ReplicationSpec spec) {
  auto& d = *impl_;
  BERTH_TRY(d.authorize(ctx, "registry:CreateReplication", "replication/" + spec.name));
  BERTH_TRY(validate_upstream_name(spec.name, "replication"));
  if (spec.repos.empty()) {
    return Error(Errc::InvalidArgument, "--repos needs at least one repository glob ('web/*')");
  }
  for (const auto& g : spec.repos) {
    if (g.empty() || g.size() > 255 || g.find_first_of(" \t\n") != std::string::npos) {
      return Error(Errc::InvalidArgument, "repos: '" + g + "' is not a repository glob");
    }
  }
  BERTH_TRY(d.check_credentials(spec.username, spec.password, "replication"));
  if (d.find_replication(spec.name)) {
    return Error(Errc::AlreadyExists, "replication " + spec.name + " already exists");
  }
  int64_t now = now_unix();
  BERTH_ASSIGN_OR_RETURN(auto dest, d.make_destination(spec, now));
  auto rule = std::make_shared<ReplicationRule>();
  rule->spec = spec;
  rule->spec.url = dest->spec().url;
  rule->created_at = now;
  rule->remote = dest;
  Json doc{{"url", rule->spec.url},
           {"repos", spec.repos},
           {"username", spec.username},
           {"ca_file", spec.ca_file},
           {"deletes", spec.deletes}};
  if (!spec.password.empty()) {
    doc["password"] = d.opts.secrets->seal(spec.password);
  }
  BERTH_TRY(d.store.put_object(store::ObjectRow{kRuleKind, spec.name, doc.dump(), now, now}, true));
  {
    std::lock_guard lock(d.repl_mu);
    d.replications.push_back(rule);
  }
  d.log->info("replication created name={} url={} repos={} principal={}", spec.name, rule->spec.url,
              Json(spec.repos).dump(), ctx.principal);
  return status_of(*rule);
}

Result<ReplicationStatus> Registry::Impl::replication_status(const ReplicationRule& r) {
  ReplicationStatus s;
  {
    std::lock_guard lock(repl_mu);
    s = status_of(r);
  }
  BERTH_ASSIGN_OR_RETURN(auto tasks, store.list_objects(kTaskKind));
  int64_t oldest = 0;
  for (const auto& row : tasks) {
    auto t = parse_json(row.document, "replication task");
    if (!t || t->value("rule", std::string()) != r.spec.name) {
      continue;
    }
    s.pending++;
    if (oldest == 0) {
      oldest = t->value("created_at", row.created_at);
    }
    // After a restart the rule's own memory is empty until the next try: the tasks keep theirs.
    if (s.last_error.empty() && t->contains("last_error")) {
      s.last_error = t->value("last_error", std::string());
      s.last_error_at = row.updated_at;
    }
    if (s.next.size() < 10) {
      std::string tag = t->value("tag", std::string());
      s.next.push_back(t->value("action", std::string()) + " " + t->value("repo", std::string()) +
                       (tag.empty() ? "" : ":" + tag) + " " + t->value("digest", std::string()));
    }
  }
  s.lag_seconds = oldest == 0 ? 0 : std::max<int64_t>(0, now_unix() - oldest);
  return s;
}

Result<std::vector<ReplicationStatus>> Registry::list_replications(
    const http::RequestContext& ctx) {
  auto& d = *impl_;
  BERTH_TRY(d.authorize(ctx, "registry:ListReplications", "replication/*"));
  std::vector<std::shared_ptr<ReplicationRule>> rules;
  {
    std::lock_guard lock(d.repl_mu);
    rules = d.replications;
  }
  std::vector<ReplicationStatus> out;
  for (const auto& r : rules) {
    BERTH_ASSIGN_OR_RETURN(auto s, d.replication_status(*r));
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.spec.name < b.spec.name; });
  return out;
}

Result<ReplicationStatus> Registry::get_replication(const http::RequestContext& ctx,
                                                    const std::string& name) {
  BERTH_TRY(impl_->authorize(ctx, "registry:GetReplication", "replication/" + name));
  auto r = impl_->find_replication(name);
  if (!r) {
    return Error(Errc::NotFound, "replication " + name + " does not exist");
  }
  return impl_->replication_status(*r);
}

Status Registry::delete_replication(const http::RequestContext& ctx, const std::string& name) {
  auto& d = *impl_;
  BERTH_TRY(d.authorize(ctx, "registry:DeleteReplication", "replication/" + name));
  if (!d.find_replication(name)) {
    return Error(Errc::NotFound, "replication " + name + " does not exist");
  }
  BERTH_TRY(d.store.delete_object(kRuleKind, name));
  {
    std::lock_guard lock(d.repl_mu);
    d.replications.erase(std::remove_if(d.replications.begin(), d.replications.end(),
                                        [&](const auto& r) { return r->spec.name == name; }),
                         d.replications.end());
  }
  // Its queued changes go with it (a task the worker holds right now it drops itself).
  if (auto tasks = d.store.list_objects(kTaskKind)) {
    for (const auto& row : *tasks) {
      auto t = parse_json(row.document, "replication task");
      if (t && t->value("rule", std::string()) == name) {
        (void)d.store.delete_object(kTaskKind, row.name);
      }
    }
  }
  d.log->info("replication deleted name={} principal={}", name, ctx.principal);
  return ok();
}

}  // namespace berth::registry
