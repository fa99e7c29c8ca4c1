// SPDX-License-Identifier: Apache-2.0
// GitHub webhook signatures, event parsing and build decisions; secret masking.
#include <gtest/gtest.h>

#include "builder/git.h"
#include "builder/webhook.h"

namespace berth::builder {
namespace {

// GitHub's documented test values ("Validating webhook deliveries").
constexpr const char* kDocSecret = "It's a Secret to Everybody";
constexpr const char* kDocPayload = "Hello, World!";
constexpr const char* kDocSignature =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

constexpr const char* kSha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
constexpr const char* kZeros = "0000000000000000000000000000000000000000";

std::string push_body(const std::string& ref, const std::string& after, bool deleted = false) {
  std::string b = R"({"ref":")";
  b += ref;
  b += R"(","before":"9049f1265b7d61be4a8904a9a27120d2064dab3b","after":")";
  b += after;
  b += R"(","created":false,"deleted":)";
  b += deleted ? "true" : "false";
  b += R"(,"repository":{"full_name":"octo/app","clone_url":"https://github.com/octo/app.git",)"
       R"("html_url":"https://github.com/octo/app"},"pusher":{"name":"octocat","email":"o@x"},)"
       R"("head_commit":{"id":"0d1a26e6","message":"Fix the thing\n\nDetails"}})";
  return b;
}

TEST(GithubSignatureTest, MatchesGithubDocumentedExample) {
  EXPECT_EQ(github_signature(kDocSecret, kDocPayload), kDocSignature);
  EXPECT_TRUE(verify_github_signature(kDocSecret, kDocPayload, kDocSignature));
}

TEST(GithubSignatureTest, UpperCaseHexAndSurroundingSpaceAccepted) {
  std::string upper = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
  EXPECT_TRUE(verify_github_signature(kDocSecret, kDocPayload, upper));
  EXPECT_TRUE(verify_github_signature(kDocSecret, kDocPayload, std::string(" ") + kDocSignature));
}

TEST(GithubSignatureTest, RejectsWrongSecretBodyOrSignature) {
  EXPECT_FALSE(verify_github_signature("other secret", kDocPayload, kDocSignature));
  EXPECT_FALSE(verify_github_signature(kDocSecret, "Hello, World?", kDocSignature));
  std::string flipped = kDocSignature;
  flipped.back() = '8';
  EXPECT_FALSE(verify_github_signature(kDocSecret, kDocPayload, flipped));
}

TEST(GithubSignatureTest, RejectsMalformedHeaders) {
  std::string hex = std::string(kDocSignature).substr(7);
  for (const std::string& h : {
           std::string(),                         // missing
           hex,                                   // no prefix
           "sha1=" + hex,                         // the legacy SHA-1 header's scheme
           "SHA256=" + hex,                       // prefix is lower-case
           "sha256=" + hex.substr(0, 63),         // short
           "sha256=" + hex + "0",                 // long
           "sha256=" + hex.substr(0, 62) + "zz",  // not hex
           std::string("sha256="),
       }) {
    EXPECT_FALSE(verify_github_signature(kDocSecret, kDocPayload, h)) << h;
  }
}

TEST(GithubSignatureTest, EmptySecretNeverVerifies) {
  EXPECT_FALSE(verify_github_signature("", "x", github_signature("", "x")));
}

TEST(GithubEventTest, ParsesPush) {
  auto ev = parse_github_event("push", push_body("refs/heads/main", kSha));
  ASSERT_TRUE(ev) << ev.error().message();
  EXPECT_EQ(ev->kind, GithubEventKind::Push);
  EXPECT_EQ(ev->ref, "refs/heads/main");
  EXPECT_EQ(ev->branch, "main");
  EXPECT_EQ(ev->tag, "");
  EXPECT_EQ(ev->after, kSha);
  EXPECT_FALSE(ev->deleted);
  EXPECT_EQ(ev->clone_url, "https://github.com/octo/app.git");
  EXPECT_EQ(ev->html_url, "https://github.com/octo/app");
  EXPECT_EQ(ev->repository_full_name, "octo/app");
  EXPECT_EQ(ev->head_commit_message, "Fix the thing\n\nDetails");
  EXPECT_EQ(ev->pusher_name, "octocat");
}

TEST(GithubEventTest, RefusesRefsGitWouldRefuse) {
  // A signed payload still must not smuggle a newline (a fake log line) or a space into a ref.
  for (const char* ref :
       {"refs/heads/main\\nbuild 5 SUCCEEDED", "refs/heads/a b", "refs/heads/x~1"}) {
    auto ev = parse_github_event("push", push_body(ref, kSha));
    ASSERT_FALSE(ev) << ref;
    EXPECT_EQ(ev.error().message(), "push event: ref: not a valid ref name") << ref;
  }
}

TEST(GithubEventTest, ParsesFormEncodedPayload) {
  std::string body = "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fdev%22%2C%22after%22%3A%22";
  body += kSha;
  body += "%22%2C%22repository%22%3A%7B%22clone_url%22%3A%22file%3A%2F%2F%2Fr%22%7D%7D";
  auto ev = parse_github_event("push", body);
  ASSERT_TRUE(ev) << ev.error().message();
  EXPECT_EQ(ev->branch, "dev");
  EXPECT_EQ(ev->clone_url, "file:///r");
  EXPECT_EQ(ev->head_commit_message, "");
}

TEST(GithubEventTest, TagsAndDeletions) {
  auto tag = parse_github_event("push", push_body("refs/tags/v1", kSha));
  ASSERT_TRUE(tag);
  EXPECT_EQ(tag->branch, "");
  EXPECT_EQ(tag->tag, "v1");
  auto del = parse_github_event("push", push_body("refs/heads/main", kZeros, true));
  ASSERT_TRUE(del);
  EXPECT_TRUE(del->deleted);
  // An all-zero "after" is a deletion even when "deleted" is absent or false.
  auto zeros = parse_github_event("push", push_body("refs/heads/main", kZeros, false));
  ASSERT_TRUE(zeros);
  EXPECT_TRUE(zeros->deleted);
}

TEST(GithubEventTest, ParsesPingAndOtherEvents) {
  auto ping = parse_github_event("ping", R"({"zen":"Keep it logically awesome.","hook_id":42})");
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->kind, GithubEventKind::Ping);
  EXPECT_EQ(ping->zen, "Keep it logically awesome.");
  EXPECT_EQ(ping->hook_id, "42");
  auto issues = parse_github_event("issues", R"({"action":"opened"})");
  ASSERT_TRUE(issues);
  EXPECT_EQ(issues->kind, GithubEventKind::Other);
  EXPECT_EQ(issues->name, "issues");
}

TEST(GithubEventTest, ErrorsNameTheField) {
  auto expect_error = [](std::string_view event, const std::string& body,
                         const std::string& needle) {
    auto ev = parse_github_event(event, body);
    ASSERT_FALSE(ev) << body;
    EXPECT_EQ(ev.error().code(), Errc::InvalidArgument);
    EXPECT_NE(ev.error().message().find(needle), std::string::npos) << ev.error().message();
  };
  expect_error("", "{}", "X-GitHub-Event header is missing");
  expect_error("push", "not json", "push event");
  expect_error("push", "[1]", "expected a JSON object");
  expect_error("push", R"({"after":"x"})", "push event: ref: missing");
  expect_error("push", R"({"ref":7})", "ref: expected a string");
  expect_error("push", R"({"ref":"refs/heads/main"})", "push event: after: missing");
  expect_error("push", R"({"ref":"refs/heads/main","after":"abc"})", "after: expected a 40");
  std::string upper = push_body("refs/heads/main", "0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C");
  expect_error("push", upper, "after: expected");
  std::string no_repo = R"({"ref":"refs/heads/main","after":")";
  no_repo += kSha;
  no_repo += "\"}";
  expect_error("push", no_repo, "push event: repository: missing");
  std::string bad_url = no_repo.substr(0, no_repo.size() - 1) + R"(,"repository":{}})";
  expect_error("push", bad_url, "repository.clone_url: missing");
  expect_error("push", "payload=%zz", "payload: malformed form encoding");
}

TEST(WebhookDecisionTest, BuildsMatchingBranch) {
  auto ev = parse_github_event("push", push_body("refs/heads/main", kSha));
  ASSERT_TRUE(ev);
  auto d = decide(*ev, "main");
  EXPECT_EQ(d.action, WebhookAction::Build);
  EXPECT_EQ(d.commit, kSha);
  EXPECT_EQ(d.branch, "main");
  EXPECT_EQ(d.reason, "push to main at 0d1a26e: build queued");
  EXPECT_EQ(decide(*ev, "").action, WebhookAction::Build);
  EXPECT_EQ(decide(*ev, "ma*").action, WebhookAction::Build);
  EXPECT_EQ(decide(*ev, "m?in").action, WebhookAction::Build);
}

TEST(WebhookDecisionTest, GlobsSpanSlashes) {
  auto ev = parse_github_event("push", push_body("refs/heads/release/1.2", kSha));
  ASSERT_TRUE(ev);
  EXPECT_EQ(decide(*ev, "release/*").action, WebhookAction::Build);
  EXPECT_EQ(decide(*ev, "release").action, WebhookAction::Ignore);
}

TEST(WebhookDecisionTest, IgnoresWithASentence) {
  auto dev = parse_github_event("push", push_body("refs/heads/dev", kSha));
  ASSERT_TRUE(dev);
  EXPECT_EQ(decide(*dev, "main").action, WebhookAction::Ignore);
  EXPECT_EQ(decide(*dev, "main").reason, "branch dev does not match main");

  auto tag = parse_github_event("push", push_body("refs/tags/v1", kSha));
  ASSERT_TRUE(tag);
  EXPECT_EQ(decide(*tag, "*").reason, "ref refs/tags/v1 is not a branch");

  auto del = parse_github_event("push", push_body("refs/heads/main", kZeros, true));
  ASSERT_TRUE(del);
  auto d = decide(*del, "main");
  EXPECT_EQ(d.action, WebhookAction::Ignore);
  EXPECT_EQ(d.reason, "branch main was deleted");

  auto ping = parse_github_event("ping", R"({"zen":"z"})");
  ASSERT_TRUE(ping);
  EXPECT_EQ(decide(*ping, "main").reason, "ping: webhook configured");
  EXPECT_EQ(decide(*ping, "main").action, WebhookAction::Ignore);

  auto issues = parse_github_event("issues", "{}");
  ASSERT_TRUE(issues);
  EXPECT_EQ(decide(*issues, "main").reason, "event issues is ignored (berth builds on push)");
}

TEST(MaskSecretsTest, MasksPlainUrlEncodedAndBase64Forms) {
  std::vector<std::string> secrets = {"p@ss/w0rd+x"};
  EXPECT_EQ(mask_secrets("token p@ss/w0rd+x end", secrets), "token **** end");
  EXPECT_EQ(mask_secrets("https://u:p%40ss%2Fw0rd%2Bx@h/", secrets), "https://u:****@h/");
  EXPECT_EQ(mask_secrets("https://u:p%40ss%2fw0rd%2bx@h/", secrets), "https://u:****@h/");
  EXPECT_EQ(mask_secrets("b64 cEBzcy93MHJkK3g=", secrets), "b64 ****=");
  EXPECT_EQ(mask_secrets("nothing here", secrets), "nothing here");
  EXPECT_EQ(mask_secrets("x", {}), "x");
  EXPECT_EQ(mask_secrets("x", {""}), "x");
}

TEST(MaskSecretsTest, AuthSecretsCoverTheBasicHeader) {
  GitAuth auth{"x-access-token", "ghp_abc123", "", ""};
  std::string header = "Authorization: Basic eC1hY2Nlc3MtdG9rZW46Z2hwX2FiYzEyMw==";
  std::string masked = mask_secrets(header, auth.secrets());
  EXPECT_EQ(masked.find("eC1hY2Nlc3MtdG9rZW46Z2hwX2FiYzEyMw"), std::string::npos) << masked;
  EXPECT_EQ(mask_secrets("a ghp_abc123 b", auth.secrets()), "a **** b");
  EXPECT_TRUE(GitAuth{}.secrets().empty());
}

TEST(GitRemoteTest, SupportedRemotes) {
  for (const char* ok : {"https://github.com/o/r.git", "http://127.0.0.1:8080/git/x.git",
                         "ssh://git@host/o/r.git", "git@github.com:o/r.git", "file:///srv/r"}) {
    EXPECT_TRUE(is_supported_remote(ok)) << ok;
  }
  for (const char* bad :
       {"", "-uhttps://x", "ext::sh -c touch% /tmp/pwned", "fd::3", "git://host/r", "/srv/repo",
        "host:path", "https://", "ftp://h/r", "https://h/r\nx"}) {
    EXPECT_FALSE(is_supported_remote(bad)) << bad;
  }
  EXPECT_EQ(url_password("https://u:p%40ss@h/x"), "p@ss");
  EXPECT_EQ(url_password("https://u@h/x"), "");
  EXPECT_EQ(url_password("git@h:x"), "");
  EXPECT_TRUE(is_commit_id(kSha));
  EXPECT_FALSE(is_commit_id("0d1a26e"));
}

}  // namespace
}  // namespace berth::builder
