// SPDX-License-Identifier: Apache-2.0
// What an ACME server (or whoever answers in its place) sends the client: the directory,
// orders, authorizations, problem documents, Retry-After headers, the URLs inside them, and the
// PEM chain it issues (inspect). The first byte picks the parser; the rest is the input.
#include <string>

#include "certs/acme_protocol.h"
#include "certs/certs.h"
#include "fuzz.h"

BERTH_FUZZ_TARGET(acme_response) {
  using namespace berth;
  using namespace berth::certs;
  fuzz::quiet_logs();
  if (size == 0) {
    return 0;
  }
  std::string_view in = fuzz::as_view(data + 1, size - 1);
  switch (data[0] % 7) {
    case 0:
      (void)acme::parse_directory(in);
      break;
    case 1: {
      auto o = acme::parse_order(in);
      if (o) {
        BERTH_FUZZ_CHECK(!o->status.empty());
        if (o->error) {
          auto e = acme::problem_error(*o->error, 400);
          BERTH_FUZZ_CHECK(e.message().rfind("acme: " + o->error->type, 0) == 0);
        }
      }
      break;
    }
    case 2: {
      auto a = acme::parse_authorization(in);
      if (a) {
        // The wildcard prefix never reaches a challenge's domain.
        BERTH_FUZZ_CHECK(a->identifier.value.rfind("*.", 0) != 0);
        const auto* bad = a->failed();
        BERTH_FUZZ_CHECK(bad == nullptr || bad->error.has_value());
      }
      break;
    }
    case 3: {
      auto p = acme::parse_problem(in);
      if (p) {
        auto e = acme::problem_error(*p, 500);
        BERTH_FUZZ_CHECK(e.code() != Errc::Ok);
        BERTH_FUZZ_CHECK(e.message().rfind("acme: ", 0) == 0);
      }
      break;
    }
    case 4: {
      auto s = acme::parse_retry_after(in, 1700000000);
      BERTH_FUZZ_CHECK(!s || s->count() >= 0);
      break;
    }
    case 5: {
      auto u = acme::parse_https_url(in);
      if (u) {
        BERTH_FUZZ_CHECK(!u->host.empty() && !u->port.empty());
        BERTH_FUZZ_CHECK(!u->target.empty() && u->target.front() == '/');
      }
      break;
    }
    default: {
      auto info = inspect(in);
      if (info) {
        for (const auto& n : info->names) {
          for (char c : n) {
            BERTH_FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
          }
        }
        BERTH_FUZZ_CHECK(!info->serial.empty());
      }
      break;
    }
  }
  return 0;
}
