// SPDX-License-Identifier: Apache-2.0
// Referrers (OCI distribution 1.1): the manifests whose subject is a digest, as an index,
// filtered by artifactType.
#include "common/json.h"
#include "registry/registry_impl.h"

namespace berth::registry {

awaitable<void> Registry::Impl::referrers(http::Exchange& ex, std::string name,
                                          std::string digest) {
  auto repo = co_await repo_for_digest(ex, name, digest);
  if (!repo) {
    co_return;
  }
  int64_t id = repo->id;
  auto list_referrers = [this, id, digest] { return store.referrers(id, digest); };
  auto refs = co_await run_blocking(pool, std::move(list_referrers));
  if (!refs) {
    co_return co_await fail_error(ex, refs.error());
  }
  auto filter = ex.query("artifactType");
  Json list = Json::array();
  for (const auto& r : *refs) {
    if (filter && r.artifact_type != *filter) {
      continue;
    }
    Json desc = {{"mediaType", r.media_type}, {"digest", r.digest}, {"size", r.size}};
    if (!r.artifact_type.empty()) {
      desc["artifactType"] = r.artifact_type;
    }
    if (!r.annotations_json.empty()) {
      desc["annotations"] = Json::parse(r.annotations_json, nullptr, false);
    }
    list.push_back(std::move(desc));
  }
  auto res = base_response(200);
  res.header("Content-Type", std::string(oci::kOciIndex));
  if (filter) {
    res.header("OCI-Filters-Applied", "artifactType");
  }
  res.body = Json{{"schemaVersion", 2}, {"mediaType", oci::kOciIndex}, {"manifests", list}}.dump();
  co_await ex.send(std::move(res));
}

}  // namespace berth::registry
