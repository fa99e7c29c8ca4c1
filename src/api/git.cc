// SPDX-License-Identifier: Apache-2.0
// berth's git remote, /git/NAME.git/: git's smart HTTP through `git http-backend`, which runs
// on its own thread while a bounded queue in each direction bridges it to the connection's
// coroutine, so a push or clone of any size stays in bounded memory and never blocks an I/O
// thread. Access keys arrive as HTTP Basic credentials; build:GitPull / build:GitPush on
// project/NAME are checked first.
#include "builder/git.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "api/api.h"
#include "api/build_internal.h"
#include "api/internal.h"
#include "builder/build.h"
#include "common/async.h"
#include "common/json.h"
#include "common/log.h"

namespace berth::api {

namespace {

constexpr size_t kGitQueueBytes = 1024 * 1024;  // per direction, between socket and backend

// ---- git smart HTTP ---------------------------------------------------------------------------

// One /git/ request's two halves: the connection's coroutine (socket side) and a thread
// running git http-backend (pipe side). The request body flows coroutine -> thread and the
// response thread -> coroutine, each through a queue of at most kGitQueueBytes; the side
// that finds its queue full (or empty) waits: the thread on cv, the coroutine on its timer,
// which the thread cancels (posted to the coroutine's executor) when there is news.
struct GitBridge : std::enable_shared_from_this<GitBridge> {
  std::mutex mu;
  std::condition_variable cv;
  // Request body.
  std::deque<std::string> in;
  size_t in_off = 0;  // consumed bytes of in.front()
  size_t in_bytes = 0;
  bool in_eof = false;
  // Response.
  std::optional<builder::CgiResponse> head;
  std::deque<std::string> out;
  size_t out_bytes = 0;
  bool done = false;
  Result<builder::CgiResponse> result;
  // The coroutine is gone (or gave up): every callback fails, which aborts the backend.
  bool cancelled = false;
  // The coroutine's wake-up: its executor and timer (null once the coroutine has gone).
  asio::any_io_executor ex;
  asio::steady_timer* timer = nullptr;
  bool waiting = false;

  // mu held.
  void wake_locked() {
    if (waiting && timer != nullptr) {
      waiting = false;
      asio::post(ex, [self = shared_from_this()] {
        std::lock_guard lock(self->mu);
        if (self->timer != nullptr) {
          self->timer->cancel();
        }
      });
    }
  }
};

// Ends the bridge when the coroutine leaves by any path (also when its frame is destroyed at
// shutdown): the backend's next callback fails and the thread winds down on its own.
struct GitBridgeGuard {
  std::shared_ptr<GitBridge> b;
  ~GitBridgeGuard() {
    std::lock_guard lock(b->mu);
    b->cancelled = true;
    b->timer = nullptr;
    b->cv.notify_all();
  }
};

void run_backend(std::shared_ptr<GitBridge> b, builder::CgiRequest req,
                 std::shared_ptr<std::atomic<int>> running, bool has_body) {
  if (has_body) {
    req.read_body = [b](char* buf, size_t cap) -> Result<size_t> {
      std::unique_lock lock(b->mu);
      b->cv.wait(lock, [&] { return b->cancelled || !b->in.empty() || b->in_eof; });
      if (b->cancelled) {
        return Error(Errc::Cancelled, "the client went away");
      }
      if (b->in.empty()) {
        return size_t{0};
      }
      std::string& front = b->in.front();
      size_t n = std::min(cap, front.size() - b->in_off);
      std::memcpy(buf, front.data() + b->in_off, n);
      b->in_off += n;
      b->in_bytes -= n;
      if (b->in_off == front.size()) {
        b->in.pop_front();
        b->in_off = 0;
      }
      b->wake_locked();  // room for more
      return n;
    };
  }
  builder::CgiSink sink;
  sink.on_head = [b](const builder::CgiResponse& head) -> Status {
    std::lock_guard lock(b->mu);
    if (b->cancelled) {
      return Error(Errc::Cancelled, "the client went away");
    }
    b->head = head;
    b->wake_locked();
    return ok();
  };
  sink.on_body = [b](std::string_view chunk) -> Status {
    std::unique_lock lock(b->mu);
    b->cv.wait(lock, [&] { return b->cancelled || b->out_bytes < kGitQueueBytes; });
    if (b->cancelled) {
      return Error(Errc::Cancelled, "the client went away");
    }
    b->out.emplace_back(chunk);
    b->out_bytes += chunk.size();
    b->wake_locked();
    return ok();
  };
  auto r = builder::run_git_http_backend(req, sink);
  {
    std::lock_guard lock(b->mu);
    b->result = std::move(r);
    b->done = true;
    b->wake_locked();
  }
  running->fetch_sub(1);
}

// The /git/ request after parsing and authorization.
struct GitTarget {
  std::optional<http::Response> error;
  std::string project;
  std::string root;
  bool receive_pack = false;  // POST .../git-receive-pack: a push that moves refs
  std::map<std::string, std::string> refs_before;
};

http::Response git_unauthenticated() {
  http::Response r = text_response(401,
                                   "authentication required: use a berth access key "
                                   "(http://KEY_ID:SECRET@HOST/git/NAME.git)\n");
  r.header("WWW-Authenticate", "Basic realm=\"berth\"");
  return r;
}

http::Response git_head_response(const builder::CgiResponse& head) {
  http::Response r;
  r.status = static_cast<unsigned>(head.status);
  for (const auto& [k, v] : head.headers) {
    r.header(k, v);
  }
  return r;
}

}  // namespace

awaitable<void> Api::git(http::Exchange& ex) {
  using V = bhttp::verb;
  if (build_.service == nullptr || build_.pool == nullptr) {
    co_return co_await reply_unavailable(ex, build_);
  }
  const auto& ctx = ex.context();
  if (auth_.require_auth && !ctx.authenticated) {
    co_return co_await ex.send(git_unauthenticated());
  }
  // /git/NAME.git[/...]
  const std::string prefix = "/git/";
  const std::string& path = ex.path();
  std::string tail = path.substr(prefix.size());
  auto dot = tail.find(".git");
  std::string name = dot == std::string::npos ? "" : tail.substr(0, dot);
  std::string sub = dot == std::string::npos ? "" : tail.substr(dot + 4);
  if (!plausible_project_name(name) || (!sub.empty() && sub[0] != '/')) {
    std::string msg = "not a berth git remote: ";
    msg += path;
    msg += " (use /git/PROJECT.git)\n";
    co_return co_await ex.send(text_response(404, std::move(msg)));
  }
  if (ex.method() != V::get && ex.method() != V::post) {
    co_return co_await ex.send(text_response(405, "git smart HTTP uses GET and POST\n"));
  }
  std::string service = ex.query("service").value_or("");
  bool push = sub == "/git-receive-pack" || (sub == "/info/refs" && service == "git-receive-pack");
  bool receive_pack = sub == "/git-receive-pack" && ex.method() == V::post;
  auto target_job = [svc = build_.service, iam = &iam_, ctx, name, push,
                     receive_pack]() -> GitTarget {
    GitTarget t;
    t.project = name;
    auto r = [&]() -> Status {
      BERTH_TRY(iam->authorize(ctx, push ? "build:GitPush" : "build:GitPull", "project/" + name));
      BERTH_TRY(svc->get_project(name));
      t.root = svc->git_root();
      if (receive_pack) {
        BERTH_ASSIGN_OR_RETURN(t.refs_before, svc->git_refs(name));
      }
      return ok();
    }();
    if (!r) {
      t.error = error_response(r.error());
    }
    t.receive_pack = receive_pack;
    return t;
  };
  GitTarget t = co_await run_blocking(*build_.pool, std::move(target_job));
  if (t.error) {
    co_return co_await ex.send(std::move(*t.error));
  }
  if (git_requests_->fetch_add(1) >= build_.max_git_requests) {
    git_requests_->fetch_sub(1);
    http::Response busy = text_response(503, "too many git requests at once; retry shortly\n");
    busy.header("Retry-After", "5");
    co_return co_await ex.send(std::move(busy));
  }

  builder::CgiRequest req;
  req.project_root = t.root;
  req.method = ex.method_string();
  req.path_info.assign(1, '/');
  req.path_info += name;
  req.path_info += ".git";
  req.path_info += sub;
  if (!service.empty()) {
    req.query_string = "service=";
    req.query_string += service;
  }
  req.content_type = ex.header(bhttp::field::content_type);
  if (!ex.chunked()) {
    req.content_length = ex.content_length();
  }
  req.content_encoding = ex.header(bhttp::field::content_encoding);
  req.git_protocol = ex.header("Git-Protocol");
  req.remote_user = ctx.principal;
  req.remote_addr = ctx.peer.substr(0, ctx.peer.rfind(':'));
  bool has_body = ex.method() == V::post;

  auto bridge = std::make_shared<GitBridge>();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  bridge->ex = timer.get_executor();
  bridge->timer = &timer;
  bridge->in_eof = !has_body;
  GitBridgeGuard guard{bridge};
  std::thread(run_backend, bridge, std::move(req), git_requests_, has_body).detach();

  // Pump: the backend's output to the client, the client's body to the backend.
  std::vector<char> buf(64 * 1024);
  bool head_sent = false;
  bool client_gone = false;
  while (true) {
    std::optional<builder::CgiResponse> head;
    std::deque<std::string> chunks;
    bool done = false;
    bool need_input = false;
    {
      std::lock_guard lock(bridge->mu);
      if (!head_sent && bridge->head) {
        head = std::move(bridge->head);
        bridge->head.reset();
      }
      chunks.swap(bridge->out);
      if (!chunks.empty()) {
        bridge->out_bytes = 0;
        bridge->cv.notify_all();
      }
      done = bridge->done;
      need_input = !bridge->in_eof && bridge->in_bytes < kGitQueueBytes;
    }
    if (head) {
      head_sent = true;
      if (!co_await ex.send_head(git_head_response(*head))) {
        client_gone = true;
        break;
      }
    }
    for (auto& c : chunks) {
      if (!co_await ex.write_chunk(std::move(c))) {
        client_gone = true;
        break;
      }
    }
    if (client_gone || done) {
      break;
    }
    if (need_input) {
      auto n = co_await ex.read_some(buf.data(), buf.size());
      std::lock_guard lock(bridge->mu);
      if (!n) {
        client_gone = true;
        break;
      }
      if (*n == 0) {
        bridge->in_eof = true;
      } else {
        bridge->in.emplace_back(buf.data(), *n);
        bridge->in_bytes += *n;
      }
      bridge->cv.notify_all();
      continue;
    }
    {
      std::lock_guard lock(bridge->mu);
      bool news = (!head_sent && bridge->head) || !bridge->out.empty() || bridge->done ||
                  (!bridge->in_eof && bridge->in_bytes < kGitQueueBytes);
      if (news) {
        continue;
      }
      bridge->waiting = true;
    }
    timer.expires_after(std::chrono::seconds(5));  // a safety net: wake-ups are posted
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    std::lock_guard lock(bridge->mu);
    bridge->waiting = false;
  }
  if (client_gone) {
    log::get("build")->info("git request aborted: the client went away project={} path={}", name,
                            path);
    co_return;  // the guard stops the backend
  }
  Result<builder::CgiResponse> result;
  {
    std::lock_guard lock(bridge->mu);
    result = bridge->result;
  }
  if (!head_sent) {
    Error e = result ? Error(Errc::Internal, "git http-backend sent no response") : result.error();
    log::get("build")->warn("git http-backend failed project={} error={}", name, e.message());
    co_return co_await ex.send(error_response(e));
  }
  if (!result) {
    // The head is out: the truncated body (no last chunk) tells the client it failed.
    log::get("build")->warn("git http-backend failed project={} error={}", name,
                            result.error().message());
    co_return;
  }
  if (t.receive_pack && result->status == 200) {
    auto pushed_job = [svc = build_.service, name, before = t.refs_before,
                       principal = ctx.principal] {
      return svc->git_pushed(name, before, principal);
    };
    auto queued = co_await run_blocking(*build_.pool, std::move(pushed_job));
    auto lg = log::get("build");
    if (!queued) {
      lg->warn("git push project={} principal={} queued no build: {}", name, ctx.principal,
               queued.error().message());
    } else {
      for (int64_t id : *queued) {
        lg->info("git push project={} principal={} queued build={}", name, ctx.principal, id);
      }
    }
  }
  co_await ex.end_body();
}

}  // namespace berth::api
