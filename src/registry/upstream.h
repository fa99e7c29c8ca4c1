// SPDX-License-Identifier: Apache-2.0
// Private to src/registry: a remote registry and how berth talks to it (upstream.cc): an
// upstream it pulls through, or a destination it replicates to; a replication rule
// (replication.cc). A blob being fetched through an upstream is a BlobFetch (blob_fetch.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "http/client.h"
#include "registry/registry.h"

namespace berth::registry {

/// A WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."`.
struct AuthChallenge {
  std::string scheme;                         // lower-case: "bearer", "basic"
  std::map<std::string, std::string> params;  // keys lower-case
};
/// nullopt when the header is not a challenge berth can read.
std::optional<AuthChallenge> parse_challenge(std::string_view header);

/// InvalidArgument unless name is 1-63 characters of a-z, 0-9 and '-' (what: "upstream").
Status validate_upstream_name(const std::string& name, const std::string& what);

/// "nginx" -> "library/nginx" style: the remote repository for a berth repository under the
/// prefix ("docker.io/library/nginx" under "docker.io" -> "library/nginx").
std::string remote_repository(const UpstreamSpec& spec, const std::string& repository);

class Upstream {
 public:
  Upstream(UpstreamSpec spec, int64_t created_at, http::ClientUrl base, http::Client client)
      : spec_(std::move(spec)),
        created_at_(created_at),
        base_(std::move(base)),
        client_(std::move(client)) {}

  const UpstreamSpec& spec() const { return spec_; }
  int64_t created_at() const { return created_at_; }
  /// "upstream dockerhub (https://registry-1.docker.io)", for errors and logs.
  std::string describe() const;
  /// What it is to berth, for describe(): "upstream" (default) or "destination".
  void set_role(std::string role) { role_ = std::move(role); }

  /// A request for `path` ("/v2/library/busybox/manifests/stable", or an absolute URL on the
  /// same registry, such as an upload's Location), authenticated the way
  /// docker does it: anonymous first, then what the 401's challenge asks for (HTTP Basic with
  /// the credentials, or a Bearer token from its realm for the challenge's scope, cached until
  /// it expires); redirects followed (to blob storage, say) without the credentials when they
  /// leave the upstream's origin. Unavailable (naming the upstream) when it cannot be reached.
  /// cache_key: the remote repository, under which a Bearer token is kept for reuse.
  Result<http::ClientResponse> request(http::ClientRequest req, const std::string& path,
                                       const std::string& cache_key);

  /// The scheme the upstream asked for at the last 401: "anonymous", "basic" or "bearer".
  std::string auth_seen();

 private:
  // The token and how long to use it.
  Result<std::pair<std::string, std::chrono::seconds>> fetch_token(const AuthChallenge& c);
  std::string basic_header() const;

  UpstreamSpec spec_;
  std::string role_ = "upstream";
  int64_t created_at_ = 0;
  http::ClientUrl base_;
  http::Client client_;
  std::mutex mu_;
  // Authorization values ("bearer:REPOSITORY", or "basic"), with when they stop being good.
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> auth_;
  std::string auth_seen_ = "anonymous";
};
using UpstreamPtr = std::shared_ptr<Upstream>;

/// A replication rule with its destination and what happened lately (guarded by the
/// registry's repl_mu).
struct ReplicationRule {
  ReplicationSpec spec;
  int64_t created_at = 0;
  UpstreamPtr remote;
  int64_t replicated = 0;
  int64_t last_success_at = 0;
  std::string last_error;
  int64_t last_error_at = 0;
};

}  // namespace berth::registry
