// SPDX-License-Identifier: Apache-2.0
// The git smart-HTTP bridge: runs git-http-backend as a CGI for one request. See git.h.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "builder/git.h"
#include "common/url.h"

extern char** environ;

#include "builder/git_internal.h"

namespace berth::builder {

using namespace detail;

namespace {

constexpr size_t kMaxCgiHead = 16 * 1024;
constexpr size_t kMaxStderr = 8 * 1024;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Smart HTTP

namespace {

bool safe_path_info(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > 4096) {
    return false;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') {
      return false;
    }
  }
  size_t pos = 0;
  while (pos < p.size()) {
    size_t next = p.find('/', pos + 1);
    std::string_view seg = p.substr(pos + 1, next == p.npos ? p.npos : next - pos - 1);
    if (seg == ".." || seg == ".") {
      return false;
    }
    pos = next == p.npos ? p.size() : next;
  }
  return true;
}

bool safe_header_value(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}

/// Collects the CGI head from the backend's stdout, then passes the body on.
class CgiOutput {
 public:
  CgiOutput(CgiResponse& resp, const CgiSink& sink) : resp_(resp), sink_(sink) {}

  Status feed(std::string_view chunk) {
    if (head_done_) {
      return body(chunk);
    }
    head_ += chunk;
    size_t end = head_.find("\r\n\r\n");
    size_t sep = 4;
    size_t lf = head_.find("\n\n");
    if (lf != std::string::npos && (end == std::string::npos || lf < end)) {
      end = lf;
      sep = 2;
    }
    if (end == std::string::npos) {
      if (head_.size() > kMaxCgiHead) {
        return make_error(Errc::Internal, "git http-backend: response head too large");
      }
      return ok();
    }
    std::string rest = head_.substr(end + sep);
    head_.resize(end);
    BERTH_TRY(parse_head());
    head_done_ = true;
    if (sink_.on_head) {
      BERTH_TRY(sink_.on_head(resp_));
    }
    return rest.empty() ? ok() : body(rest);
  }

  bool head_done() const { return head_done_; }

 private:
  Status body(std::string_view chunk) {
    resp_.body_bytes += chunk.size();
    if (sink_.on_body) {
      return sink_.on_body(chunk);
    }
    resp_.body += chunk;
    return ok();
  }

  Status parse_head() {
    size_t pos = 0;
    while (pos <= head_.size()) {
      size_t nl = head_.find('\n', pos);
      std::string line = head_.substr(pos, nl == std::string::npos ? nl : nl - pos);
      pos = nl == std::string::npos ? head_.size() + 1 : nl + 1;
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.empty()) {
        continue;
      }
      size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0) {
        return make_error(Errc::Internal, "git http-backend: malformed header line");
      }
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.erase(0, 1);
      }
      if (strcasecmp(name.c_str(), "Status") == 0) {
        int code = std::atoi(value.c_str());
        if (code < 100 || code > 599) {
          return make_error(Errc::Internal, "git http-backend: bad Status " + value);
        }
        resp_.status = code;
        size_t sp = value.find(' ');
        resp_.reason = sp == std::string::npos ? std::string() : value.substr(sp + 1);
      } else {
        resp_.headers.emplace_back(std::move(name), std::move(value));
      }
    }
    return ok();
  }

  CgiResponse& resp_;
  const CgiSink& sink_;
  std::string head_;
  bool head_done_ = false;
};

}  // namespace

Result<CgiResponse> run_git_http_backend(const CgiRequest& req, const CgiSink& sink) {
  if (req.method != "GET" && req.method != "POST") {
    return make_error(Errc::InvalidArgument, "git http-backend: method " + req.method);
  }
  if (!safe_path_info(req.path_info)) {
    return make_error(Errc::InvalidArgument, "git http-backend: bad path " + req.path_info);
  }
  if (req.project_root.empty() || req.project_root.front() != '/') {
    return make_error(Errc::InvalidArgument, "git http-backend: project root must be absolute");
  }
  for (const std::string* v : {&req.query_string, &req.content_type, &req.content_encoding,
                               &req.git_protocol, &req.remote_user, &req.remote_addr}) {
    if (!safe_header_value(*v)) {
      return make_error(Errc::InvalidArgument, "git http-backend: control character in request");
    }
  }
  BERTH_ASSIGN_OR_RETURN(std::string backend, http_backend_path());

  std::vector<std::string> extra = {
      "GIT_CONFIG_NOSYSTEM=1",
      "GIT_CONFIG_GLOBAL=/dev/null",
      "GATEWAY_INTERFACE=CGI/1.1",
      "SERVER_PROTOCOL=HTTP/1.1",
      "GIT_HTTP_EXPORT_ALL=1",
      "GIT_PROJECT_ROOT=" + req.project_root,
      // receive-pack's automatic gc runs in the foreground: a detached one would outlive the
      // request's process group (see reap_group()).
      "GIT_CONFIG_COUNT=2",
      "GIT_CONFIG_KEY_0=gc.autoDetach",
      "GIT_CONFIG_VALUE_0=false",
      "GIT_CONFIG_KEY_1=maintenance.autoDetach",
      "GIT_CONFIG_VALUE_1=false",
      "PATH_INFO=" + req.path_info,
      "REQUEST_METHOD=" + req.method,
      "QUERY_STRING=" + req.query_string,
  };
  if (!req.content_type.empty()) {
    extra.push_back("CONTENT_TYPE=" + req.content_type);
  }
  if (req.content_length) {
    extra.push_back("CONTENT_LENGTH=" + std::to_string(*req.content_length));
  }
  if (!req.content_encoding.empty()) {
    extra.push_back("HTTP_CONTENT_ENCODING=" + req.content_encoding);
  }
  if (!req.git_protocol.empty()) {
    extra.push_back("HTTP_GIT_PROTOCOL=" + req.git_protocol);
  }
  if (!req.remote_user.empty()) {
    extra.push_back("REMOTE_USER=" + req.remote_user);
  }
  if (!req.remote_addr.empty()) {
    extra.push_back("REMOTE_ADDR=" + req.remote_addr);
  }

  CgiResponse resp;
  CgiOutput out(resp, sink);
  RunSpec spec;
  spec.argv = {backend};
  spec.env = child_env(extra);
  spec.deadline = Clock::now() + req.timeout;
  if (req.read_body) {
    spec.input = req.read_body;
  }
  spec.on_stdout = [&](std::string_view chunk) { return out.feed(chunk); };
  spec.on_stderr = [&](std::string_view chunk) {
    if (resp.backend_stderr.size() < kMaxStderr) {
      resp.backend_stderr += chunk.substr(0, kMaxStderr - resp.backend_stderr.size());
    }
  };
  BERTH_ASSIGN_OR_RETURN(auto r, run_child(spec));
  if (!out.head_done()) {
    std::string m = "git http-backend exited (";
    m += std::to_string(r.exit_code);
    m += ") without a response";
    if (!resp.backend_stderr.empty()) {
      m += ": ";
      m += trim_line(resp.backend_stderr);
    }
    return make_error(Errc::Internal, std::move(m));
  }
  return resp;
}
}  // namespace berth::builder
