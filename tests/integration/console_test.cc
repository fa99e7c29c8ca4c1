// SPDX-License-Identifier: Apache-2.0
// The console's server side over real HTTP with curl: the files and their security headers,
// signing in and out with the session cookie, CSRF, one-time links from `berth console`,
// the permission checks pages use, and that every API path the console's code calls is
// refused without a session.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include "common/json.h"
#include "support/harness.h"

namespace berth::test {
namespace {

struct Reply {
  int status = 0;
  std::string headers;
  std::string body;
};

// curl -i: the status, the head and the body.
Reply curl_i(const std::string& args) {
  auto r = run("curl -s -i " + args);
  Reply out;
  auto split = r.out.find("\r\n\r\n");
  out.headers = r.out.substr(0, split);
  out.body = split == std::string::npos ? "" : r.out.substr(split + 4);
  if (out.headers.size() > 12) {
    out.status = std::atoi(out.headers.substr(9, 3).c_str());
  }
  return out;
}

std::string header(const Reply& r, const std::string& name) {
  std::string lower_head = r.headers;
  std::string lower_name = name;
  for (auto* s : {&lower_head, &lower_name}) {
    for (auto& c : *s) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  auto p = lower_head.find("\r\n" + lower_name + ":");
  if (p == std::string::npos) {
    return "";
  }
  auto start = p + 2 + name.size() + 1;
  auto end = r.headers.find("\r\n", start);
  std::string v = r.headers.substr(start, end - start);
  return v.substr(v.find_first_not_of(' '));
}

class ConsoleTest : public ::testing::Test {
 protected:
  // Signs in with a key; returns the cookie jar file and sets *csrf.
  std::string sign_in(const std::string& id, const std::string& secret, std::string* csrf) {
    std::string jar = dir_.path() + "/jar" + std::to_string(++jars_);
    auto r = curl_i("-c " + jar + " -X POST " + d_.url() +
                    "/api/v1/console/session -H 'Content-Type: application/json' -d '" +
                    Json{{"access_key_id", id}, {"secret_access_key", secret}}.dump() + "'");
    EXPECT_EQ(r.status, 200) << r.body;
    *csrf = Json::parse(r.body, nullptr, false).value("csrf_token", "");
    return jar;
  }

  TestDaemon d_;
  TempDir dir_;
  int jars_ = 0;
};

TEST_F(ConsoleTest, FilesCarryAStrictPolicyAndPagesAreBookmarkable) {
  auto root = curl_i(d_.url() + "/");
  EXPECT_EQ(root.status, 302);
  EXPECT_EQ(header(root, "Location"), "/console/");

  auto page = curl_i(d_.url() + "/console/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<script type=\"module\" src=\"/console/app.js\""), std::string::npos)
      << page.body;
  std::string csp = header(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(header(page, "X-Content-Type-Options"), "nosniff");

  // A page of the console is its index.html (the browser routes it); a file is itself.
  auto deep = curl_i(d_.url() + "/console/services/web/logs");
  EXPECT_EQ(deep.status, 200);
  EXPECT_EQ(deep.body, page.body);
  auto dotted = curl_i(d_.url() + "/console/dns/example.com");  // a page that names a zone
  EXPECT_EQ(dotted.status, 200);
  EXPECT_EQ(dotted.body, page.body);
  auto js = curl_i(d_.url() + "/console/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_NE(header(js, "Content-Type").find("text/javascript"), std::string::npos);
  auto again =
      curl_i("-H 'If-None-Match: " + header(js, "ETag") + "' " + d_.url() + "/console/app.js");
  EXPECT_EQ(again.status, 304);
  EXPECT_EQ(curl_i(d_.url() + "/console/nope.js").status, 404);
  EXPECT_EQ(curl_i("-X POST " + d_.url() + "/console/").status, 405);
  // No inline code anywhere in the page: the policy would block it.
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_EQ(page.body.find(" style=\""), std::string::npos);
  EXPECT_EQ(page.body.find(" onclick="), std::string::npos);
}

TEST_F(ConsoleTest, SignInSetsAStrictHttpOnlyCookieAndSignOutEndsIt) {
  auto bad = curl_i(
      "-X POST " + d_.url() + "/api/v1/console/session -H 'Content-Type: application/json' -d '" +
      Json{{"access_key_id", d_.admin_key_id()}, {"secret_access_key", "wrong"}}.dump() + "'");
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(bad.body.find("invalid access key id or secret"), std::string::npos) << bad.body;
  EXPECT_EQ(header(bad, "Set-Cookie"), "");

  // What a form on another site could send to sign the browser in as someone else: refused.
  std::string good =
      Json{{"access_key_id", d_.admin_key_id()}, {"secret_access_key", d_.admin_secret()}}.dump();
  auto form = curl_i("-X POST " + d_.url() +
                     "/api/v1/console/session -H 'Content-Type: text/plain' -d '" + good + "'");
  EXPECT_EQ(form.status, 400) << form.body;
  EXPECT_EQ(header(form, "Set-Cookie"), "");
  for (const char* from : {"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}) {
    auto r = curl_i("-X POST " + d_.url() +
                    "/api/v1/console/session -H 'Content-Type: application/json' -H '" + from +
                    "' -d '" + good + "'");
    EXPECT_EQ(r.status, 403) << from << ": " << r.body;
    EXPECT_EQ(header(r, "Set-Cookie"), "") << from;
  }

  std::string jar = dir_.path() + "/jar";
  auto ok = curl_i(
      "-c " + jar + " -X POST " + d_.url() +
      "/api/v1/console/session -H 'Content-Type: application/json' -d '" +
      Json{{"access_key_id", d_.admin_key_id()}, {"secret_access_key", d_.admin_secret()}}.dump() +
      "'");
  ASSERT_EQ(ok.status, 200) << ok.body;
  std::string cookie = header(ok, "Set-Cookie");
  EXPECT_NE(cookie.find("berth_session="), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "plain HTTP: " << cookie;
  Json session = Json::parse(ok.body, nullptr, false);
  EXPECT_EQ(session.value("principal", ""), "user/admin");
  std::string csrf = session.value("csrf_token", "");
  EXPECT_EQ(csrf.size(), 64u);

  auto who = curl_i("-b " + jar + " " + d_.url() + "/api/v1/auth/whoami");
  EXPECT_EQ(who.status, 200);
  EXPECT_NE(who.body.find("user/admin"), std::string::npos);
  EXPECT_EQ(curl_i("-b " + jar + " " + d_.url() + "/api/v1/console/session").status, 200);

  // Signing out is a change: it needs the token too.
  EXPECT_EQ(curl_i("-b " + jar + " -X DELETE " + d_.url() + "/api/v1/console/session").status, 403);
  auto out = curl_i("-b " + jar + " -H 'X-CSRF-Token: " + csrf + "' -X DELETE " + d_.url() +
                    "/api/v1/console/session");
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(header(out, "Set-Cookie").find("Max-Age=0"), std::string::npos);
  // The old cookie (a copy kept by an attacker, say) no longer works.
  EXPECT_EQ(curl_i("-b " + jar + " " + d_.url() + "/api/v1/auth/whoami").status, 401);
  EXPECT_EQ(curl_i("-b " + jar + " " + d_.url() + "/api/v1/console/session").status, 401);
}

TEST_F(ConsoleTest, ACrossSitePostWithoutTheTokenChangesNothing) {
  std::string csrf;
  std::string jar = sign_in(d_.admin_key_id(), d_.admin_secret(), &csrf);
  std::string other_csrf;
  (void)sign_in(d_.admin_key_id(), d_.admin_secret(), &other_csrf);
  ASSERT_NE(csrf, other_csrf);

  // What a form on another site can send: the cookie, no token (or a wrong one).
  for (const std::string& extra : {std::string(""), "-H 'X-CSRF-Token: " + other_csrf + "'",
                                   std::string("-H 'X-CSRF-Token: x'")}) {
    auto r = curl_i("-b " + jar + " " + extra + " -H 'Origin: https://evil.example' -X POST " +
                    d_.url() + "/api/v1/repositories -d '{\"name\":\"web/evil\"}'");
    EXPECT_EQ(r.status, 403) << extra << r.body;
    EXPECT_NE(r.body.find("X-CSRF-Token"), std::string::npos) << r.body;
  }
  auto list = curl_i("-b " + jar + " " + d_.url() + "/api/v1/repositories");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body.find("web/evil"), std::string::npos) << list.body;

  auto made = curl_i("-b " + jar + " -H 'X-CSRF-Token: " + csrf + "' -X POST " + d_.url() +
                     "/api/v1/repositories -d '{\"name\":\"web/app\"}'");
  EXPECT_EQ(made.status, 201) << made.body;

  // On the registry API the session reads (the console lists referrers there) and never
  // writes: a push needs a key or a token.
  EXPECT_EQ(curl_i("-b " + jar + " " + d_.url() + "/v2/web/app/tags/list").status, 200);
  EXPECT_EQ(curl_i(d_.url() + "/v2/web/app/tags/list").status, 401);
  EXPECT_EQ(curl_i("-b " + jar + " -H 'X-CSRF-Token: " + csrf + "' -X POST " + d_.url() +
                   "/v2/web/app/blobs/uploads/")
                .status,
            401);
}

TEST_F(ConsoleTest, EveryApiPathTheConsoleCallsIsRefusedWithoutASession) {
  // The paths the console's modules name, cut at the first ${...} placeholder.
  std::set<std::string> paths;
  std::regex api(R"(/api/v1/[A-Za-z0-9_/\-]*)");
  std::string web = std::string(BERTH_SOURCE_DIR) + "/src/console/web";
  for (const auto& e : std::filesystem::recursive_directory_iterator(web)) {
    if (e.path().extension() != ".js") {
      continue;
    }
    std::string text = read_file(e.path().string());
    for (std::sregex_iterator it(text.begin(), text.end(), api), end; it != end; ++it) {
      std::string p = it->str();
      while (!p.empty() && p.back() == '/') {
        p.pop_back();
      }
      if (p != "/api/v1/console/session") {  // signing in is the one open door
        paths.insert(p);
      }
    }
  }
  ASSERT_GE(paths.size(), 10u) << "the console's code names too few API paths to be real";
  std::string forged = dir_.path() + "/forged";
  write_file(forged,
             "127.0.0.1\tFALSE\t/\tFALSE\t0\tberth_session\t" + std::string(64, 'a') + "\n");
  for (const auto& p : paths) {
    for (const std::string& cookie : {std::string(""), "-b " + forged}) {
      for (const char* method : {"GET", "POST"}) {
        auto r = curl_i(cookie + " -X " + method + " '" + d_.url() + p + "'");
        EXPECT_EQ(r.status, 401) << method << " " << p << " " << cookie << ": " << r.body;
      }
    }
  }
  // The session endpoint itself says "not signed in" without a session.
  EXPECT_EQ(curl_i(d_.url() + "/api/v1/console/session").status, 401);
}

TEST_F(ConsoleTest, ConsoleLinksSignInOnceAndPermissionsSayWhy) {
  auto link = d_.cli("console --json");
  ASSERT_EQ(link.code, 0) << link.all();
  Json j = Json::parse(link.out, nullptr, false);
  std::string url = j.value("url", "");
  EXPECT_EQ(url.rfind(d_.url() + "/console/login?code=", 0), 0u) << url;
  std::string code = j.value("code", "");
  std::string body = Json{{"code", code}}.dump();
  auto first =
      curl_i("-X POST " + d_.url() +
             "/api/v1/console/session -H 'Content-Type: application/json' -d '" + body + "'");
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_NE(first.body.find("user/admin"), std::string::npos);
  auto second =
      curl_i("-X POST " + d_.url() +
             "/api/v1/console/session -H 'Content-Type: application/json' -d '" + body + "'");
  EXPECT_EQ(second.status, 401);
  EXPECT_NE(second.body.find("unknown, used or expired"), std::string::npos) << second.body;
  // A session made from a link ends with the key that made the link.
  ASSERT_EQ(d_.cli("iam user create linker").code, 0);
  Json lk = Json::parse(d_.cli("iam key create linker --json").out, nullptr, false);
  AdminCredentials linker{lk.value("access_key_id", ""), lk.value("secret_access_key", "")};
  auto minted = d_.cli_as(linker, "console --json");
  ASSERT_EQ(minted.code, 0) << minted.all();
  std::string link_jar = dir_.path() + "/link-jar";
  EXPECT_EQ(
      curl_i("-c " + link_jar + " -X POST " + d_.url() +
             "/api/v1/console/session -H 'Content-Type: application/json' -d '" +
             Json{{"code", Json::parse(minted.out, nullptr, false).value("code", "")}}.dump() + "'")
          .status,
      200);
  EXPECT_EQ(curl_i("-b " + link_jar + " " + d_.url() + "/api/v1/auth/whoami").status, 200);
  ASSERT_EQ(d_.cli("iam key deactivate " + linker.key_id).code, 0);
  EXPECT_EQ(curl_i("-b " + link_jar + " " + d_.url() + "/api/v1/auth/whoami").status, 401);

  // Without credentials there is no link.
  auto anon = d_.cli_as(AdminCredentials{}, "console --no-open");
  EXPECT_NE(anon.code, 0);

  // A user with no policy: everything denied, with the action named.
  ASSERT_EQ(d_.cli("iam user create viewer").code, 0);
  auto key = d_.cli("iam key create viewer --json");
  Json k = Json::parse(key.out, nullptr, false);
  std::string csrf;
  std::string jar = sign_in(k.value("access_key_id", ""), k.value("secret_access_key", ""), &csrf);
  std::string checks =
      Json{{"checks",
            Json::array({Json{{"action", "service:Deploy"}, {"resource", "service/web"}}})}}
          .dump();
  auto denied = curl_i("-b " + jar + " -H 'X-CSRF-Token: " + csrf + "' -X POST " + d_.url() +
                       "/api/v1/console/permissions -d '" + checks + "'");
  ASSERT_EQ(denied.status, 200) << denied.body;
  Json res = Json::parse(denied.body, nullptr, false)["results"][0];
  EXPECT_FALSE(res.value("allowed", true));
  EXPECT_NE(res.value("reason", "").find("You may not do service:Deploy on service/web"),
            std::string::npos)
      << denied.body;
  // Asking is no denial: the audit log stays free of the console's probes.
  auto audit = d_.cli("audit --json");
  EXPECT_EQ(audit.out.find("service:Deploy"), std::string::npos) << audit.out;

  // Deactivating the key it signed in with ends the session.
  ASSERT_EQ(d_.cli("iam key deactivate " + k.value("access_key_id", "")).code, 0);
  EXPECT_EQ(curl_i("-b " + jar + " " + d_.url() + "/api/v1/auth/whoami").status, 401);
  EXPECT_EQ(curl_i("-b " + jar + " " + d_.url() + "/api/v1/console/session").status, 401);
}

TEST_F(ConsoleTest, AServiceIsWatchedLiveAndItsLogsFollowed) {
  ASSERT_EQ(d_.cli("repo create web/app").code, 0);
  // Not pushed yet: the service waits, which is enough to watch it change.
  auto made = d_.cli("service create web --image web/app:v1 --auto-deploy");
  if (made.all().find("failed_precondition") != std::string::npos ||
      made.all().find("services are") != std::string::npos) {
    GTEST_SKIP() << "services are not available here: " << made.all();
  }
  ASSERT_EQ(made.code, 0) << made.all();
  std::string auth = d_.curl_auth();
  std::string out = dir_.path() + "/watch.txt";
  // -m: an end for the stream should the daemon not end it; it outlasts every wait below.
  ASSERT_EQ(run("(curl -s -N -m 90 " + auth + d_.url() + "/api/v1/services/web/watch > " + out +
                " 2>&1 &)")
                .code,
            0);
  auto logs = run("curl -s -i -N -m 5 " + auth + d_.url() + "/api/v1/services/web/logs?follow=1");
  EXPECT_NE(logs.out.find("Content-Type: text/event-stream"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("event: lines\ndata: {\"lines\":[]}\n\n"), std::string::npos) << logs.out;
  auto metrics = curl_i(auth + d_.url() + "/api/v1/services/web/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("\"interval_seconds\":10"), std::string::npos) << metrics.body;

  // A change reaches the open stream without asking: pausing, then deleting the service.
  auto wait_for = [&](const std::string& what) {
    return eventually([&] { return read_file(out).find(what) != std::string::npos; },
                      std::chrono::seconds(15), std::chrono::milliseconds(100));
  };
  ASSERT_TRUE(wait_for("event: service\ndata: {")) << read_file(out);
  EXPECT_TRUE(wait_for("event: deployments\ndata: {\"deployments\":")) << read_file(out);
  ASSERT_EQ(d_.cli("service pause web").code, 0);
  EXPECT_TRUE(wait_for("\"paused\":true")) << read_file(out);
  ASSERT_EQ(d_.cli("service rm web").code, 0);
  EXPECT_TRUE(wait_for("event: deleted\ndata: {\"service\":\"web\"}")) << read_file(out);

  // Without the right, no stream: the JSON error, as for the plain GET.
  auto anon = curl_i(d_.url() + "/api/v1/services/web/watch");
  EXPECT_EQ(anon.status, 401);
}

}  // namespace
}  // namespace berth::test
