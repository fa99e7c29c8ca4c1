// SPDX-License-Identifier: Apache-2.0
// Build project specs: request parsing and validation (every error names its field), the API
// view without secret values, and the stored form with sealed secrets.
#include <algorithm>

#include "builder/build.h"
#include "builder/git.h"
#include "builder/service_project.h"
#include "common/url.h"
#include "oci/oci.h"

namespace berth::builder {

namespace {

Error bad(const std::string& field, const std::string& why) {
  std::string m = field;
  m += ": ";
  m += why;
  return Error(Errc::InvalidArgument, std::move(m));
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool has_control(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool known_field(const std::string& k) {
  for (const char* f :
       {"name", "git", "branch", "repository", "tag", "dockerfile", "context", "role", "build_args",
        "secret_build_args", "git_username", "git_password"}) {
    if (k == f) {
      return true;
    }
  }
  return false;
}

// A branch name or glob: git's ref-name rules (no spaces, ~ ^ : \ [, "..", "@{", control
// characters; no leading '-', '/' or '.'; no trailing '/', '.' or ".lock"), '*' and '?'
// allowed as wildcards.
Status validate_branch(const std::string& b) {
  if (b.empty()) {
    return bad("branch", "must not be empty (use * for every branch)");
  }
  if (b.size() > 255) {
    return bad("branch", "longer than 255 characters");
  }
  if (b.find(' ') != std::string::npos || b.find('\t') != std::string::npos) {
    return bad("branch", cat("'", b, "' contains a space"));
  }
  if (has_control(b) || b.find_first_of("~^:\\[") != std::string::npos) {
    return bad("branch", cat("'", b, "' contains a character git does not allow in branch names"));
  }
  if (b.find("..") != std::string::npos || b.find("@{") != std::string::npos ||
      b.find("//") != std::string::npos || b.find("/.") != std::string::npos) {
    return bad("branch", cat("'", b, "' is not a valid branch name"));
  }
  if (b.front() == '-' || b.front() == '/' || b.front() == '.' || b.back() == '/' ||
      b.back() == '.' || (b.size() >= 5 && b.compare(b.size() - 5, 5, ".lock") == 0) || b == "@") {
    return bad("branch", cat("'", b, "' is not a valid branch name"));
  }
  return ok();
}

// dockerfile and context: relative to the repository root, inside it.
Status validate_rel_path(const std::string& field, const std::string& p) {
  if (p.empty()) {
    return bad(field, "must not be empty");
  }
  if (p.front() == '/') {
    return bad(field, cat("'", p, "' must be relative to the repository root (no leading /)"));
  }
  if (has_control(p) || p.size() > 1024) {
    return bad(field, cat("'", p, "' is not a valid path"));
  }
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) {
      end = p.size();
    }
    if (p.compare(start, end - start, "..") == 0 && end - start == 2) {
      return bad(field, cat("'", p, "' must stay inside the repository (no ..)"));
    }
    start = end + 1;
  }
  return ok();
}

Status validate_role(const std::string& r) {
  if (r.empty()) {
    return ok();  // berth's own rights
  }
  bool good = r.size() <= 64 && is_lower_alnum(r[0]) && std::all_of(r.begin(), r.end(), [](char c) {
                return is_lower_alnum(c) || c == '.' || c == '_' || c == '-';
              });
  if (!good) {
    return bad("role", cat("'", r, "' is not a role name ([a-z0-9][a-z0-9._-]{0,63})"));
  }
  return ok();
}

bool valid_arg_name(const std::string& k) {
  if (k.empty() || k.size() > 256 || (k[0] >= '0' && k[0] <= '9')) {
    return false;
  }
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// name -> string; null removes a name (updates); merged over what is there.
Status parse_args(const std::string& field, const Json& v,
                  std::map<std::string, std::string>& out) {
  if (v.is_null()) {
    out.clear();
    return ok();
  }
  if (!v.is_object()) {
    return bad(field, "expected an object of NAME: \"value\"");
  }
  for (const auto& [k, val] : v.items()) {
    if (!valid_arg_name(k)) {
      return bad(field, cat("'", k, "' is not a valid build arg name ([A-Za-z_][A-Za-z0-9_]*)"));
    }
    if (val.is_null()) {
      out.erase(k);
    } else if (val.is_string()) {
      out[k] = val.get<std::string>();
    } else {
      return bad(cat(field, ".", k), "expected a string");
    }
  }
  return ok();
}

struct UrlParts {
  std::string prefix;    // "https://"
  std::string userinfo;  // "user:pw" (raw, encoded)
  std::string rest;      // "host/path"
  bool has_userinfo = false;
};

// Splits scheme://[userinfo@]host... ; has_userinfo false for scp-like and bare strings.
UrlParts split_url(const std::string& u) {
  UrlParts p;
  size_t scheme_end = u.find("://");
  if (scheme_end == std::string::npos) {
    p.rest = u;
    return p;
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = u.find('/', host_start);
  std::string authority = u.substr(
      host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
  size_t at = authority.rfind('@');
  p.prefix = u.substr(0, host_start);
  if (at == std::string::npos) {
    p.rest = u.substr(host_start);
    return p;
  }
  p.has_userinfo = true;
  p.userinfo = authority.substr(0, at);
  p.rest = u.substr(host_start + at + 1);
  return p;
}

std::string decoded(const std::string& s) {
  auto d = url::decode(s, false);
  return d ? *d : s;
}

// git: validated, and a password inside it moved to the credentials.
Status apply_git_url(const std::string& url, bool allow_file_remotes, bool username_given,
                     ProjectSpec& s) {
  if (url.empty()) {
    s.git_url.clear();
    return ok();
  }
  if (!is_supported_remote(url)) {
    return bad("git", cat("'", url_without_credentials(url),
                          "' is not a supported remote (use https://, http://, ssh://, "
                          "user@host:path",
                          allow_file_remotes ? " or file://)" : ")"));
  }
  if (is_file_remote(url) && !allow_file_remotes) {
    return bad("git", "file:// remotes are disabled (build.allow_file_remotes)");
  }
  UrlParts p = split_url(url);
  size_t colon = p.userinfo.find(':');
  bool http = p.prefix == "http://" || p.prefix == "https://";
  if (p.has_userinfo && colon == std::string::npos && http && !p.userinfo.empty()) {
    // https://TOKEN@host/...: the one part given is the secret (how tokens are usually
    // written into URLs), so it becomes the password and never shows or reaches a command
    // line; GitHub, GitLab and Gitea accept any user name with a token.
    s.git_password = decoded(p.userinfo);
    if (!username_given) {
      s.git_username = "x-access-token";
    }
    s.git_url = cat(p.prefix, p.rest);
    return ok();
  }
  if (!p.has_userinfo || colon == std::string::npos) {
    s.git_url = url;
    return ok();
  }
  s.git_password = decoded(p.userinfo.substr(colon + 1));
  std::string user = p.userinfo.substr(0, colon);
  if (http) {
    // Basic auth takes both from the fields; the URL keeps neither.
    if (!username_given && !user.empty()) {
      s.git_username = decoded(user);
    }
    s.git_url = cat(p.prefix, p.rest);
  } else {
    s.git_url = cat(p.prefix, user, user.empty() ? "" : "@", p.rest);  // ssh: user is address
  }
  return ok();
}

Json spec_json(const ProjectSpec& s) {
  Json j = Json::object();
  j["name"] = s.name;
  j["git"] = s.git_url;
  j["branch"] = s.branch;
  j["repository"] = s.repository;
  j["tag"] = s.tag;
  j["dockerfile"] = s.dockerfile;
  j["context"] = s.context;
  j["role"] = s.role;
  j["build_args"] = s.build_args;
  j["git_username"] = s.git_username;
  return j;
}

// The host part of a remote ("github.com:443", or "host" of user@host:path), to tell whether
// an update points the stored credentials somewhere else.
std::string remote_host(const std::string& url) {
  UrlParts p = split_url(url);
  if (p.prefix.empty()) {
    size_t at = url.find('@');
    size_t colon = url.find(':');
    return at != std::string::npos && colon != std::string::npos && at < colon
               ? url.substr(at + 1, colon - at - 1)
               : std::string();
  }
  return cat(p.prefix, p.rest.substr(0, p.rest.find('/')));
}

}  // namespace

Status validate_project_name(const std::string& name) {
  bool good =
      !name.empty() && name.size() <= 63 && is_lower_alnum(name[0]) &&
      std::all_of(name.begin(), name.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
  if (!good) {
    return bad("name", cat("'", name,
                           "' is not a valid project name: 1 to 63 lower-case letters, digits "
                           "and '-', starting with a letter or digit"));
  }
  return ok();
}

bool is_file_remote(const std::string& url) { return url.rfind("file://", 0) == 0; }

std::string url_without_credentials(const std::string& url) {
  UrlParts p = split_url(url);
  if (!p.has_userinfo) {
    return url;
  }
  size_t colon = p.userinfo.find(':');
  bool http = p.prefix == "http://" || p.prefix == "https://";
  if (http) {
    return cat(p.prefix, p.rest);
  }
  std::string user = colon == std::string::npos ? p.userinfo : p.userinfo.substr(0, colon);
  return cat(p.prefix, user, user.empty() ? "" : "@", p.rest);
}

std::vector<std::string> project_secrets(const ProjectSpec& spec) {
  std::vector<std::string> out;
  if (!spec.git_password.empty()) {
    out.push_back(spec.git_password);
  }
  for (const auto& [k, v] : spec.secret_build_args) {
    if (!v.empty()) {
      out.push_back(v);
    }
  }
  return out;
}

Result<ProjectSpec> project_from_request(const Json& body, ProjectSpec s, bool allow_file_remotes) {
  if (!body.is_object()) {
    return Error(Errc::InvalidArgument, "request body must be a JSON object");
  }
  const ProjectSpec base = s;
  // git_username first: a user in the git URL fills it only when the body does not.
  bool username_given = body.contains("git_username");
  for (const auto& [k, v] : body.items()) {
    bool is_map = k == "build_args" || k == "secret_build_args";
    if (!is_map && !v.is_string()) {
      return bad(k, known_field(k) ? "expected a string" : "unknown field");
    }
    if (k == "name") {
      const std::string& name = v.get_ref<const std::string&>();
      BERTH_TRY(validate_project_name(name));
      s.name = name;
    } else if (k == "git") {
      const std::string& u = v.get_ref<const std::string&>();
      std::string host_before = remote_host(s.git_url);
      BERTH_TRY(apply_git_url(u, allow_file_remotes, username_given, s));
      // Credentials were given for one host: a URL to another drops them (unless this
      // request gives new ones), so changing `git` cannot send them to a host of one's own.
      if (!base.git_url.empty() && remote_host(s.git_url) != host_before) {
        if (!body.contains("git_password") && s.git_password == base.git_password) {
          s.git_password.clear();
        }
        if (!username_given && s.git_username == base.git_username) {
          s.git_username.clear();
        }
      }
    } else if (k == "branch") {
      const std::string& b = v.get_ref<const std::string&>();
      BERTH_TRY(validate_branch(b));
      s.branch = b;
    } else if (k == "repository") {
      const std::string& r = v.get_ref<const std::string&>();
      if (auto st = oci::validate_repository_name(r); !st) {
        return bad(k, cat("'", r, "': ", st.error().message()));
      }
      s.repository = r;
    } else if (k == "tag") {
      const std::string& t = v.get_ref<const std::string&>();
      if (auto st = oci::validate_tag(t); !st) {
        return bad(k, cat("'", t, "': ", st.error().message()));
      }
      s.tag = t;
    } else if (k == "dockerfile" || k == "context") {
      const std::string& p = v.get_ref<const std::string&>();
      BERTH_TRY(validate_rel_path(k, p));
      (k == "dockerfile" ? s.dockerfile : s.context) = p;
    } else if (k == "role") {
      const std::string& r = v.get_ref<const std::string&>();
      BERTH_TRY(validate_role(r));
      s.role = r;
    } else if (k == "build_args") {
      BERTH_TRY(parse_args(k, v, s.build_args));
    } else if (k == "secret_build_args") {
      BERTH_TRY(parse_args(k, v, s.secret_build_args));
    } else if (k == "git_username") {
      const std::string& u = v.get_ref<const std::string&>();
      if (has_control(u) || u.find(':') != std::string::npos) {
        return bad(k, "must not contain ':' or control characters");
      }
      s.git_username = u;
    } else if (k == "git_password") {
      const std::string& p = v.get_ref<const std::string&>();
      if (has_control(p)) {
        return bad(k, "must not contain control characters");
      }
      // The view shows "****" for a set password; sending it back keeps the password.
      if (p != "****") {
        s.git_password = p;
      }
    } else {
      return bad(k, "unknown field");
    }
  }
  // A file:// remote kept from base is checked too (the setting may have changed).
  if (is_file_remote(s.git_url) && !allow_file_remotes) {
    return bad("git", "file:// remotes are disabled (build.allow_file_remotes)");
  }
  if (s.name.empty()) {
    return bad("name", "required");
  }
  if (s.repository.empty()) {
    return bad("repository", "required (the repository builds push to, like web/app)");
  }
  for (const auto& [k, v] : s.secret_build_args) {
    if (s.build_args.count(k) != 0) {
      return bad("secret_build_args", cat(k, " is also a plain build arg"));
    }
  }
  if (auto it = s.build_args.find("SOURCE_DATE_EPOCH"); it != s.build_args.end()) {
    const std::string& v = it->second;
    if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos) {
      return bad("build_args.SOURCE_DATE_EPOCH", cat("'", v, "' is not unix seconds"));
    }
  }
  return s;
}

Json project_to_view(const ProjectSpec& spec) {
  Json j = spec_json(spec);
  j["git"] = mask_secrets(spec.git_url, {url_password(spec.git_url)});
  Json names = Json::array();
  for (const auto& [k, v] : spec.secret_build_args) {
    names.push_back(k);
  }
  j["secret_build_args"] = names;
  j["git_password"] = spec.git_password.empty() ? "" : "****";
  j["image"] = cat(spec.repository, ":", spec.tag);
  j["owner"] = spec.owner;
  return j;
}

std::string project_to_store(const ProjectSpec& spec, const SecretBox& box) {
  Json j = spec_json(spec);
  Json sealed = Json::object();
  for (const auto& [k, v] : spec.secret_build_args) {
    sealed[k] = box.seal(v);
  }
  j["secret_build_args"] = sealed;
  j["git_password"] = spec.git_password.empty() ? std::string() : box.seal(spec.git_password);
  j["owner"] = spec.owner;
  return j.dump();
}

Result<ProjectSpec> project_from_store(const std::string& text, const SecretBox& box) {
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return Error(Errc::DataLoss, "a stored build project is not JSON");
  }
  Json secrets = j.value("secret_build_args", Json::object());
  std::string password = j.value("git_password", std::string());
  std::string owner = j.value("owner", std::string());
  j.erase("secret_build_args");
  j.erase("git_password");
  j.erase("owner");
  // Stored specs were validated when written; file:// is checked again when a build runs.
  auto spec = project_from_request(j, ProjectSpec{}, true);
  if (!spec) {
    return Error(Errc::DataLoss,
                 cat("a stored build project does not parse: ", spec.error().message()));
  }
  for (const auto& [k, v] : secrets.items()) {
    if (!v.is_string()) {
      return Error(Errc::DataLoss, "a stored secret build arg is not a string");
    }
    BERTH_ASSIGN_OR_RETURN(spec->secret_build_args[k], box.open(v.get<std::string>()));
  }
  if (!password.empty()) {
    BERTH_ASSIGN_OR_RETURN(spec->git_password, box.open(password));
  }
  spec->owner = owner;
  return spec;
}

}  // namespace berth::builder
