// SPDX-License-Identifier: Apache-2.0
// What an upstream registry (or a replication destination) sends berth: its WWW-Authenticate
// challenge, the Location URLs it redirects to, and the manifests it serves. The first byte
// picks the parser; the rest is the input.
#include <string>

#include "fuzz.h"
#include "http/client.h"
#include "oci/oci.h"
#include "registry/upstream.h"

BERTH_FUZZ_TARGET(upstream_response) {
  using namespace berth;
  fuzz::quiet_logs();
  if (size == 0) {
    return 0;
  }
  std::string_view in = fuzz::as_view(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto c = registry::parse_challenge(in);
      if (c) {
        // The scheme is lower-case and never empty; keys are lower-case.
        BERTH_FUZZ_CHECK(!c->scheme.empty());
        for (const auto& [k, _] : c->params) {
          BERTH_FUZZ_CHECK(k.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos);
        }
      }
      break;
    }
    case 1: {
      auto u = http::parse_client_url(in);
      if (u) {
        BERTH_FUZZ_CHECK(u->scheme == "http" || u->scheme == "https");
        BERTH_FUZZ_CHECK(!u->host.empty() && !u->target.empty() && u->target[0] == '/');
        // What origin() prints parses back to the same origin.
        auto again = http::parse_client_url(u->origin());
        BERTH_FUZZ_CHECK(again && again->origin() == u->origin());
      }
      break;
    }
    default: {
      auto m = oci::parse_manifest(in, "");
      (void)m;
      (void)oci::Digest::sha256_of(in);
      break;
    }
  }
  return 0;
}
