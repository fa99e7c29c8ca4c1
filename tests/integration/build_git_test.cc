// SPDX-License-Identifier: Apache-2.0
// Git sources with real git: shallow fetches from file:// remotes (by commit, by branch, with
// the fallback for servers that refuse commits by id), and berth's smart-HTTP bridge behind a
// small Beast server that git clones from and pushes to.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "builder/git.h"
#include "common/asio.h"
#include "common/url.h"
#include "support/harness.h"

namespace berth::builder {
namespace {

using test::git;
using test::run;
using test::TempDir;
using test::trimmed;

constexpr const char* kKey = "AKTESTKEY";
constexpr const char* kSecret = "s3cr3t/Pass+word";  // has characters git percent-encodes

/// Percent-encodes everything but unreserved characters (for userinfo in a URL).
std::string pct(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

/// A repository with main: c1 (a.txt=one) -> c2 (a.txt=two), side: c1 -> c3, tag v1 -> c1.
struct SourceRepo {
  TempDir dir;
  std::string path = dir / "src";
  std::string c1, c2, c3;

  SourceRepo() {
    EXPECT_EQ(run("mkdir -p '" + path + "'").code, 0);
    EXPECT_EQ(git(path, "init -q").code, 0);
    test::write_file(path + "/a.txt", "one");
    EXPECT_EQ(git(path, "add a.txt && git -c user.name=t -c user.email=t@x commit -qm one").code,
              0);
    c1 = trimmed(git(path, "rev-parse HEAD").out);
    EXPECT_EQ(git(path, "tag -a v1 -m v1").code, 0);
    EXPECT_EQ(git(path, "checkout -q -b side").code, 0);
    test::write_file(path + "/a.txt", "side");
    EXPECT_EQ(git(path, "commit -qam side").code, 0);
    c3 = trimmed(git(path, "rev-parse HEAD").out);
    EXPECT_EQ(git(path, "checkout -q main").code, 0);
    test::write_file(path + "/a.txt", "two");
    EXPECT_EQ(git(path, "commit -qam two").code, 0);
    c2 = trimmed(git(path, "rev-parse HEAD").out);
  }
  std::string url() const { return "file://" + path; }
};

struct Log {
  std::vector<std::string> lines;
  GitLogFn fn() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
  std::string text() const {
    std::string t;
    for (const auto& l : lines) {
      t += l;
      t += '\n';
    }
    return t;
  }
};

TEST(GitFetchTest, FetchesCommitByIdFromFileRemote) {
  SourceRepo src;
  TempDir out;
  Log log;
  auto id = fetch_commit(src.url(), src.c1, out / "w", {}, log.fn());
  ASSERT_TRUE(id) << id.error().message() << "\n" << log.text();
  EXPECT_EQ(*id, src.c1);
  EXPECT_EQ(test::read_file(out / "w/a.txt"), "one");
  // Shallow: exactly one commit.
  EXPECT_EQ(trimmed(git(out / "w", "rev-list --count HEAD").out), "1");
  EXPECT_NE(log.text().find("$ git"), std::string::npos);
  EXPECT_NE(log.text().find("checked out " + src.c1), std::string::npos);
}

TEST(GitFetchTest, ObjectCacheFetchesACommitOnceAndChecksOutOnlyTheFiles) {
  SourceRepo src;
  TempDir out;
  FetchOptions opts;
  opts.object_cache = out / "cache.git";
  Log first;
  auto id = fetch_commit(src.url(), src.c1, out / "w1", {}, first.fn(), opts);
  ASSERT_TRUE(id) << id.error().message() << "\n" << first.text();
  EXPECT_EQ(*id, src.c1);
  EXPECT_EQ(test::read_file(out / "w1/a.txt"), "one");
  EXPECT_FALSE(std::filesystem::exists(out / "w1/.git"));
  EXPECT_NE(first.text().find(" fetch "), std::string::npos) << first.text();

  // The same commit again comes from the cache, without a fetch.
  Log second;
  id = fetch_commit(src.url(), src.c1, out / "w2", {}, second.fn(), opts);
  ASSERT_TRUE(id) << id.error().message() << "\n" << second.text();
  EXPECT_EQ(test::read_file(out / "w2/a.txt"), "one");
  EXPECT_EQ(second.text().find(" fetch "), std::string::npos) << second.text();
  EXPECT_NE(second.text().find("already fetched"), std::string::npos) << second.text();

  // Another commit and a branch name are fetched into the same cache; the checkout is theirs.
  id = fetch_commit(src.url(), src.c2, out / "w3", {}, {}, opts);
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(test::read_file(out / "w3/a.txt"), "two");
  id = fetch_commit(src.url(), "side", out / "w4", {}, {}, opts);
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(*id, src.c3);
  EXPECT_EQ(test::read_file(out / "w4/a.txt"), "side");
  // No index or other state is left beside the checkouts.
  EXPECT_FALSE(std::filesystem::exists(out / "w4.index"));
}

// berthd is a child subreaper: what git leaves behind (the upload-pack of a failed fetch, the
// helpers of a killed one) is re-parented to it and must be reaped, not left as zombies.
TEST(GitFetchTest, LeavesNoZombiesInASubreaper) {
  SourceRepo src;
  TempDir out;
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  auto missing = fetch_commit(src.url(), "nope", out / "a", {}, {});
  EXPECT_FALSE(missing);
  asio::io_context ioc;
  asio::ip::tcp::acceptor acc(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  FetchOptions opts;
  opts.timeout = std::chrono::seconds(1);
  auto hung =
      fetch_commit("http://127.0.0.1:" + std::to_string(acc.local_endpoint().port()) + "/r.git",
                   "main", out / "b", {}, {}, opts);
  EXPECT_FALSE(hung);
  siginfo_t info{};
  int rc = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  EXPECT_TRUE(rc != 0 || info.si_pid == 0) << "zombie left: pid " << info.si_pid;
  ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

TEST(GitFetchTest, FetchesBranchAndRef) {
  SourceRepo src;
  TempDir out;
  auto main = fetch_commit(src.url(), "main", out / "a", {}, {});
  ASSERT_TRUE(main) << main.error().message();
  EXPECT_EQ(*main, src.c2);
  EXPECT_EQ(test::read_file(out / "a/a.txt"), "two");
  auto side = fetch_commit(src.url(), "refs/heads/side", out / "b", {}, {});
  ASSERT_TRUE(side) << side.error().message();
  EXPECT_EQ(*side, src.c3);
}

TEST(GitFetchTest, FallsBackWhenServerRefusesCommitIds) {
  SourceRepo src;
  TempDir out;
  Log log;
  FetchOptions opts;
  opts.protocol_version = 0;  // v0 upload-pack refuses unadvertised commit ids
  opts.fallback_ref = "main";
  auto id = fetch_commit(src.url(), src.c1, out / "w", {}, log.fn(), opts);
  ASSERT_TRUE(id) << id.error().message() << "\n" << log.text();
  EXPECT_EQ(*id, src.c1);
  EXPECT_EQ(test::read_file(out / "w/a.txt"), "one");
  EXPECT_NE(log.text().find("server refused to send commit"), std::string::npos) << log.text();

  // Without a branch hint every branch is searched.
  opts.fallback_ref.clear();
  auto side = fetch_commit(src.url(), src.c3, out / "s", {}, {}, opts);
  ASSERT_TRUE(side) << side.error().message();
  EXPECT_EQ(*side, src.c3);

  // A commit that is on no branch is NotFound after the full history was searched.
  auto missing = fetch_commit(src.url(), std::string(40, 'a'), out / "m", {}, {}, opts);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound) << missing.error().message();
}

TEST(GitFetchTest, RefusesBadInputAndReportsMissingRefs) {
  SourceRepo src;
  TempDir out;
  auto r = fetch_commit("ext::sh -c id", "main", out / "x", {}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  r = fetch_commit(src.url(), "--upload-pack=touch /tmp/x", out / "x", {}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  r = fetch_commit(src.url(), "main:refs/heads/evil", out / "x", {}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  r = fetch_commit(src.url(), "nope", out / "y", {}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::NotFound) << r.error().message();
  // A non-empty destination is refused.
  test::write_file(out / "z/file", "x");
  r = fetch_commit(src.url(), "main", out / "z", {}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::FailedPrecondition);
}

TEST(GitFetchTest, ResolvesRefs) {
  SourceRepo src;
  auto main = resolve_ref(src.url(), "main", {});
  ASSERT_TRUE(main) << main.error().message();
  EXPECT_EQ(*main, src.c2);
  auto full = resolve_ref(src.url(), "refs/heads/side", {});
  ASSERT_TRUE(full);
  EXPECT_EQ(*full, src.c3);
  auto tag = resolve_ref(src.url(), "v1", {});  // annotated: peeled to the commit
  ASSERT_TRUE(tag) << tag.error().message();
  EXPECT_EQ(*tag, src.c1);
  auto head = resolve_ref(src.url(), "HEAD", {});
  ASSERT_TRUE(head);
  EXPECT_EQ(*head, src.c2);
  auto missing = resolve_ref(src.url(), "nope", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
}

TEST(GitFetchTest, TimesOutOnAServerThatNeverAnswers) {
  asio::io_context ioc;
  asio::ip::tcp::acceptor acc(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  std::string url = "http://127.0.0.1:" + std::to_string(acc.local_endpoint().port()) + "/r.git";
  TempDir out;
  FetchOptions opts;
  opts.timeout = std::chrono::seconds(1);
  auto t0 = std::chrono::steady_clock::now();
  auto r = fetch_commit(url, "main", out / "w", {}, {}, opts);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::DeadlineExceeded) << r.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

// ---------------------------------------------------------------------------------------------
// Smart HTTP through run_git_http_backend

/// Serves /git/<path> from root through run_git_http_backend, requiring Basic kKey:kSecret.
/// Blocking Beast, one thread per connection; responses are streamed in chunked encoding.
class GitHttpServer {
 public:
  explicit GitHttpServer(std::string root)
      : root_(std::move(root)), acc_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~GitHttpServer() {
    stop_ = true;
    beast::error_code ec;
    asio::ip::tcp::socket poke(ioc_);
    poke.connect(acc_.local_endpoint(), ec);
    thread_.join();
    for (auto& t : conns_) {
      t.join();
    }
  }
  uint16_t port() const { return acc_.local_endpoint().port(); }
  std::string url(const std::string& repo, bool with_creds) const {
    std::string u = "http://";
    if (with_creds) {
      u += kKey;
      u += ':';
      u += pct(kSecret);
      u += '@';
    }
    u += "127.0.0.1:" + std::to_string(port()) + "/git/" + repo;
    return u;
  }
  int requests() const { return requests_; }
  int max_body() const { return max_body_; }

 private:
  void accept_loop() {
    while (!stop_) {
      asio::ip::tcp::socket s(ioc_);
      beast::error_code ec;
      acc_.accept(s, ec);
      if (ec || stop_) {
        return;
      }
      conns_.emplace_back([this, sock = std::move(s)]() mutable { serve(std::move(sock)); });
    }
  }

  void serve(asio::ip::tcp::socket sock) {
    beast::flat_buffer buf;
    while (true) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(256 * 1024 * 1024);
      beast::error_code ec;
      bhttp::read(sock, buf, parser, ec);
      if (ec) {
        return;
      }
      auto& req = parser.get();
      ++requests_;
      max_body_ = std::max<int>(max_body_, static_cast<int>(req.body().size()));
      std::string expected = "Basic ";
      expected += b64::encode(std::string(kKey) + ":" + kSecret);
      std::string target(req.target());
      if (req[bhttp::field::authorization] != expected) {
        std::string r =
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"berth\"\r\n"
            "Content-Length: 0\r\n\r\n";
        asio::write(sock, asio::buffer(r), ec);
        if (ec) {
          return;
        }
        continue;
      }
      if (target.rfind("/git/", 0) != 0) {
        std::string r = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        asio::write(sock, asio::buffer(r), ec);
        continue;
      }
      CgiRequest cgi;
      cgi.project_root = root_;
      cgi.method = std::string(req.method_string());
      size_t q = target.find('?');
      cgi.path_info = target.substr(4, q == std::string::npos ? q : q - 4);
      cgi.query_string = q == std::string::npos ? "" : target.substr(q + 1);
      cgi.content_type = std::string(req[bhttp::field::content_type]);
      cgi.content_encoding = std::string(req[bhttp::field::content_encoding]);
      cgi.git_protocol = std::string(req["Git-Protocol"]);
      cgi.remote_user = kKey;
      cgi.remote_addr = "127.0.0.1";
      if (!req.chunked()) {
        cgi.content_length = req.body().size();
      }
      size_t off = 0;
      const std::string& body = req.body();
      cgi.read_body = [&](char* out, size_t cap) -> Result<size_t> {
        size_t n = std::min(cap, body.size() - off);
        std::memcpy(out, body.data() + off, n);
        off += n;
        return n;
      };
      bool write_failed = false;
      CgiSink sink;
      sink.on_head = [&](const CgiResponse& head) -> Status {
        std::string r = "HTTP/1.1 " + std::to_string(head.status) + " " + head.reason + "\r\n";
        for (const auto& [k, v] : head.headers) {
          r += k + ": " + v + "\r\n";
        }
        r += "Transfer-Encoding: chunked\r\n\r\n";
        asio::write(sock, asio::buffer(r), ec);
        write_failed = static_cast<bool>(ec);
        return write_failed ? Status(make_error(Errc::Unavailable, "client gone")) : ok();
      };
      sink.on_body = [&](std::string_view chunk) -> Status {
        char hex[32];
        std::snprintf(hex, sizeof hex, "%zx\r\n", chunk.size());
        std::array<asio::const_buffer, 3> bufs = {asio::buffer(hex, std::strlen(hex)),
                                                  asio::buffer(chunk.data(), chunk.size()),
                                                  asio::buffer("\r\n", 2)};
        asio::write(sock, bufs, ec);
        write_failed = static_cast<bool>(ec);
        return write_failed ? Status(make_error(Errc::Unavailable, "client gone")) : ok();
      };
      auto res = run_git_http_backend(cgi, sink);
      if (!res) {
        if (!write_failed) {
          std::string r = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
          asio::write(sock, asio::buffer(r), ec);
        }
        ADD_FAILURE() << "backend: " << res.error().message();
        return;
      }
      asio::write(sock, asio::buffer("0\r\n\r\n", 5), ec);
      if (ec) {
        return;
      }
    }
  }

  std::string root_;
  asio::io_context ioc_;
  asio::ip::tcp::acceptor acc_;
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> max_body_{0};
};

TEST(GitHttpBackendTest, InitAndListRefs) {
  TempDir root;
  ASSERT_TRUE(init_bare_repo(root / "web/app.git"));
  ASSERT_TRUE(init_bare_repo(root / "web/app.git"));  // idempotent
  EXPECT_EQ(trimmed(git(root / "web/app.git", "config http.receivepack").out), "true");
  auto refs = list_refs(root / "web/app.git");
  ASSERT_TRUE(refs) << refs.error().message();
  EXPECT_TRUE(refs->empty());
  auto missing = list_refs(root / "nope.git");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
}

TEST(GitHttpBackendTest, CloneAndPushThroughTheBridge) {
  TempDir root;
  TempDir work;
  ASSERT_TRUE(init_bare_repo(root / "web/app.git"));
  GitHttpServer server(root.path());

  // Without credentials git is refused (and, with prompts off, fails rather than asks).
  auto anon = git(work.path(), "clone -q " + server.url("web/app.git", false) + " anon");
  EXPECT_NE(anon.code, 0) << anon.all();

  // Clone the empty repository, commit, push.
  auto clone = git(work.path(), "clone -q " + server.url("web/app.git", true) + " w");
  ASSERT_EQ(clone.code, 0) << clone.all();
  std::string w = work / "w";
  test::write_file(w + "/Dockerfile", "FROM scratch\n");
  // Over 1 MiB of incompressible data: git sends the pack with chunked encoding.
  ASSERT_EQ(run("head -c 3000000 /dev/urandom > '" + w + "/blob.bin'").code, 0);
  ASSERT_EQ(git(w, "add -A && git -c user.name=t -c user.email=t@x commit -qm first").code, 0);
  std::string first = trimmed(git(w, "rev-parse HEAD").out);

  auto before = list_refs(root / "web/app.git");
  ASSERT_TRUE(before);
  auto push = git(w, "push -q origin HEAD:refs/heads/main");
  ASSERT_EQ(push.code, 0) << push.all();
  auto after = list_refs(root / "web/app.git");
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(before->count("refs/heads/main"), 0u);
  ASSERT_EQ(after->count("refs/heads/main"), 1u);
  EXPECT_EQ(after->at("refs/heads/main"), first);
  EXPECT_GT(server.max_body(), 1000000);

  // A second commit, pushed and fetched back shallowly over HTTP with berth credentials.
  test::write_file(w + "/Dockerfile", "FROM scratch\nLABEL v=2\n");
  ASSERT_EQ(git(w, "commit -qam second").code, 0);
  std::string second = trimmed(git(w, "rev-parse HEAD").out);
  ASSERT_EQ(git(w, "push -q origin HEAD:main").code, 0);
  EXPECT_EQ(list_refs(root / "web/app.git")->at("refs/heads/main"), second);

  GitAuth auth{kKey, kSecret, "", ""};
  Log log;
  TempDir out;
  auto id = fetch_commit(server.url("web/app.git", false), first, out / "a", auth, log.fn());
  ASSERT_TRUE(id) << id.error().message() << "\n" << log.text();
  EXPECT_EQ(*id, first);
  EXPECT_EQ(test::read_file(out / "a/Dockerfile"), "FROM scratch\n");
  EXPECT_EQ(trimmed(git(out / "a", "rev-list --count HEAD").out), "1");

  auto head = resolve_ref(server.url("web/app.git", false), "main", auth);
  ASSERT_TRUE(head) << head.error().message();
  EXPECT_EQ(*head, second);

  // Credentials in the URL instead: the log shows the URL with the password masked.
  Log log2;
  auto id2 = fetch_commit(server.url("web/app.git", true), "main", out / "b", {}, log2.fn());
  ASSERT_TRUE(id2) << id2.error().message() << "\n" << log2.text();
  EXPECT_EQ(*id2, second);
  std::string all = log.text() + log2.text();
  EXPECT_EQ(all.find(kSecret), std::string::npos) << all;
  EXPECT_EQ(all.find(pct(kSecret)), std::string::npos) << all;
  EXPECT_EQ(all.find(b64::encode(std::string(kKey) + ":" + kSecret)), std::string::npos);
  EXPECT_NE(log2.text().find(std::string(kKey) + ":****@"), std::string::npos) << log2.text();

  // A wrong password is Unauthenticated, and its error text is masked too.
  GitAuth wrong{kKey, "wrong-password", "", ""};
  auto denied = fetch_commit(server.url("web/app.git", false), "main", out / "c", wrong, {});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), Errc::Unauthenticated) << denied.error().message();
  EXPECT_EQ(denied.error().message().find("wrong-password"), std::string::npos);
}

TEST(GitHttpBackendTest, DrivesTheCgiDirectly) {
  TempDir root;
  ASSERT_TRUE(init_bare_repo(root / "x.git"));
  CgiRequest req;
  req.project_root = root.path();
  req.method = "GET";
  req.path_info = "/x.git/info/refs";
  req.query_string = "service=git-upload-pack";
  req.git_protocol = "version=2";
  auto res = run_git_http_backend(req);
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->status, 200);
  bool ct = false;
  for (const auto& [k, v] : res->headers) {
    ct = ct || (k == "Content-Type" && v == "application/x-git-upload-pack-advertisement");
  }
  EXPECT_TRUE(ct);
  EXPECT_NE(res->body.find("version 2"), std::string::npos) << res->body;

  req.path_info = "/missing.git/info/refs";
  auto missing = run_git_http_backend(req);
  ASSERT_TRUE(missing) << missing.error().message();
  EXPECT_EQ(missing->status, 404);

  req.path_info = "/../etc/info/refs";
  auto bad = run_git_http_backend(req);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
  req.path_info = "/x.git/info/refs";
  req.method = "DELETE";
  EXPECT_FALSE(run_git_http_backend(req));
}

}  // namespace
}  // namespace berth::builder
