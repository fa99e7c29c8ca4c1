// SPDX-License-Identifier: Apache-2.0
// GitHub webhook deliveries (POST /hooks/github/<project>), unauthenticated bytes up to the
// signature check and trusted-but-untyped JSON after it. Input: first line = X-GitHub-Event
// header (also tried as X-Hub-Signature-256), the rest = the body (JSON or payload=<form>).
#include <string>

#include "builder/webhook.h"
#include "fuzz.h"

BERTH_FUZZ_TARGET(github_webhook) {
  using namespace berth::builder;
  berth::fuzz::quiet_logs();
  std::string_view body;
  std::string_view header = berth::fuzz::first_line(berth::fuzz::as_view(data, size), body);

  BERTH_FUZZ_CHECK(!verify_github_signature("", body, header));  // empty secret never verifies
  (void)verify_github_signature("s3cret", body, header);
  BERTH_FUZZ_CHECK(verify_github_signature("s3cret", body, github_signature("s3cret", body)));

  if (auto ev = parse_github_event(header, body)) {
    for (const char* glob : {"", "main", "release/*", "?"}) {
      auto d = decide(*ev, glob);
      if (d.action == WebhookAction::Build) {
        BERTH_FUZZ_CHECK(ev->kind == GithubEventKind::Push && !ev->deleted);
        BERTH_FUZZ_CHECK(d.commit == ev->after && !d.branch.empty());
      }
    }
  }
  return 0;
}
