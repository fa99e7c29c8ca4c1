// SPDX-License-Identifier: Apache-2.0
// Service specs: request parsing and validation, the stored form with sealed secrets, the API
// view, semantic versions.
#include <cmath>

#include "common/duration.h"
#include "common/fs.h"
#include "common/url.h"
#include "deploy/deploy.h"
#include "oci/oci.h"
#include "runtime/runtime.h"

namespace berth::deploy {

namespace {

Error bad(const std::string& field, const std::string& why) {
  return Error(Errc::InvalidArgument, field + ": " + why);
}

// A number of seconds, or a duration string (common/duration.h).
Result<std::chrono::milliseconds> parse_ms(const std::string& field, const Json& v) {
  if (v.is_number_integer()) {
    int64_t n = v.get<int64_t>();
    if (n < 0) {
      return bad(field, "must not be negative");
    }
    return std::chrono::milliseconds(n * 1000);
  }
  if (!v.is_string()) {
    return bad(field, "expected a duration like \"5s\"");
  }
  auto d = parse_duration(v.get<std::string>());
  if (!d) {
    return bad(field, d.error().message());
  }
  return *d;
}

std::string ms_string(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

// "256M", "1G", "512Mi", "1048576" -> bytes.
Result<int64_t> parse_bytes(const std::string& field, const Json& v) {
  if (v.is_number_integer()) {
    return v.get<int64_t>();
  }
  if (!v.is_string()) {
    return bad(field, "expected a size like \"256M\"");
  }
  std::string s = v.get<std::string>();
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    ++i;
  }
  if (i == 0 || i > 12) {
    return bad(field, "expected a size like \"256M\", got '" + s + "'");
  }
  int64_t n = std::stoll(s.substr(0, i));
  std::string unit = s.substr(i);
  if (!unit.empty() && unit.back() == 'i') {
    unit.pop_back();
  }
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b') && unit.size() > 1) {
    unit.pop_back();
  }
  int64_t mult = 1;
  if (unit == "k" || unit == "K") {
    mult = 1024;
  } else if (unit == "m" || unit == "M") {
    mult = 1024 * 1024;
  } else if (unit == "g" || unit == "G") {
    mult = 1024LL * 1024 * 1024;
  } else if (!unit.empty() && unit != "b" && unit != "B") {
    return bad(field, "unknown unit in '" + s + "' (use K, M or G)");
  }
  return n * mult;
}

Result<int> parse_int(const std::string& field, const Json& v, int lo, int hi) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    return bad(field,
               "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return static_cast<int>(v.get<int64_t>());
}

Status parse_env(const std::string& field, const Json& v, std::map<std::string, std::string>& out) {
  if (!v.is_object()) {
    return bad(field, "expected an object of NAME: value");
  }
  for (const auto& [k, val] : v.items()) {
    if (k.empty() || k.find('=') != std::string::npos ||
        std::isdigit(static_cast<unsigned char>(k[0])) ||
        k.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
            std::string::npos) {
      return bad(field, "'" + k + "' is not a valid variable name");
    }
    if (k == "PORT") {
      return bad(field, "PORT is set by berth from the service's port");
    }
    if (val.is_null()) {
      out.erase(k);  // null removes the variable (updates)
    } else if (val.is_string()) {
      out[k] = val.get<std::string>();
    } else {
      return bad(field + "." + k, "expected a string");
    }
  }
  return ok();
}

Status parse_health(const Json& v, HealthCheck& h) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s == "tcp") {
      h.type = "tcp";
      h.path.clear();
      return ok();
    }
    if (s.rfind("http:", 0) == 0 && s.size() > 5 && s[5] == '/') {
      h.type = "http";
      h.path = s.substr(5);
      if (h.path.find_first_of(" \r\n") != std::string::npos) {
        return bad("health_check", "the path must not contain spaces");
      }
      return ok();
    }
    return bad("health_check", "expected tcp or http:/PATH, got '" + s + "'");
  }
  if (!v.is_object()) {
    return bad("health_check", "expected tcp, http:/PATH or an object");
  }
  for (const auto& [k, val] : v.items()) {
    if (k == "type") {
      std::string t = val.is_string() ? val.get<std::string>() : "";
      if (t != "tcp" && t != "http") {
        return bad("health_check.type", "expected tcp or http");
      }
      h.type = t;
    } else if (k == "path") {
      if (!val.is_string() || val.get<std::string>().empty() || val.get<std::string>()[0] != '/') {
        return bad("health_check.path", "expected a path starting with /");
      }
      h.path = val.get<std::string>();
    } else if (k == "interval" || k == "timeout") {
      BERTH_ASSIGN_OR_RETURN(auto d, parse_ms("health_check." + k, val));
      if (d.count() < 100) {
        return bad("health_check." + k, "must be at least 100ms");
      }
      (k == "interval" ? h.interval : h.timeout) = d;
    } else if (k == "healthy_threshold" || k == "unhealthy_threshold") {
      BERTH_ASSIGN_OR_RETURN(int n, parse_int("health_check." + k, val, 1, 100));
      (k == "healthy_threshold" ? h.healthy_threshold : h.unhealthy_threshold) = n;
    } else {
      return bad("health_check." + k, "unknown field");
    }
  }
  if (h.type == "http" && h.path.empty()) {
    h.path = "/";
  }
  return ok();
}

Status validate_image(const std::string& image) {
  auto at = image.find('@');
  std::string repo;
  if (at != std::string::npos) {
    repo = image.substr(0, at);
    if (!oci::Digest::parse(image.substr(at + 1))) {
      return bad("image", "'" + image + "' has an invalid digest");
    }
  } else {
    auto colon = image.rfind(':');
    auto slash = image.rfind('/');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
      repo = image;
    } else {
      repo = image.substr(0, colon);
      BERTH_TRY(oci::validate_tag(image.substr(colon + 1)));
    }
  }
  auto v = oci::validate_repository_name(repo);
  if (!v) {
    return bad("image", "'" + image + "': " + v.error().message());
  }
  return ok();
}

}  // namespace

std::string ServiceSpec::repository() const {
  auto at = image.find('@');
  if (at != std::string::npos) {
    return image.substr(0, at);
  }
  auto colon = image.rfind(':');
  auto slash = image.rfind('/');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return image;
  }
  return image.substr(0, colon);
}

std::string ServiceSpec::tag() const {
  if (image.find('@') != std::string::npos) {
    return "";
  }
  std::string repo = repository();
  return repo.size() < image.size() ? image.substr(repo.size() + 1) : "latest";
}

runtime::Confinement confinement_of(const ServiceSpec& spec) {
  runtime::Confinement c;
  c.seccomp = spec.seccomp != "unconfined";
  c.pids_limit = spec.pids_limit;
  c.read_only_rootfs = spec.read_only;
  return c;
}

Status validate_service_name(const std::string& name) {
  if (name.empty() || name.size() > 40 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos ||
      name.front() == '-' || name.back() == '-') {
    return Error(Errc::InvalidArgument,
                 "invalid service name '" + name +
                     "': use 1 to 40 lower-case letters, digits and '-', not at either end");
  }
  return ok();
}

Result<ServiceSpec> spec_from_request(const Json& body, ServiceSpec s) {
  if (!body.is_object()) {
    return Error(Errc::InvalidArgument, "request body must be a JSON object");
  }
  for (const auto& [k, v] : body.items()) {
    if (k == "name") {
      continue;  // the caller's
    } else if (k == "image") {
      if (!v.is_string()) {
        return bad(k, "expected a string like web/app:latest");
      }
      BERTH_TRY(validate_image(v.get<std::string>()));
      s.image = v.get<std::string>();
      if (s.image.find('@') == std::string::npos && s.repository() == s.image) {
        s.image += ":latest";
      }
    } else if (k == "port") {
      BERTH_ASSIGN_OR_RETURN(int p, parse_int(k, v, 1, 65535));
      s.port = static_cast<uint16_t>(p);
    } else if (k == "env") {
      BERTH_TRY(parse_env(k, v, s.env));
    } else if (k == "secret_env") {
      BERTH_TRY(parse_env(k, v, s.secret_env));
    } else if (k == "cpus" || k == "cpu") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1024 ||
          std::isnan(v.get<double>())) {
        return bad(k, "expected a number of CPUs like 0.5");
      }
      s.cpus = v.get<double>();
    } else if (k == "memory") {
      BERTH_ASSIGN_OR_RETURN(int64_t b, parse_bytes(k, v));
      if (b != 0 && b < 4 * 1024 * 1024) {
        return bad(k, "must be at least 4M (or 0 for no limit)");
      }
      s.memory_bytes = b;
    } else if (k == "min_instances") {
      BERTH_ASSIGN_OR_RETURN(s.min_instances, parse_int(k, v, 0, 100));
    } else if (k == "max_instances") {
      BERTH_ASSIGN_OR_RETURN(s.max_instances, parse_int(k, v, 1, 100));
    } else if (k == "concurrency") {
      BERTH_ASSIGN_OR_RETURN(s.concurrency, parse_int(k, v, 1, 100000));
    } else if (k == "health_check") {
      BERTH_TRY(parse_health(v, s.health));
    } else if (k == "role") {
      if (!v.is_string()) {
        return bad(k, "expected a role name");
      }
      s.role = v.get<std::string>();
    } else if (k == "auto_deploy") {
      if (!v.is_boolean()) {
        return bad(k, "expected true or false");
      }
      s.auto_deploy = v.get<bool>();
    } else if (k == "auto_deploy_tags") {
      if (!v.is_string()) {
        return bad(k, "expected a tag pattern like 'v*'");
      }
      s.auto_deploy_tags = v.get<std::string>();
    } else if (k == "seccomp") {
      if (!v.is_string() ||
          (v.get<std::string>() != "default" && v.get<std::string>() != "unconfined")) {
        return bad(k, "expected \"default\" or \"unconfined\"");
      }
      s.seccomp = v.get<std::string>();
    } else if (k == "pids_limit") {
      BERTH_ASSIGN_OR_RETURN(int n, parse_int(k, v, 0, 4194304));
      if (n != 0 && n < 16) {
        return bad(k, "must be at least 16 (or 0 for no limit)");
      }
      s.pids_limit = n;
    } else if (k == "read_only") {
      if (!v.is_boolean()) {
        return bad(k, "expected true or false");
      }
      s.read_only = v.get<bool>();
    } else if (k == "protocol") {
      if (!v.is_string() || (v.get<std::string>() != "http1" && v.get<std::string>() != "h2c")) {
        return bad(k, "expected \"http1\" or \"h2c\"");
      }
      s.protocol = v.get<std::string>();
    } else if (k == "deploy_timeout" || k == "drain_timeout" || k == "scale_in_cooldown") {
      BERTH_ASSIGN_OR_RETURN(auto d, parse_ms(k, v));
      (k == "deploy_timeout" ? s.deploy_timeout
                             : (k == "drain_timeout" ? s.drain_timeout : s.scale_in_cooldown)) = d;
    } else {
      return bad(k, "unknown field");
    }
  }
  if (s.image.empty()) {
    return bad("image", "required (a repository and tag like web/app:latest)");
  }
  if (s.min_instances > s.max_instances) {
    return bad("min_instances",
               "must not exceed max_instances (" + std::to_string(s.max_instances) + ")");
  }
  if (!s.auto_deploy_tags.empty() && s.tag().empty()) {
    return bad("auto_deploy_tags", "needs an image given by repository, not by digest");
  }
  if (s.auto_deploy && s.tag().empty()) {
    return bad("auto_deploy", "follows a tag; the image is pinned by digest");
  }
  if (s.deploy_timeout.count() < 1000) {
    return bad("deploy_timeout", "must be at least 1s");
  }
  for (const auto& [k, v] : s.secret_env) {
    if (s.env.count(k) != 0) {
      return bad("secret_env", k + " is also a plain env variable");
    }
  }
  return s;
}

namespace {

Json spec_json(const ServiceSpec& s) {
  Json health = Json::object();
  health["type"] = s.health.type;
  if (!s.health.path.empty()) {
    health["path"] = s.health.path;
  }
  health["interval"] = ms_string(s.health.interval);
  health["timeout"] = ms_string(s.health.timeout);
  health["healthy_threshold"] = s.health.healthy_threshold;
  health["unhealthy_threshold"] = s.health.unhealthy_threshold;
  Json j = Json::object();
  j["image"] = s.image;
  j["port"] = s.port;
  j["env"] = s.env;
  j["cpus"] = s.cpus;
  j["memory"] = s.memory_bytes;
  j["min_instances"] = s.min_instances;
  j["max_instances"] = s.max_instances;
  j["concurrency"] = s.concurrency;
  j["health_check"] = health;
  j["role"] = s.role;
  j["auto_deploy"] = s.auto_deploy;
  j["auto_deploy_tags"] = s.auto_deploy_tags;
  j["deploy_timeout"] = ms_string(s.deploy_timeout);
  j["drain_timeout"] = ms_string(s.drain_timeout);
  j["scale_in_cooldown"] = ms_string(s.scale_in_cooldown);
  j["seccomp"] = s.seccomp;
  j["pids_limit"] = s.pids_limit;
  j["read_only"] = s.read_only;
  j["protocol"] = s.protocol;
  return j;
}

}  // namespace

std::string spec_to_store(const ServiceSpec& spec, const SecretBox& box) {
  Json j = spec_json(spec);
  Json sealed = Json::object();
  for (const auto& [k, v] : spec.secret_env) {
    sealed[k] = box.seal(v);
  }
  j["secret_env"] = sealed;
  return j.dump();
}

Result<ServiceSpec> spec_from_store(const std::string& text, const SecretBox& box) {
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return Error(Errc::DataLoss, "a stored service spec is not JSON");
  }
  Json secrets = j.value("secret_env", Json::object());
  j.erase("secret_env");
  // A named base, not a ServiceSpec{} temporary: GCC 12 -O3 reports that temporary's strings
  // as maybe-uninitialized once spec_from_request is inlined here.
  ServiceSpec defaults;
  BERTH_ASSIGN_OR_RETURN(auto spec, spec_from_request(j, std::move(defaults)));
  for (const auto& [k, v] : secrets.items()) {
    BERTH_ASSIGN_OR_RETURN(spec.secret_env[k], box.open(v.get<std::string>()));
  }
  return spec;
}

Json spec_to_view(const ServiceSpec& spec) {
  Json j = spec_json(spec);
  Json names = Json::array();
  for (const auto& [k, v] : spec.secret_env) {
    names.push_back(k);
  }
  j["secret_env"] = names;  // names only: values never leave the controller
  return j;
}

std::optional<std::vector<int64_t>> parse_semver(const std::string& tag) {
  std::string s = tag;
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) {
    s = s.substr(1);
  }
  std::vector<int64_t> parts;
  size_t i = 0;
  while (i < s.size() && parts.size() < 3) {
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
      ++j;
    }
    if (j == i || j - i > 15) {
      return std::nullopt;
    }
    parts.push_back(std::stoll(s.substr(i, j - i)));
    i = j;
    if (i < s.size() && s[i] == '.') {
      ++i;
    } else {
      break;
    }
  }
  if (parts.empty()) {
    return std::nullopt;
  }
  while (parts.size() < 3) {
    parts.push_back(0);
  }
  // A pre-release ("-rc1") sorts before the release: 0 marks it, 1 a release.
  parts.push_back(i < s.size() && s[i] == '-' ? 0 : 1);
  if (i < s.size() && s[i] != '-' && s[i] != '+') {
    return std::nullopt;
  }
  return parts;
}

}  // namespace berth::deploy
