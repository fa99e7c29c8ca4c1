// SPDX-License-Identifier: Apache-2.0
#include "builder/git.h"

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

#include "builder/git_internal.h"
#include "common/url.h"

extern char** environ;

namespace berth::builder {

using namespace detail;

namespace {

namespace stdfs = std::filesystem;

constexpr size_t kTailLines = 20;
constexpr const char* kMask = "****";
// ---------------------------------------------------------------------------------------------
// Logging with masking

/// Splits child output into lines, masks them and passes them on; keeps the last lines for
/// error messages.
class MaskedLines {
 public:
  MaskedLines(const GitLogFn& log, const std::vector<std::string>& secrets)
      : log_(log), secrets_(secrets) {}

  void feed(std::string_view data) {
    for (char c : data) {
      if (c == '\n' || c == '\r') {
        emit();
      } else {
        buf_ += c;
        if (buf_.size() >= kChunk) {
          emit();
        }
      }
    }
  }
  void line(std::string_view text) {
    buf_ = std::string(text);
    emit();
  }
  void flush() { emit(); }
  /// The last lines, joined with "; ".
  std::string tail() const {
    std::string out;
    for (const auto& l : tail_) {
      if (!out.empty()) {
        out += "; ";
      }
      out += l;
    }
    return out;
  }
  std::string all_text() const {
    std::string out;
    for (const auto& l : tail_) {
      out += l;
      out += '\n';
    }
    return out;
  }
  void clear_tail() { tail_.clear(); }

 private:
  void emit() {
    if (buf_.empty()) {
      return;
    }
    std::string masked = mask_secrets(buf_, secrets_);
    buf_.clear();
    if (log_) {
      log_(masked);
    }
    tail_.push_back(std::move(masked));
    if (tail_.size() > kTailLines) {
      tail_.pop_front();
    }
  }

  const GitLogFn& log_;
  const std::vector<std::string>& secrets_;
  std::string buf_;
  std::deque<std::string> tail_;
};

// ---------------------------------------------------------------------------------------------
// git invocations

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

/// scheme://[userinfo@]host[:port] of an http(s) URL, userinfo removed, plus "/".
std::string http_origin(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return {};
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  std::string_view authority = url.substr(
      host_start, path_start == std::string_view::npos ? url.npos : path_start - host_start);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string out(url.substr(0, host_start));
  out += authority;
  out += '/';
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

/// The environment for git talking to a remote: no system or user config, no prompts, only
/// the transports berth supports, and the credentials as config entries that only this
/// child sees.
std::vector<std::string> git_env(const std::string& url, const GitAuth& auth) {
  std::vector<std::pair<std::string, std::string>> config;
  config.emplace_back("credential.helper", "");
  // Automatic gc and maintenance run in the foreground (inside our timeout), never as a
  // detached process that the group clean-up would kill.
  config.emplace_back("gc.autoDetach", "false");
  config.emplace_back("maintenance.autoDetach", "false");
  if (!auth.password.empty() || !auth.username.empty()) {
    if (starts_with(url, "http://") || starts_with(url, "https://")) {
      std::string header = "Authorization: Basic ";
      header += b64::encode(auth.username + ":" + auth.password);
      // Scoped to the remote's origin: git sends it to no other host.
      std::string key = "http.";
      key += http_origin(url);
      key += ".extraHeader";
      config.emplace_back(std::move(key), std::move(header));
    }
  }
  std::vector<std::string> extra = {
      "GIT_TERMINAL_PROMPT=0",       "GIT_CONFIG_NOSYSTEM=1",
      "GIT_CONFIG_GLOBAL=/dev/null", "GIT_ALLOW_PROTOCOL=http:https:ssh:file",
      "GIT_ASKPASS=/bin/false",      "SSH_ASKPASS=/bin/false",
  };
  std::string ssh = "ssh -o BatchMode=yes";
  if (!auth.ssh_key_file.empty()) {
    ssh += " -o IdentitiesOnly=yes -i ";
    ssh += shell_quote(auth.ssh_key_file);
  }
  if (!auth.known_hosts_file.empty()) {
    ssh += " -o StrictHostKeyChecking=yes -o UserKnownHostsFile=";
    ssh += shell_quote(auth.known_hosts_file);
  }
  extra.push_back("GIT_SSH_COMMAND=" + ssh);
  extra.push_back("GIT_CONFIG_COUNT=" + std::to_string(config.size()));
  for (size_t i = 0; i < config.size(); ++i) {
    extra.push_back("GIT_CONFIG_KEY_" + std::to_string(i) + "=" + config[i].first);
    extra.push_back("GIT_CONFIG_VALUE_" + std::to_string(i) + "=" + config[i].second);
  }
  return child_env(extra);
}

struct GitRun {
  int exit_code = -1;
  std::string out;  // stdout (when captured)
  std::string log_tail;
};

/// Runs git with args; stderr (and stdout unless capture_stdout) go to lines.
Result<GitRun> run_git(const std::vector<std::string>& args, const std::vector<std::string>& env,
                       Clock::time_point deadline, MaskedLines& lines, bool capture_stdout) {
  RunSpec spec;
  spec.argv.emplace_back("git");
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = env;
  spec.deadline = deadline;
  GitRun run;
  spec.on_stdout = [&](std::string_view chunk) -> Status {
    if (capture_stdout) {
      run.out += chunk;
    } else {
      lines.feed(chunk);
    }
    return ok();
  };
  spec.on_stderr = [&](std::string_view chunk) { lines.feed(chunk); };
  lines.clear_tail();
  auto r = run_child(spec);
  lines.flush();
  if (!r) {
    return std::move(r).error();
  }
  if (r->signal != 0) {
    // Killed from outside (a stopped build): no fallback fetch or next step may follow.
    return make_error(Errc::Cancelled, "git " + (args.empty() ? std::string() : args.back()) +
                                           " was killed by signal " + std::to_string(r->signal));
  }
  run.exit_code = r->exit_code;
  run.log_tail = lines.tail();
  return run;
}

/// Errc for a failed git talking to a remote, from what it said.
Errc classify(const std::string& text) {
  static constexpr const char* kAuth[] = {"Authentication failed",
                                          "could not read Username",
                                          "could not read Password",
                                          "terminal prompts disabled",
                                          "Permission denied",
                                          "401",
                                          "403"};
  static constexpr const char* kMissing[] = {"couldn't find remote ref",
                                             "not found",
                                             "does not appear to be a git repository",
                                             "not our ref",
                                             "unadvertised object",
                                             "no such ref"};
  for (const char* s : kAuth) {
    if (text.find(s) != std::string::npos) {
      return Errc::Unauthenticated;
    }
  }
  for (const char* s : kMissing) {
    if (text.find(s) != std::string::npos) {
      return Errc::NotFound;
    }
  }
  return Errc::Unavailable;
}

Error git_failed(const std::string& what, const GitRun& run) {
  std::string m = what;
  m += " failed (exit ";
  m += std::to_string(run.exit_code);
  m += ")";
  if (!run.log_tail.empty()) {
    m += ": ";
    m += run.log_tail;
  }
  return make_error(classify(run.log_tail), std::move(m));
}

/// True for ref names git would accept that cannot be taken for an option or a refspec.
bool is_safe_ref(std::string_view ref) {
  if (ref.empty() || ref.size() > 1024 || ref.front() == '-' || ref.front() == '/' ||
      ref.back() == '/' || ref.back() == '.' || ref.find("..") != ref.npos ||
      ref.find("@{") != ref.npos || ref.find("//") != ref.npos ||
      (ref.size() >= 5 && ref.substr(ref.size() - 5) == ".lock")) {
    return false;
  }
  for (char c : ref) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' ||
        c == '*' || c == '[' || c == '\\') {
      return false;
    }
  }
  return true;
}

Status prepare_dest(const std::string& dest) {
  std::error_code ec;
  if (stdfs::exists(dest, ec)) {
    if (!stdfs::is_directory(dest, ec) || !stdfs::is_empty(dest, ec)) {
      return make_error(Errc::FailedPrecondition, dest + ": exists and is not an empty directory");
    }
    return ok();
  }
  stdfs::create_directories(dest, ec);
  if (ec) {
    return make_error(Errc::Internal, dest + ": " + ec.message());
  }
  return ok();
}

}  // namespace

std::string detail::trim_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

namespace {

void log_command(MaskedLines& lines, const std::vector<std::string>& args) {
  std::string cmd = "$ git";
  for (const auto& a : args) {
    cmd += ' ';
    cmd += a;
  }
  lines.line(cmd);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public helpers

std::vector<std::string> GitAuth::secrets() const {
  std::vector<std::string> out;
  if (!password.empty()) {
    out.push_back(password);
    std::string pair = username;
    pair += ':';
    pair += password;
    out.push_back(b64::encode(pair));
    out.push_back(std::move(pair));
  }
  return out;
}

std::string mask_secrets(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<std::string> forms;
  for (const auto& s : secrets) {
    if (s.empty()) {
      continue;
    }
    forms.push_back(s);
    std::string enc;
    std::string enc_lower;
    static constexpr char kUpper[] = "0123456789ABCDEF";
    static constexpr char kLower[] = "0123456789abcdef";
    for (unsigned char c : s) {
      if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
        enc += static_cast<char>(c);
        enc_lower += static_cast<char>(c);
      } else {
        enc += '%';
        enc += kUpper[c >> 4];
        enc += kUpper[c & 0xf];
        enc_lower += '%';
        enc_lower += kLower[c >> 4];
        enc_lower += kLower[c & 0xf];
      }
    }
    forms.push_back(std::move(enc));
    forms.push_back(std::move(enc_lower));
    std::string b = b64::encode(s);
    // Inside a longer base64 text the padding of the secret's own encoding is absent.
    while (!b.empty() && b.back() == '=') {
      b.pop_back();
    }
    if (!b.empty()) {
      forms.push_back(std::move(b));
    }
  }
  std::sort(forms.begin(), forms.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  forms.erase(std::unique(forms.begin(), forms.end()), forms.end());
  std::string out(text);
  for (const auto& f : forms) {
    size_t pos = 0;
    while ((pos = out.find(f, pos)) != std::string::npos) {
      out.replace(pos, f.size(), kMask);
      pos += std::strlen(kMask);
    }
  }
  return out;
}

std::string url_password(std::string_view u) {
  size_t scheme_end = u.find("://");
  if (scheme_end == std::string_view::npos) {
    return {};
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = u.find('/', host_start);
  std::string_view authority =
      u.substr(host_start, path_start == u.npos ? u.npos : path_start - host_start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return {};
  }
  std::string_view userinfo = authority.substr(0, at);
  size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) {
    return {};
  }
  std::string_view pw = userinfo.substr(colon + 1);
  auto decoded = url::decode(pw, false);
  return decoded ? *decoded : std::string(pw);
}

bool is_supported_remote(std::string_view u) {
  if (u.empty() || u.front() == '-' || u.size() > 4096) {
    return false;
  }
  for (char c : u) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return false;
    }
  }
  for (std::string_view scheme : {"http://", "https://", "ssh://", "file://"}) {
    if (starts_with(u, scheme)) {
      return u.size() > scheme.size();
    }
  }
  if (u.find("::") != u.npos || u.find("://") != u.npos) {
    return false;  // ext::, fd::, git://, and anything else with a scheme
  }
  // scp-like user@host:path (git reads "host:path" with a '/' before the ':' as a local path).
  size_t colon = u.find(':');
  size_t slash = u.find('/');
  size_t at = u.find('@');
  return at != u.npos && colon != u.npos && at < colon && (slash == u.npos || colon < slash) &&
         colon + 1 < u.size();
}

bool is_commit_id(std::string_view s) {
  if (s.size() != 40 && s.size() != 64) {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::string> fetch_commit(const std::string& url, const std::string& commit_or_ref,
                                 const std::string& dest_dir, const GitAuth& auth,
                                 const GitLogFn& log, const FetchOptions& options) {
  std::vector<std::string> secrets = auth.secrets();
  if (std::string pw = url_password(url); !pw.empty()) {
    secrets.push_back(pw);
  }
  const std::string shown_url = mask_secrets(url, secrets);
  if (!is_supported_remote(url)) {
    return make_error(Errc::InvalidArgument, "git remote " + shown_url +
                                                 ": only http(s)://, ssh://, user@host:path and "
                                                 "file:// remotes are supported");
  }
  const bool by_id = is_commit_id(commit_or_ref);
  if (!by_id && !is_safe_ref(commit_or_ref)) {
    return make_error(Errc::InvalidArgument,
                      "\"" + commit_or_ref + "\" is neither a full commit id nor a ref name");
  }
  if (!options.fallback_ref.empty() && !is_safe_ref(options.fallback_ref)) {
    return make_error(Errc::InvalidArgument, "\"" + options.fallback_ref + "\" is not a ref name");
  }
  BERTH_TRY(prepare_dest(dest_dir));

  const auto deadline = Clock::now() + options.timeout;
  const auto env = git_env(url, auth);
  MaskedLines lines(log, secrets);
  const std::string proto = "protocol.version=" + std::to_string(options.protocol_version);

  auto step = [&](const std::vector<std::string>& args, bool capture) -> Result<GitRun> {
    log_command(lines, args);
    return run_git(args, env, deadline, lines, capture);
  };

  // Where objects go: dest_dir's own .git, or the shared bare cache.
  const bool cached = !options.object_cache.empty();
  const std::string git_dir = cached ? options.object_cache : dest_dir + "/.git";
  std::vector<std::string> repo = {"--git-dir", git_dir};
  if (!cached || !stdfs::exists(git_dir + "/HEAD")) {
    std::vector<std::string> args = {"init", "-q", "--template="};
    if (cached) {
      args.emplace_back("--bare");
    }
    args.push_back(cached ? git_dir : dest_dir);
    BERTH_ASSIGN_OR_RETURN(auto r, step(args, false));
    if (r.exit_code != 0) {
      return git_failed("git init", r);
    }
  }
  auto fetch = [&](const std::vector<std::string>& extra, const std::string& spec) {
    std::vector<std::string> args = repo;
    args.insert(args.end(), {"-c", proto, "fetch", "--no-tags", "--no-recurse-submodules"});
    args.insert(args.end(), extra.begin(), extra.end());
    args.emplace_back("--");
    args.push_back(url);
    args.push_back(spec);
    // The logged command shows the URL masked; git itself gets the real one.
    std::vector<std::string> shown = args;
    shown[shown.size() - 2] = shown_url;
    lines.line([&] {
      std::string c = "$ git";
      for (const auto& a : shown) {
        c += ' ';
        c += a;
      }
      return c;
    }());
    return run_git(args, env, deadline, lines, false);
  };
  auto has_commit = [&](const std::string& id) -> Result<bool> {
    std::string obj = id;
    obj += "^{commit}";
    std::vector<std::string> args = repo;
    args.insert(args.end(), {"rev-parse", "-q", "--verify", obj});  // quiet when absent
    BERTH_ASSIGN_OR_RETURN(auto r, run_git(args, env, deadline, lines, true));
    return r.exit_code == 0;
  };

  std::string checkout = "FETCH_HEAD";
  bool have = false;
  if (cached && by_id) {
    BERTH_ASSIGN_OR_RETURN(have, has_commit(commit_or_ref));
    if (have) {
      lines.line("commit " + commit_or_ref + " is already fetched");
      checkout = commit_or_ref;
    }
  }
  if (!have) {
    BERTH_ASSIGN_OR_RETURN(auto first, fetch({"--depth", "1"}, commit_or_ref));
    if (first.exit_code != 0) {
      Errc code = classify(first.log_tail);
      if (!by_id || code == Errc::Unauthenticated) {
        return git_failed("git fetch " + shown_url + " " + commit_or_ref, first);
      }
      // The server would not send a commit by id: fetch branch history and look for it.
      std::string spec = "+refs/heads/*:refs/remotes/origin/*";
      if (!options.fallback_ref.empty()) {
        std::string ref = options.fallback_ref;
        if (!starts_with(ref, "refs/")) {
          ref = "refs/heads/" + ref;
        }
        spec = ref;
      }
      lines.line("server refused to send commit " + commit_or_ref + " by id; fetching " + spec);
      BERTH_ASSIGN_OR_RETURN(auto second, fetch({"--depth", "50"}, spec));
      if (second.exit_code != 0) {
        return git_failed("git fetch " + shown_url + " " + spec, second);
      }
      BERTH_ASSIGN_OR_RETURN(bool found, has_commit(commit_or_ref));
      if (!found && stdfs::exists(git_dir + "/shallow")) {
        BERTH_ASSIGN_OR_RETURN(auto third, fetch({"--unshallow"}, spec));
        if (third.exit_code != 0) {
          return git_failed("git fetch --unshallow " + shown_url + " " + spec, third);
        }
        BERTH_ASSIGN_OR_RETURN(found, has_commit(commit_or_ref));
      }
      if (!found) {
        return make_error(Errc::NotFound,
                          "commit " + commit_or_ref + " not found in " + spec + " of " + shown_url);
      }
      checkout = commit_or_ref;
    }
  }
  // The commit id first: FETCH_HEAD is per repository, and the cache's is rewritten by the
  // next fetch.
  std::vector<std::string> args = repo;
  std::string target = checkout + "^{commit}";
  args.insert(args.end(), {"rev-parse", "--verify", target});
  BERTH_ASSIGN_OR_RETURN(auto head, run_git(args, env, deadline, lines, true));
  std::string id = trim_line(head.out);
  if (head.exit_code != 0 || !is_commit_id(id)) {
    return git_failed("git rev-parse " + checkout, head);
  }
  if (by_id && id != commit_or_ref) {
    return make_error(Errc::Internal, "fetched " + id + " instead of " + commit_or_ref);
  }
  if (cached) {
    // Only the files: a private index beside dest_dir, so the cache itself never changes.
    std::string index = dest_dir + ".index";
    std::vector<std::string> co_env = env;
    co_env.push_back("GIT_INDEX_FILE=" + index);
    std::vector<std::string> co = {"--git-dir", git_dir, "--work-tree", dest_dir, "checkout", "-q",
                                   "-f",        id,      "--",          "."};
    log_command(lines, co);
    BERTH_ASSIGN_OR_RETURN(auto r, run_git(co, co_env, deadline, lines, false));
    std::error_code ec;
    stdfs::remove(index, ec);
    if (r.exit_code != 0) {
      return git_failed("git checkout", r);
    }
  } else {
    std::vector<std::string> co = {"-C",       dest_dir, "-c",       "advice.detachedHead=false",
                                   "checkout", "-q",     "--detach", id};
    BERTH_ASSIGN_OR_RETURN(auto r, step(co, false));
    if (r.exit_code != 0) {
      return git_failed("git checkout", r);
    }
  }
  lines.line("checked out " + id);
  return id;
}

Result<std::string> resolve_ref(const std::string& url, const std::string& ref, const GitAuth& auth,
                                std::chrono::seconds timeout) {
  std::vector<std::string> secrets = auth.secrets();
  if (std::string pw = url_password(url); !pw.empty()) {
    secrets.push_back(pw);
  }
  const std::string shown_url = mask_secrets(url, secrets);
  if (!is_supported_remote(url)) {
    return make_error(Errc::InvalidArgument, "git remote " + shown_url + " is not supported");
  }
  if (ref != "HEAD" && !is_safe_ref(ref)) {
    return make_error(Errc::InvalidArgument, "\"" + ref + "\" is not a ref name");
  }
  std::vector<std::string> candidates;
  if (ref == "HEAD" || starts_with(ref, "refs/")) {
    candidates = {ref + "^{}", ref};
  } else {
    candidates = {"refs/heads/" + ref, "refs/tags/" + ref + "^{}", "refs/tags/" + ref};
  }
  std::vector<std::string> args = {"-c", "protocol.version=2", "ls-remote", "--", url};
  // ls-remote matches patterns against the whole tail, so the peeled "^{}" lines of
  // annotated tags need their own patterns.
  args.insert(args.end(), candidates.begin(), candidates.end());
  GitLogFn none;
  MaskedLines lines(none, secrets);
  BERTH_ASSIGN_OR_RETURN(auto r,
                         run_git(args, git_env(url, auth), Clock::now() + timeout, lines, true));
  if (r.exit_code != 0) {
    return git_failed("git ls-remote " + shown_url, r);
  }
  std::map<std::string, std::string> found;
  size_t pos = 0;
  while (pos < r.out.size()) {
    size_t end = r.out.find('\n', pos);
    std::string line = r.out.substr(pos, end == std::string::npos ? end : end - pos);
    pos = end == std::string::npos ? r.out.size() : end + 1;
    size_t tab = line.find('\t');
    if (tab != std::string::npos) {
      found[line.substr(tab + 1)] = line.substr(0, tab);
    }
  }
  for (const auto& c : candidates) {
    auto it = found.find(c);
    if (it != found.end() && is_commit_id(it->second)) {
      return it->second;
    }
  }
  return make_error(Errc::NotFound, "ref " + ref + " not found at " + shown_url);
}

Status init_bare_repo(const std::string& path) {
  std::error_code ec;
  stdfs::create_directories(stdfs::path(path).parent_path(), ec);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  const auto env = child_env({"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"});
  GitLogFn none;
  std::vector<std::string> no_secrets;
  MaskedLines lines(none, no_secrets);
  if (!stdfs::exists(stdfs::path(path) / "HEAD", ec)) {
    std::vector<std::string> args = {"init", "-q", "--bare", "--template=", "--initial-branch=main",
                                     path};
    BERTH_ASSIGN_OR_RETURN(auto r, run_git(args, env, deadline, lines, false));
    if (r.exit_code != 0) {
      auto e = git_failed("git init --bare " + path, r);
      return make_error(Errc::Internal, e.message());
    }
  }
  std::vector<std::string> args = {"-C", path, "config", "http.receivepack", "true"};
  BERTH_ASSIGN_OR_RETURN(auto r, run_git(args, env, deadline, lines, false));
  if (r.exit_code != 0) {
    auto e = git_failed("git config http.receivepack in " + path, r);
    return make_error(Errc::Internal, e.message());
  }
  return ok();
}

Result<std::map<std::string, std::string>> list_refs(const std::string& repo_path) {
  std::error_code ec;
  if (!stdfs::is_directory(repo_path, ec)) {
    return make_error(Errc::NotFound, repo_path + ": no such repository");
  }
  const auto env =
      child_env({"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                 "GIT_CEILING_DIRECTORIES=" + stdfs::path(repo_path).parent_path().string()});
  GitLogFn none;
  std::vector<std::string> no_secrets;
  MaskedLines lines(none, no_secrets);
  std::vector<std::string> args = {"-C", repo_path, "for-each-ref",
                                   "--format=%(objectname) %(refname)"};
  BERTH_ASSIGN_OR_RETURN(auto r,
                         run_git(args, env, Clock::now() + std::chrono::seconds(60), lines, true));
  if (r.exit_code != 0) {
    if (r.log_tail.find("not a git repository") != std::string::npos) {
      return make_error(Errc::NotFound, repo_path + ": not a git repository");
    }
    auto e = git_failed("git for-each-ref in " + repo_path, r);
    return make_error(Errc::Internal, e.message());
  }
  std::map<std::string, std::string> refs;
  size_t pos = 0;
  while (pos < r.out.size()) {
    size_t end = r.out.find('\n', pos);
    std::string line = r.out.substr(pos, end == std::string::npos ? end : end - pos);
    pos = end == std::string::npos ? r.out.size() : end + 1;
    size_t sp = line.find(' ');
    if (sp != std::string::npos) {
      refs[line.substr(sp + 1)] = line.substr(0, sp);
    }
  }
  return refs;
}

Result<std::string> detail::http_backend_path() {
  static std::mutex mu;
  static std::string cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached.empty()) {
    return cached;
  }
  GitLogFn none;
  std::vector<std::string> no_secrets;
  MaskedLines lines(none, no_secrets);
  std::vector<std::string> args = {"--exec-path"};
  BERTH_ASSIGN_OR_RETURN(
      auto r, run_git(args, child_env({}), Clock::now() + std::chrono::seconds(30), lines, true));
  std::string dir = trim_line(r.out);
  if (r.exit_code != 0 || dir.empty()) {
    return make_error(Errc::Internal, "git --exec-path failed: " + r.log_tail);
  }
  std::string path = dir + "/git-http-backend";
  if (::access(path.c_str(), X_OK) != 0) {
    return make_error(Errc::Internal, path + ": not executable; install git's http-backend");
  }
  cached = path;
  return cached;
}

}  // namespace berth::builder
