// SPDX-License-Identifier: Apache-2.0
// Lifecycle rules' I/O: the rules live in the objects table (kind "lifecycle", named after the
// repository); preview and apply read the repository's manifests, ask the pinned_digests hook
// what is in use elsewhere, and run the pure evaluation of lifecycle_rules.cc. Applying deletes
// manifests only; blobs go at the next gc, as after any other delete.
#include "registry/lifecycle.h"

#include <map>

#include "common/json.h"
#include "registry/registry_impl.h"

namespace berth::registry {

namespace {

constexpr const char* kKind = "lifecycle";
constexpr const char* kPinnedReason = "pinned by a service revision or a running build";

Error no_rules(const std::string& repo) {
  return Error(Errc::NotFound, "repository " + repo +
                                   " has no lifecycle rules; set them with: berth repo "
                                   "lifecycle put " +
                                   repo + " --file rules.json");
}

// Blocking. The repository's manifests as evaluation sees them: an index's children come from
// its bytes (the store keeps them in manifest_refs but does not read them back).
Result<std::vector<LifecycleImage>> load_images(store::MetadataStore& st, int64_t repo_id) {
  BERTH_ASSIGN_OR_RETURN(auto list, st.list_images(repo_id));
  std::vector<LifecycleImage> out;
  out.reserve(list.size());
  for (auto& s : list) {
    auto m = st.get_manifest(repo_id, s.digest);
    if (!m && m.error().code() == Errc::NotFound) {
      continue;  // deleted since the listing
    }
    if (!m) {
      return m.error();
    }
    LifecycleImage img;
    img.digest = s.digest;
    img.tags.assign(s.tags.begin(), s.tags.end());
    img.pushed_at = s.pushed_at;
    img.subject = m->subject;
    auto parsed = oci::parse_manifest(m->content, m->media_type);
    if (!parsed) {
      // Without its children an index could lose them while it stays: judge nothing.
      return Error(Errc::DataLoss, "manifest " + s.digest + " cannot be read (" +
                                       parsed.error().message() + "); run berthd fsck");
    }
    for (const auto& c : parsed->manifests) {
      img.children.push_back(c.digest.str());
    }
    out.push_back(std::move(img));
  }
  return out;
}

// Blocking: what the hook says is in use outside the registry.
std::vector<std::string> pinned_now(const Options& opts) {
  return opts.pinned_digests ? opts.pinned_digests() : std::vector<std::string>{};
}

// "*" from the hook: it could not tell, so every image is pinned.
std::map<std::string, std::string> pinned_map(const std::vector<std::string>& pinned,
                                              const std::vector<LifecycleImage>& images) {
  std::map<std::string, std::string> out;
  for (const auto& d : pinned) {
    if (d == "*") {
      for (const auto& img : images) {
        out[img.digest] = "what services and builds use could not be read";
      }
      break;
    }
    out.emplace(d, kPinnedReason);
  }
  return out;
}

// Blocking: the rules of `repo` evaluated now.
Result<LifecyclePreview> evaluate_repo(store::MetadataStore& st,
                                       const std::vector<std::string>& pinned,
                                       const store::Repository& repo) {
  auto row = st.get_object(kKind, repo.name);
  if (!row && row.error().code() == Errc::NotFound) {
    return no_rules(repo.name);
  }
  if (!row) {
    return row.error();
  }
  BERTH_ASSIGN_OR_RETURN(auto policy, parse_lifecycle_policy(row->document));
  BERTH_ASSIGN_OR_RETURN(auto images, load_images(st, repo.id));
  LifecyclePreview p;
  p.repository = repo.name;
  p.images = evaluate_lifecycle(policy, images, pinned_map(pinned, images), now_unix());
  return p;
}

// Blocking: whether the repository still holds exactly the manifests and tags `p` judged.
bool unchanged(store::MetadataStore& st, int64_t repo_id, const LifecyclePreview& p) {
  auto now = st.list_images(repo_id);
  if (!now || now->size() != p.images.size()) {
    return false;
  }
  std::map<std::string, std::vector<std::string>> judged;
  for (const auto& d : p.images) {
    judged[d.digest] = d.tags;
  }
  for (const auto& img : *now) {
    auto it = judged.find(img.digest);
    if (it == judged.end() || it->second != img.tags) {
      return false;
    }
  }
  return true;
}

// Blocking: the decisions for a repository, judged again (up to 3 times) while pushes change
// it under the evaluation, so a tag pushed meanwhile onto a doomed digest (or a new index
// naming one) is seen before anything is deleted.
Result<LifecyclePreview> settled_evaluation(store::MetadataStore& st,
                                            const std::vector<std::string>& pinned,
                                            const store::Repository& repo) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    BERTH_ASSIGN_OR_RETURN(auto p, evaluate_repo(st, pinned, repo));
    if (unchanged(st, repo.id, p)) {
      return p;
    }
  }
  return Error(Errc::Conflict, "the repository kept changing while its rules were evaluated");
}

}  // namespace

awaitable<Status> Registry::put_lifecycle(http::RequestContext ctx, std::string repo,
                                          std::string json) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:PutLifecyclePolicy", "repository/" + repo));
  auto r = co_await impl_->find_repo(repo);
  if (!r) {
    co_return r.error();
  }
  auto policy = parse_lifecycle_policy(json);
  if (!policy) {
    co_return policy.error();
  }
  auto* impl = impl_.get();
  int64_t now = now_unix();
  // Stored compact, as parsed: get prints the rules, not the author's whitespace.
  std::string doc = Json::parse(json).dump();
  auto put = [impl, repo, doc, now] {
    return impl->store.put_object(store::ObjectRow{kKind, repo, doc, now, now}, false);
  };
  Status s = co_await run_blocking(impl->pool, std::move(put));
  if (!s) {
    impl->note_no_space(s.error(), "put lifecycle rules of " + repo);
    co_return s;
  }
  impl->log->info("lifecycle rules set repo={} rules={} principal={}", repo, policy->rules.size(),
                  ctx.principal);
  co_return s;
}

awaitable<Result<std::string>> Registry::get_lifecycle(http::RequestContext ctx, std::string repo) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:GetLifecyclePolicy", "repository/" + repo));
  auto r = co_await impl_->find_repo(repo);
  if (!r) {
    co_return r.error();
  }
  auto* impl = impl_.get();
  auto get = [impl, repo]() -> Result<std::string> {
    auto row = impl->store.get_object(kKind, repo);
    if (!row && row.error().code() == Errc::NotFound) {
      return no_rules(repo);
    }
    if (!row) {
      return row.error();
    }
    return row->document;
  };
  co_return co_await run_blocking(impl->pool, std::move(get));
}

awaitable<Status> Registry::delete_lifecycle(http::RequestContext ctx, std::string repo) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:DeleteLifecyclePolicy", "repository/" + repo));
  auto r = co_await impl_->find_repo(repo);
  if (!r) {
    co_return r.error();
  }
  auto* impl = impl_.get();
  auto del = [impl, repo]() -> Status {
    auto s = impl->store.delete_object(kKind, repo);
    if (!s && s.error().code() == Errc::NotFound) {
      return no_rules(repo);
    }
    return s;
  };
  Status s = co_await run_blocking(impl->pool, std::move(del));
  if (s) {
    impl->log->info("lifecycle rules deleted repo={} principal={}", repo, ctx.principal);
  }
  co_return s;
}

awaitable<Result<LifecyclePreview>> Registry::preview_lifecycle(http::RequestContext ctx,
                                                                std::string repo) {
  BERTH_CO_TRY(impl_->authorize(ctx, "registry:PreviewLifecyclePolicy", "repository/" + repo));
  auto r = co_await impl_->find_repo(repo);
  if (!r) {
    co_return r.error();
  }
  auto* impl = impl_.get();
  std::shared_ptr<const store::Repository> found = *r;
  auto preview = [impl, found] {
    return evaluate_repo(impl->store, pinned_now(impl->opts), *found);
  };
  co_return co_await run_blocking(impl->pool, std::move(preview));
}

awaitable<int64_t> Registry::apply_lifecycle() {
  auto* impl = impl_.get();
  // One blocking job for every repository: the evaluation and its deletions are close in
  // time, so what is deleted is what the rules decided a moment ago.
  auto apply = [impl]() -> int64_t {
    auto rows = impl->store.list_objects(kKind);
    if (!rows) {
      impl->log->warn("lifecycle: cannot list rules error={}", rows.error().message());
      return 0;
    }
    int64_t expired = 0;
    std::vector<std::string> pinned;
    if (!rows->empty()) {
      pinned = pinned_now(impl->opts);  // once per pass, not per repository
    }
    for (const auto& row : *rows) {
      auto repo = impl->store.get_repository(row.name);
      if (!repo && repo.error().code() == Errc::NotFound) {
        (void)impl->store.delete_object(kKind, row.name);  // left by a crash mid-delete
        continue;
      }
      if (!repo) {
        impl->log->warn("lifecycle: repo={} error={}", row.name, repo.error().message());
        continue;
      }
      auto p = settled_evaluation(impl->store, pinned, *repo);
      if (!p) {
        impl->log->warn("lifecycle: repo={} not applied error={}", row.name, p.error().message());
        continue;
      }
      std::vector<const LifecycleDecision*> doomed;
      for (const auto& d : p->images) {
        if (d.expire) {
          doomed.push_back(&d);
        }
      }
      // Indexes before their children, subjects before their referrers.
      std::stable_sort(doomed.begin(), doomed.end(),
                       [](const auto* a, const auto* b) { return a->wave < b->wave; });
      for (const auto* d : doomed) {
        Status s = impl->store.delete_manifest(repo->id, d->digest);
        if (!s && s.error().code() != Errc::NotFound) {
          impl->log->warn("lifecycle: repo={} digest={} not expired error={}", row.name, d->digest,
                          s.error().message());
          continue;
        }
        ++expired;
        if (s) {
          impl->note_change(row.name, "", d->digest, true);  // --deletes replicates it
        }
        std::string tags;
        for (const auto& t : d->tags) {
          tags += (tags.empty() ? "" : ",") + t;
        }
        impl->log->info("lifecycle expired repo={} digest={} tags={} rule={} reason={}", row.name,
                        d->digest, tags.empty() ? "-" : tags, d->rule_priority, d->reason);
        if (impl->opts.audit != nullptr) {
          impl->opts.audit->record(iam::Request{"system:lifecycle", "registry:Delete",
                                                "repository/" + row.name + "@" + d->digest},
                                   true, "lifecycle rule " + std::to_string(d->rule_priority));
        }
      }
      if (!doomed.empty()) {
        impl->invalidate_repo(row.name);
      }
    }
    return expired;
  };
  co_return co_await run_blocking(impl->pool, std::move(apply));
}

}  // namespace berth::registry
