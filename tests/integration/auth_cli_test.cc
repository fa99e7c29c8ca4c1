// SPDX-License-Identifier: Apache-2.0
// How the berth CLI authenticates: credentials from the environment or from the file
// `berth login` writes, sent as HTTP Basic; login verifies with /api/v1/auth/whoami; a 401
// names the fix. A one-shot fake server records what the CLI sends and answers what each test
// needs, so none of this depends on berthd's enforcement.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>

#include "support/harness.h"

namespace berth::test {
namespace {

// Listens on 127.0.0.1:<random>; serve() accepts one connection, returns the request head and
// answers with `status` and a JSON `body`.
class FakeServer {
 public:
  FakeServer() {
    fd_ = listen_loopback(port_, 4);
    EXPECT_GE(fd_, 0);
  }
  ~FakeServer() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::future<std::string> serve(int status, const std::string& body) {
    return std::async(std::launch::async, [this, status, body] {
      timeval tv{};
      tv.tv_sec = 20;
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return std::string();
      }
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) {
          break;
        }
        req.append(buf, static_cast<size_t>(n));
      }
      std::string res =
          "HTTP/1.1 " + std::to_string(status) +
          " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      ::send(c, res.data(), res.size(), MSG_NOSIGNAL);
      ::close(c);
      return req;
    });
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

const AdminCredentials kKey{"BKAAAAAAAAAAAAAAAAAA", "secretsecretsecretsecretsecretsecret0000"};
const std::string kUnauthenticated =
    R"({"error":{"code":"unauthenticated","message":"authentication required"}})";

TEST(AuthCliTest, EnvironmentCredentialsGoOutAsBasicAuth) {
  FakeServer s;
  auto req = s.serve(200, R"({"repositories":[]})");
  auto r = berth_as(s.url(), kKey, "repo ls");
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(req.get(), "\r\nAuthorization: Basic " + base64(kKey.creds()) + "\r\n"));
}

TEST(AuthCliTest, NoCredentialsSendNoAuthorization) {
  FakeServer s;
  auto req = s.serve(200, R"({"repositories":[]})");
  auto r = berth_as(s.url(), AdminCredentials{}, "repo ls");
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_FALSE(has(req.get(), "Authorization")) << "anonymous request carried credentials";
}

TEST(AuthCliTest, HalfSetEnvironmentIsRefused) {
  TempDir home;
  auto r = run("env -u BERTH_SECRET_ACCESS_KEY HOME=" + home.path() + " BERTH_ACCESS_KEY_ID=BKX " +
               bin("berth") + " --server http://127.0.0.1:1 repo ls");
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "BERTH_SECRET_ACCESS_KEY")) << r.all();
}

TEST(AuthCliTest, UnauthenticatedNamesTheFixAndExits5) {
  FakeServer s;
  auto req = s.serve(401, kUnauthenticated);
  auto r = berth_as(s.url(), AdminCredentials{}, "repo ls");
  req.get();
  EXPECT_EQ(r.code, 5) << r.all();
  EXPECT_EQ(r.err,
            "berth: not authenticated: run berth login, or set BERTH_ACCESS_KEY_ID and "
            "BERTH_SECRET_ACCESS_KEY\n");
  // A bare 401 without a JSON error body is the same thing.
  auto req2 = s.serve(401, "");
  auto r2 = berth_as(s.url(), kKey, "iam user ls");
  req2.get();
  EXPECT_EQ(r2.code, 5) << r2.all();
  EXPECT_TRUE(has(r2.err, "not authenticated: run berth login")) << r2.all();
}

TEST(AuthCliTest, LoginVerifiesWritesThePrivateFileAndLogoutRemovesIt) {
  FakeServer s;
  TempDir home;
  std::string env =
      "env -u BERTH_ACCESS_KEY_ID -u BERTH_SECRET_ACCESS_KEY -u BERTH_SERVER HOME=" + home.path() +
      " ";
  std::string file = home / ".config/berth/credentials";

  auto req = s.serve(200, R"({"principal":"user/ci"})");
  auto login =
      run("printf '%s\\n' " + kKey.secret + " | " + env + bin("berth") + " login --server " +
          s.url() + " --access-key-id " + kKey.key_id + " --secret-access-key-stdin");
  std::string sent = req.get();
  ASSERT_EQ(login.code, 0) << login.all();
  EXPECT_EQ(login.out, "logged in to " + s.url() + " as user/ci\n");
  EXPECT_EQ(sent.rfind("GET /api/v1/auth/whoami HTTP/1.1\r\n", 0), 0u) << sent;
  EXPECT_TRUE(has(sent, "Authorization: Basic " + base64(kKey.creds()))) << sent;
  EXPECT_FALSE(has(login.all(), kKey.secret)) << "the secret was echoed";
  EXPECT_EQ(run("stat -c %a " + file).out, "600\n");
  EXPECT_EQ(run("stat -c %a " + home / ".config/berth").out, "700\n");
  EXPECT_EQ(read_file(file), "BERTH_SERVER=" + s.url() + "\nBERTH_ACCESS_KEY_ID=" + kKey.key_id +
                                 "\nBERTH_SECRET_ACCESS_KEY=" + kKey.secret + "\n");

  // Later commands take the server and the key from the file.
  req = s.serve(200, R"({"repositories":[]})");
  auto ls = run(env + bin("berth") + " repo ls");
  sent = req.get();
  EXPECT_EQ(ls.code, 0) << ls.all();
  EXPECT_TRUE(has(sent, "Authorization: Basic " + base64(kKey.creds()))) << sent;
  // The environment overrides the file's key.
  AdminCredentials other{"BKBBBBBBBBBBBBBBBBBB", "x"};
  req = s.serve(200, R"({"repositories":[]})");
  ls = run(env + other.env() + bin("berth") + " repo ls");
  sent = req.get();
  EXPECT_EQ(ls.code, 0) << ls.all();
  EXPECT_TRUE(has(sent, "Authorization: Basic " + base64(other.creds()))) << sent;

  auto out = run(env + bin("berth") + " logout");
  EXPECT_EQ(out.code, 0) << out.all();
  EXPECT_NE(run("test -e " + file).code, 0) << "logout left the file";
  EXPECT_EQ(run(env + bin("berth") + " logout").code, 0);

  // The id may come from a prompt on stdin, the secret from the next line.
  req = s.serve(200, R"({"principal":"user/ci"})");
  login = run("printf '%s\\n%s\\n' " + kKey.key_id + " " + kKey.secret + " | " + env +
              bin("berth") + " login --server " + s.url());
  sent = req.get();
  EXPECT_EQ(login.code, 0) << login.all();
  EXPECT_TRUE(has(sent, "Authorization: Basic " + base64(kKey.creds()))) << sent;
}

TEST(AuthCliTest, LoginThatCannotVerifySavesNothing) {
  FakeServer s;
  TempDir home;
  std::string env =
      "env -u BERTH_ACCESS_KEY_ID -u BERTH_SECRET_ACCESS_KEY -u BERTH_SERVER HOME=" + home.path() +
      " ";
  std::string login = "printf '%s\\n' " + kKey.secret + " | " + env + bin("berth") +
                      " login --server " + s.url() + " --access-key-id " + kKey.key_id +
                      " --secret-access-key-stdin";
  // A server without whoami (404): could not verify.
  auto req = s.serve(404, R"({"error":{"code":"not_found","message":"no API endpoint"}})");
  auto r = run(login);
  req.get();
  EXPECT_NE(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.err, "could not verify")) << r.all();
  // Wrong key: refused.
  req = s.serve(401, kUnauthenticated);
  r = run(login);
  req.get();
  EXPECT_EQ(r.code, 5) << r.all();
  EXPECT_TRUE(has(r.err, "login failed")) << r.all();
  EXPECT_NE(run("test -e " + home / ".config/berth/credentials").code, 0);
}

// Against a real berthd (enforcing): anonymous calls exit 5 naming the fix; login verifies
// the admin key and later commands use the file.
TEST(AuthCliTest, RealServerRefusesAnonymousAndAcceptsLogin) {
  TestDaemon d;
  auto anon = d.cli_as(AdminCredentials{}, "repo ls");
  EXPECT_EQ(anon.code, 5) << anon.all();
  EXPECT_TRUE(has(anon.err, "not authenticated: run berth login")) << anon.all();

  TempDir home;
  std::string env =
      "env -u BERTH_ACCESS_KEY_ID -u BERTH_SECRET_ACCESS_KEY -u BERTH_SERVER HOME=" + home.path() +
      " ";
  auto login =
      run("printf '%s\\n' " + d.admin_secret() + " | " + env + bin("berth") + " login --server " +
          d.url() + " --access-key-id " + d.admin_key_id() + " --secret-access-key-stdin");
  ASSERT_EQ(login.code, 0) << login.all();
  EXPECT_EQ(login.out, "logged in to " + d.url() + " as user/admin\n");
  auto ls = run(env + bin("berth") + " repo create web/app");
  EXPECT_EQ(ls.code, 0) << ls.all();

  auto wrong = run("printf 'wrong\\n' | " + env + bin("berth") + " login --server " + d.url() +
                   " --access-key-id " + d.admin_key_id() + " --secret-access-key-stdin");
  EXPECT_EQ(wrong.code, 5) << wrong.all();
  EXPECT_TRUE(has(wrong.err, "login failed")) << wrong.all();
  // The failed login left the good credentials in place.
  EXPECT_EQ(run(env + bin("berth") + " repo ls").code, 0);
}

TEST(AuthCliTest, HarnessReadsTheAdminKey) {
  TestDaemon d;
  EXPECT_EQ(d.admin_key_id().rfind("BK", 0), 0u) << d.admin_key_id();
  EXPECT_EQ(d.admin_secret().size(), 40u);
  EXPECT_EQ(d.creds(), d.admin_key_id() + ":" + d.admin_secret());
  EXPECT_EQ(base64("ab:c"), "YWI6Yw==");
  EXPECT_EQ(base64("abc:"), "YWJjOg==");
  EXPECT_EQ(base64("abcd:e"), "YWJjZDpl");
}

}  // namespace
}  // namespace berth::test
