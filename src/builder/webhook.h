// SPDX-License-Identifier: Apache-2.0
// GitHub-compatible webhooks: signature check, event parsing and the build-or-ignore decision.
//
// Pure: no I/O, clock or logging. The build service's `POST /hooks/github/<project>` handler
// calls verify_github_signature() on the raw body first (401 and nothing else on false),
// then parse_github_event() and decide(), and queues a build only for WebhookAction::Build.
// Private to the build module (src/build).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace berth::builder {

/// True when header is "sha256=<64 hex>" and equals HMAC-SHA256(secret, body). The digest is
/// compared in constant time; a missing, malformed or wrong header is false. An empty secret
/// never verifies (a project without a secret must not accept unsigned hooks).
bool verify_github_signature(std::string_view secret, std::string_view body,
                             std::string_view header);

/// "sha256=" + lower-case hex HMAC-SHA256(secret, body): what GitHub sends (for tests and for
/// berth's own "send a test delivery").
std::string github_signature(std::string_view secret, std::string_view body);

enum class GithubEventKind { Ping, Push, Other };

/// The parts of a delivery berth uses. Fields not sent by the event kind stay empty.
struct GithubEvent {
  GithubEventKind kind = GithubEventKind::Other;
  std::string name;  // the X-GitHub-Event header: "push", "ping", "issues", ...

  // ping
  std::string zen;
  std::string hook_id;  // decimal, may be empty

  // push
  std::string ref;     // "refs/heads/main", "refs/tags/v1"
  std::string branch;  // "main" when ref is under refs/heads/, else empty
  std::string tag;     // "v1" when ref is under refs/tags/, else empty
  std::string after;   // commit id after the push: 40 (SHA-1) or 64 (SHA-256) lower-case hex
  std::string before;  // commit id before the push (may be all zeros)
  bool created = false;
  bool deleted = false;
  std::string repository_full_name;  // "octo/app"
  std::string clone_url;             // "https://github.com/octo/app.git"
  std::string html_url;              // "https://github.com/octo/app"
  std::string head_commit_message;   // empty when the push has no head commit (deletions)
  std::string pusher_name;
};

/// Parses a delivery. event_header is X-GitHub-Event; body is the raw request body, JSON
/// (content type application/json) or the form encoding "payload=<url-encoded JSON>"
/// (application/x-www-form-urlencoded). Errors are InvalidArgument naming the field:
/// "X-GitHub-Event header is missing", "push event: after: expected a 40 or 64 character hex
/// commit id". Unknown event kinds parse as Other without looking at the body beyond JSON.
Result<GithubEvent> parse_github_event(std::string_view event_header, std::string_view body);

enum class WebhookAction { Build, Ignore };

struct WebhookDecision {
  WebhookAction action = WebhookAction::Ignore;
  /// One sentence for the HTTP answer and the project's event log: "push to main at 1a2b3c4:
  /// build queued", "branch dev does not match main", "ref refs/tags/v1 is not a branch",
  /// "branch main was deleted", "ping: webhook configured", "event issues is ignored (berth
  /// builds on push)".
  std::string reason;
  std::string commit;  // Build: the commit to build (GithubEvent::after)
  std::string branch;  // Build: the branch pushed
};

/// Build for a push to a branch matching branch_glob ('*' any run of characters, '/' included,
/// '?' one character; an empty glob matches every branch) that was not a deletion; Ignore with
/// the reason otherwise. Suggested HTTP answers: 202 for both (the reason in the body), 200
/// for a ping.
WebhookDecision decide(const GithubEvent& event, const std::string& branch_glob);

}  // namespace berth::builder
