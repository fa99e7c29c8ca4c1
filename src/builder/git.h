// SPDX-License-Identifier: Apache-2.0
// Git sources for builds and berth's own git remote, driven through the git CLI.
//
// - fetch_commit() / resolve_ref(): shallow fetches of exactly one commit from an http(s),
//   ssh or file remote into a fresh work tree. Credentials travel in the child's environment
//   (GIT_CONFIG_* entries), never on a command line, and every line handed to the log callback
//   has them masked (mask_secrets()).
// - run_git_http_backend(): the CGI bridge to git's own `git http-backend` (smart HTTP), with
//   the request body and the response streamed through callbacks.
// - init_bare_repo() / list_refs(): the bare repositories behind the remote.
//
// Everything here blocks (it runs git as a child process and waits for it): call it from a
// worker thread, never on an I/O thread. Children are started with posix_spawn (no shell), in
// their own process group, with only the pipes they need open, and killed on timeout.
// Private to the build module (src/build).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace berth::builder {

/// Credentials for a remote. For http(s) remotes username/password become an
/// "Authorization: Basic" header (a GitHub token goes in password, with any username, e.g.
/// "x-access-token"); for ssh remotes ssh_key_file is the private key to use.
struct GitAuth {
  std::string username;
  std::string password;
  std::string ssh_key_file;      // ssh: path of a private key (mode 0600)
  std::string known_hosts_file;  // ssh: when set, strict host key checking against this file

  bool empty() const { return username.empty() && password.empty() && ssh_key_file.empty(); }
  /// The strings that must never appear in a log: the password, "user:password" and the
  /// Basic header value (mask_secrets() adds URL-encoded and base64 forms of each).
  std::vector<std::string> secrets() const;
};

/// Receives log text, one line at a time without the line end, secrets already masked.
using GitLogFn = std::function<void(std::string_view line)>;

/// Replaces every occurrence of each non-empty secret in text with "****": the secret as is,
/// percent-encoded (upper- and lower-case hex) and base64-encoded. Longer secrets are masked
/// first, so a secret that contains another is masked whole.
std::string mask_secrets(std::string_view text, const std::vector<std::string>& secrets);

/// The password of "scheme://user:password@host/..." (decoded), or "" when there is none.
std::string url_password(std::string_view url);

/// True for the remote URLs berth fetches: http://, https://, ssh://, scp-like
/// "user@host:path", and file://. Anything else (ext::, fd::, bare paths, a leading '-') is
/// refused before git runs.
bool is_supported_remote(std::string_view url);

/// True for a full commit id: 40 (SHA-1) or 64 (SHA-256) lower-case hex characters.
bool is_commit_id(std::string_view s);

struct FetchOptions {
  /// Whole-operation limit; the git child (and its helpers) are killed when it passes.
  std::chrono::seconds timeout{600};
  /// When the server refuses to send a commit by id (protocol v0/v1 servers without
  /// uploadpack.allowReachableSHA1InWant), fetch this branch and look for the commit in its
  /// history (depth 50, then the full history). Empty: all branches.
  std::string fallback_ref;
  /// Wire protocol; 2 lets servers answer a fetch by commit id. Tests set 0 to exercise the
  /// fallback.
  int protocol_version = 2;
  /// A bare repository kept between fetches of the same remote (created when missing). When
  /// set, objects are fetched into it, a commit it already holds is not fetched again, and
  /// dest_dir receives only the commit's files (no .git directory), checked out with a private
  /// index. Callers must not fetch into the same cache from two threads at once.
  std::string object_cache;
};

/// Fetches one commit of url into dest_dir (which must not exist or be empty) and checks it
/// out detached: `git init`, `git fetch --depth 1 <url> <commit_or_ref>`, `git checkout
/// --detach FETCH_HEAD` (with options.object_cache: fetch into the cache unless it has the
/// commit, then check the files out into dest_dir). commit_or_ref is a full commit id or a ref
/// ("main", "refs/heads/main", "v1.2"). Returns the full id of the checked-out commit. Commands and
/// git's output go to log, masked. Errors: InvalidArgument (URL or ref refused), NotFound (no such
/// ref or commit), Unauthenticated (the remote refused the credentials), DeadlineExceeded,
/// Unavailable (any other git failure, with git's last lines, masked).
Result<std::string> fetch_commit(const std::string& url, const std::string& commit_or_ref,
                                 const std::string& dest_dir, const GitAuth& auth,
                                 const GitLogFn& log, const FetchOptions& options = {});

/// The commit a ref points to at url, by `git ls-remote`. ref is "HEAD", a full ref
/// ("refs/heads/main") or a short name, tried as refs/heads/<ref> then refs/tags/<ref> (an
/// annotated tag resolves to its commit). NotFound when absent; errors as fetch_commit().
Result<std::string> resolve_ref(const std::string& url, const std::string& ref, const GitAuth& auth,
                                std::chrono::seconds timeout = std::chrono::seconds(60));

/// Creates a bare repository at path (parents included) with default branch main and
/// http.receivepack enabled, so run_git_http_backend() accepts pushes to it. An existing
/// repository is left as it is (its receivepack setting is enforced). Errors: Internal.
Status init_bare_repo(const std::string& path);

/// Every ref of a repository (bare or not): refname -> object id, from `git for-each-ref`.
/// Compare before and after a push to see what it changed. NotFound when path is not a repo.
Result<std::map<std::string, std::string>> list_refs(const std::string& repo_path);

/// One smart-HTTP request for `git http-backend`. The caller has authenticated and
/// authorized the principal (berth access keys, iam "build:GitPush"/"build:GitPull") and
/// maps its URL "/git/<name>.git/..." to project_root + path_info.
struct CgiRequest {
  std::string project_root;  // GIT_PROJECT_ROOT: the directory holding the bare repos
  std::string method;        // "GET" or "POST"
  std::string path_info;     // "/web/app.git/info/refs": starts with '/', no ".." segments
  std::string query_string;  // "service=git-upload-pack", without '?'
  std::string content_type;  // the request's Content-Type
  std::optional<uint64_t> content_length;  // unset for a chunked body (read until end)
  std::string content_encoding;            // "gzip" for git's upload-pack requests, or ""
  std::string git_protocol;                // the Git-Protocol header ("version=2"), or ""
  std::string remote_user;                 // the principal; enables receive-pack
  std::string remote_addr;                 // peer address, for git's reflog
  std::chrono::seconds timeout{600};

  /// Copies up to cap bytes of the request body into buf; returns the count, 0 at the end.
  /// Unset: an empty body.
  std::function<Result<size_t>(char* buf, size_t cap)> read_body;
};

/// The response head parsed from the CGI output, and what followed it.
struct CgiResponse {
  int status = 200;
  std::string reason = "OK";
  std::vector<std::pair<std::string, std::string>> headers;  // in order, "Status" removed
  uint64_t body_bytes = 0;
  std::string body;            // filled only when no on_body callback was given
  std::string backend_stderr;  // what git wrote to stderr (capped at 8 KiB)
};

/// Streams the response: on_head once with status and headers (body still empty), then
/// on_body for each chunk. An error returned by either aborts the backend.
struct CgiSink {
  std::function<Status(const CgiResponse& head)> on_head;
  std::function<Status(std::string_view chunk)> on_body;
};

/// Runs `git http-backend` (from `git --exec-path`) for one request with the CGI environment
/// (GIT_PROJECT_ROOT, GIT_HTTP_EXPORT_ALL, PATH_INFO, REQUEST_METHOD, QUERY_STRING,
/// CONTENT_TYPE, CONTENT_LENGTH, HTTP_CONTENT_ENCODING, HTTP_GIT_PROTOCOL, REMOTE_USER,
/// REMOTE_ADDR), feeding it the body and passing its output on as it comes, so a large push or
/// clone never sits in memory. Returns the response head (and, without sink.on_body, the
/// body). Errors: InvalidArgument (path_info, method or header refused), DeadlineExceeded,
/// Internal (the backend could not start, or wrote no valid CGI head); a sink error is
/// returned as is. A backend that exits non-zero after a valid head is not an error here:
/// the status it sent stands (its stderr is in backend_stderr).
Result<CgiResponse> run_git_http_backend(const CgiRequest& request, const CgiSink& sink = {});

}  // namespace berth::builder
