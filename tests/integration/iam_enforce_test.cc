// SPDX-License-Identifier: Apache-2.0
// IAM enforcement over real HTTP and real clients: unauthenticated calls refused, the Docker
// token flow with scope intersection, pull-only keys, public repositories, deactivated keys,
// and the failed-authentication rate limit.
#include <gtest/gtest.h>

#include <memory>

#include "common/json.h"
#include "common/url.h"
#include "support/blob_backend.h"
#include "support/harness.h"

namespace berth::test {
namespace {

struct Key {
  std::string id, secret;
  std::string creds() const { return id + ":" + secret; }
};

Key admin_key(const TestDaemon& d) {
  std::string f = read_file(d.data_dir() + "/admin.credentials");
  auto value = [&](const std::string& name) {
    auto p = f.find(name + "=");
    return f.substr(p + name.size() + 1, f.find('\n', p) - p - name.size() - 1);
  };
  return Key{value("BERTH_ACCESS_KEY_ID"), value("BERTH_SECRET_ACCESS_KEY")};
}

// curl returning "STATUS\nBODY" (-w puts the status last; we move it first).
std::pair<int, std::string> curl_status(const std::string& args) {
  auto r = run("curl -s -w '\\n%{http_code}' " + args);
  auto nl = r.out.rfind('\n');
  return {std::atoi(r.out.substr(nl + 1).c_str()), r.out.substr(0, nl)};
}

// On the embedded default and on the scale-out deployment (PostgreSQL + S3): users, keys,
// policies, public repositories and the audit log live in the store.
class IamEnforceTest : public ::testing::TestWithParam<BlobBackend> {
 protected:
  void SetUp() override {
    home_ = std::make_unique<BlobHome>(GetParam());
    if (!home_->skip_reason().empty()) {
      GTEST_SKIP() << home_->skip_reason();
    }
    d_ = std::make_unique<TestDaemon>([this](config::Config& c) { home_->apply(c); });
    admin_ = admin_key(*d_);
    auto [st, body] = curl_status("-u " + admin_.creds() + " -X POST " + d_->url() +
                                  "/api/v1/repositories -d '{\"name\":\"web/app\"}'");
    ASSERT_EQ(st, 201) << body;
  }
  Key make_user(const std::string& name, const std::string& policy) {
    auto u = curl_status("-u " + admin_.creds() + " -X POST " + d_->url() +
                         "/api/v1/iam/users -d '{\"name\":\"" + name + "\"}'");
    EXPECT_EQ(u.first, 201) << u.second;
    auto k = curl_status("-u " + admin_.creds() + " -X POST " + d_->url() + "/api/v1/iam/users/" +
                         name + "/keys");
    EXPECT_EQ(k.first, 201) << k.second;
    Json j = Json::parse(k.second);
    if (!policy.empty()) {
      write_file(tmp_ / "p.json", policy);
      auto p =
          curl_status("-u " + admin_.creds() + " -X PUT " + d_->url() +
                      "/api/v1/iam/policies/user/" + name + "/p --data-binary @" + tmp_ / "p.json");
      EXPECT_EQ(p.first, 200) << p.second;
    }
    return Key{j["access_key_id"], j["secret_access_key"]};
  }
  std::string push_layout() {
    std::string layout = tmp_ / "layout";
    EXPECT_EQ(make_busybox_layout(layout, "v1"), "");
    return layout;
  }

  std::unique_ptr<BlobHome> home_;
  std::unique_ptr<TestDaemon> d_;
  TempDir tmp_;
  Key admin_;
};

TEST_P(IamEnforceTest, EveryApiEndpointRefusesAnUnauthenticatedCall) {
  const char* calls[] = {
      "GET /api/v1/repositories",
      "POST /api/v1/repositories",
      "DELETE /api/v1/repositories/web/app",
      "GET /api/v1/repositories/web/app/images",
      "DELETE /api/v1/repositories/web/app/images/v1",
      "POST /api/v1/gc",
      "GET /api/v1/iam/users",
      "POST /api/v1/iam/users",
      "DELETE /api/v1/iam/users/admin",
      "POST /api/v1/iam/roles",
      "GET /api/v1/iam/roles",
      "POST /api/v1/iam/users/admin/keys",
      "GET /api/v1/iam/users/admin/keys",
      "POST /api/v1/iam/keys/BKX/deactivate",
      "DELETE /api/v1/iam/keys/BKX",
      "GET /api/v1/iam/policies",
      "PUT /api/v1/iam/policies/user/admin/x",
      "DELETE /api/v1/iam/policies/user/admin/admin",
      "PUT /api/v1/repositories/web/app/policy",
      "GET /api/v1/repositories/web/app/policy",
      "POST /api/v1/iam/simulate",
      "GET /api/v1/auth/token",
      "GET /api/v1/auth/whoami",
      "GET /api/v1/audit",
  };
  for (const char* c : calls) {
    std::string call = c;
    auto sp = call.find(' ');
    auto [st, body] =
        curl_status("-X " + call.substr(0, sp) + " " + d_->url() + call.substr(sp + 1));
    EXPECT_EQ(st, 401) << call << ": " << body;
    EXPECT_NE(body.find("unauthenticated"), std::string::npos) << call << ": " << body;
  }
  // And nothing changed: the repository and the admin are still there.
  auto [st, body] = curl_status("-u " + admin_.creds() + " " + d_->url() + "/api/v1/repositories");
  EXPECT_NE(body.find("web/app"), std::string::npos);
  EXPECT_NE(curl_status("-u " + admin_.creds() + " " + d_->url() + "/api/v1/iam/users")
                .second.find("admin"),
            std::string::npos);
}

TEST_P(IamEnforceTest, AnonymousRegistryRequestsGetABearerChallenge) {
  auto r = run("curl -s -i " + d_->url() + "/v2/web/app/manifests/v1");
  EXPECT_NE(r.out.find("401"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("WWW-Authenticate: Bearer realm=\"" + d_->url() +
                       "/v2/token\",service=\"berth\",scope=\"repository:web/app:pull\""),
            std::string::npos)
      << r.out;
  auto push = run("curl -s -i -X POST " + d_->url() + "/v2/web/app/blobs/uploads/");
  EXPECT_NE(push.out.find("scope=\"repository:web/app:pull,push\""), std::string::npos) << push.out;
  auto base = run("curl -s -i " + d_->url() + "/v2/");
  EXPECT_NE(base.out.find("401"), std::string::npos) << base.out;
}

TEST_P(IamEnforceTest, TokenGrantsAreTheIntersectionOfScopeAndPolicy) {
  Key reader = make_user("reader", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"registry:Pull","Resource":"repository/web/*"}]})");
  auto [st, body] =
      curl_status("-u " + reader.creds() + " '" + d_->url() +
                  "/v2/token?service=berth&scope=repository:web/app:pull,push&scope=" +
                  "repository:other/x:pull'");
  ASSERT_EQ(st, 200) << body;
  Json j = Json::parse(body);
  std::string token = j["token"];
  auto payload =
      b64::url_decode(token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1));
  ASSERT_TRUE(payload);
  Json claims = Json::parse(*payload);
  EXPECT_EQ(claims["sub"], "user/reader");
  ASSERT_EQ(claims["access"].size(), 1u) << claims.dump();
  EXPECT_EQ(claims["access"][0]["name"], "web/app");
  EXPECT_EQ(claims["access"][0]["actions"], Json::array({"pull"}));
  // The token works for what it grants and nothing more.
  auto pull = curl_status("-H 'Authorization: Bearer " + token + "' " + d_->url() +
                          "/v2/web/app/tags/list");
  EXPECT_EQ(pull.first, 200) << pull.second;
  auto push = curl_status("-X POST -H 'Authorization: Bearer " + token + "' " + d_->url() +
                          "/v2/web/app/blobs/uploads/");
  EXPECT_EQ(push.first, 403) << push.second;
  EXPECT_NE(
      push.second.find("AccessDenied: user/reader may not registry:Push on repository web/app"),
      std::string::npos)
      << push.second;
  // A tampered token is refused.
  std::string bad = token;
  bad[bad.size() - 3] = bad[bad.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(
      curl_status("-H 'Authorization: Bearer " + bad + "' " + d_->url() + "/v2/web/app/tags/list")
          .first,
      401);
}

TEST_P(IamEnforceTest, SkopeoWithAPullOnlyKeyPullsButCannotPush) {
  std::string layout = push_layout();
  auto push = run("skopeo copy --dest-tls-verify=false --dest-creds " + admin_.creds() +
                  " oci:" + layout + ":v1 docker://" + d_->host() + "/web/app:v1");
  ASSERT_EQ(push.code, 0) << push.all();
  Key reader = make_user("reader", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"registry:Pull","Resource":"repository/web/*"}]})");
  auto pull = run("skopeo copy --src-tls-verify=false --src-creds " + reader.creds() +
                  " docker://" + d_->host() + "/web/app:v1 oci:" + tmp_ / "back:v1");
  EXPECT_EQ(pull.code, 0) << pull.all();
  auto denied = run("skopeo copy --dest-tls-verify=false --dest-creds " + reader.creds() +
                    " oci:" + layout + ":v1 docker://" + d_->host() + "/web/app:v2");
  EXPECT_NE(denied.code, 0);
  EXPECT_NE(denied.all().find("may not registry:Push on repository web/app"), std::string::npos)
      << denied.all();
  auto tags = curl_status("-u " + admin_.creds() + " " + d_->url() + "/v2/web/app/tags/list");
  EXPECT_EQ(tags.second, R"({"name":"web/app","tags":["v1"]})");  // nothing stored
  // Anonymous: refused on a private repository.
  auto anon = run("skopeo copy --src-tls-verify=false docker://" + d_->host() +
                  "/web/app:v1 oci:" + tmp_ / "anon:v1");
  EXPECT_NE(anon.code, 0);
}

TEST_P(IamEnforceTest, APublicRepositoryAllowsAnonymousPull) {
  std::string layout = push_layout();
  ASSERT_EQ(run("skopeo copy --dest-tls-verify=false --dest-creds " + admin_.creds() +
                " oci:" + layout + ":v1 docker://" + d_->host() + "/web/app:v1")
                .code,
            0);
  write_file(tmp_ / "public.json", R"({"Version":"2012-10-17","Statement":[{"Sid":"Public",
    "Effect":"Allow","Principal":"*","Action":"registry:Pull","Resource":"repository/web/app"}]})");
  auto put =
      curl_status("-u " + admin_.creds() + " -X PUT " + d_->url() +
                  "/api/v1/repositories/web/app/policy --data-binary @" + tmp_ / "public.json");
  ASSERT_EQ(put.first, 200) << put.second;
  auto anon = run("skopeo copy --src-tls-verify=false docker://" + d_->host() +
                  "/web/app:v1 oci:" + tmp_ / "anon:v1");
  EXPECT_EQ(anon.code, 0) << anon.all();
  // Pull only: an anonymous push is still refused.
  auto push = curl_status("-X POST " + d_->url() + "/v2/web/app/blobs/uploads/");
  EXPECT_EQ(push.first, 401);
}

TEST_P(IamEnforceTest, RepoCreatePublicAllowsAnonymousPullOnly) {
  auto c = d_->cli("repo create web/site --public --json");
  ASSERT_EQ(c.code, 0) << c.all();
  EXPECT_EQ(Json::parse(c.out)["public"], true);
  std::string layout = push_layout();
  ASSERT_EQ(run("skopeo copy --dest-tls-verify=false --dest-creds " + admin_.creds() +
                " oci:" + layout + ":v1 docker://" + d_->host() + "/web/site:v1")
                .code,
            0);
  auto anon = run("skopeo copy --src-tls-verify=false docker://" + d_->host() +
                  "/web/site:v1 oci:" + tmp_ / "anon:v1");
  EXPECT_EQ(anon.code, 0) << anon.all();
  EXPECT_EQ(curl_status("-X POST " + d_->url() + "/v2/web/site/blobs/uploads/").first, 401);
  // web/app, created without --public, stays private.
  EXPECT_EQ(curl_status(d_->url() + "/v2/web/app/tags/list").first, 401);
}

TEST_P(IamEnforceTest, ADeactivatedKeyStopsWorkingAtOnce) {
  Key k = make_user("ci", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"registry:*","Resource":"repository/*"}]})");
  EXPECT_EQ(
      curl_status("-u " + k.creds() + " " + d_->url() + "/v2/token?scope=repository:web/app:pull")
          .first,
      200);
  auto off = curl_status("-u " + admin_.creds() + " -X POST " + d_->url() + "/api/v1/iam/keys/" +
                         k.id + "/deactivate");
  ASSERT_EQ(off.first, 200) << off.second;
  EXPECT_EQ(
      curl_status("-u " + k.creds() + " " + d_->url() + "/v2/token?scope=repository:web/app:pull")
          .first,
      401);
  EXPECT_EQ(curl_status("-u " + k.creds() + " " + d_->url() + "/api/v1/repositories").first, 401);
}

TEST_P(IamEnforceTest, RepeatedFailuresAreRateLimited) {
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(curl_status("-u " + admin_.id + ":wrong " + d_->url() + "/api/v1/repositories").first,
              401);
  }
  // The eleventh attempt within the minute is refused even with the right secret.
  auto [st, body] = curl_status("-u " + admin_.creds() + " " + d_->url() + "/api/v1/repositories");
  EXPECT_EQ(st, 429) << body;
}

TEST_P(IamEnforceTest, RotatingAKeyIssuesANewOneAndRetiresTheOld) {
  Key k = make_user("ci", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"registry:*","Resource":"repository/*"}]})");
  auto rot = d_->cli("iam key rotate " + k.id + " --json");
  ASSERT_EQ(rot.code, 0) << rot.all();
  Json j = Json::parse(rot.out);
  Key fresh{j["access_key_id"], j["secret_access_key"]};
  EXPECT_NE(fresh.id, k.id);
  EXPECT_EQ(j["user"], "ci");
  EXPECT_EQ(curl_status("-u " + fresh.creds() + " " + d_->url() + "/v2/web/app/tags/list").first,
            200);
  EXPECT_EQ(curl_status("-u " + k.creds() + " " + d_->url() + "/v2/web/app/tags/list").first, 401);
  auto ls = d_->cli("iam key ls ci --json");
  ASSERT_EQ(ls.code, 0) << ls.all();
  EXPECT_EQ(Json::parse(ls.out)["keys"].size(), 2u) << ls.out;
}

TEST_P(IamEnforceTest, TheAuditLogHoldsChangesAndDenialsButNotReads) {
  Key reader = make_user("reader", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":"registry:Pull","Resource":"repository/web/*"}]})");
  EXPECT_EQ(curl_status("-u " + reader.creds() + " " + d_->url() + "/v2/web/app/tags/list").first,
            200);
  EXPECT_EQ(
      curl_status("-u " + reader.creds() + " -X POST " + d_->url() + "/v2/web/app/blobs/uploads/")
          .first,
      403);
  auto ls = d_->cli("audit ls --principal user/reader --json");
  ASSERT_EQ(ls.code, 0) << ls.all();
  Json events = Json::parse(ls.out)["events"];
  ASSERT_EQ(events.size(), 1u) << ls.out;  // the allowed pull is not recorded
  EXPECT_EQ(events[0]["action"], "registry:Push");
  EXPECT_EQ(events[0]["resource"], "repository/web/app");
  EXPECT_EQ(events[0]["decision"], "Deny");
  EXPECT_NE(events[0]["source"].get<std::string>().find("127.0.0.1"), std::string::npos);
  auto all = d_->cli("audit ls --since 1h");
  ASSERT_EQ(all.code, 0) << all.all();
  EXPECT_NE(all.out.find("iam:CreateUser"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("registry:CreateRepository"), std::string::npos) << all.out;
  // Unauthenticated: refused like every other endpoint.
  EXPECT_EQ(curl_status(d_->url() + "/api/v1/audit").first, 401);
}

INSTANTIATE_TEST_SUITE_P(Backends, IamEnforceTest,
                         ::testing::Values(BlobBackend::Fs, BlobBackend::PostgresS3),
                         BlobBackendName());

}  // namespace
}  // namespace berth::test
