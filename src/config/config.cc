// SPDX-License-Identifier: Apache-2.0
#include "config/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/duration.h"

namespace berth::config {

namespace {

Error bad(const std::string& key, const std::string& why) {
  return Error(Errc::InvalidArgument, key + ": " + why);
}

Status set_bool(bool& out, const std::string& key, const std::string& v) {
  if (v == "true" || v == "yes" || v == "1" || v == "on") {
    out = true;
  } else if (v == "false" || v == "no" || v == "0" || v == "off") {
    out = false;
  } else {
    return bad(key, "expected true or false, got '" + v + "'");
  }
  return ok();
}

Status set_int(int& out, const std::string& key, const std::string& v) {
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < 0 || n > 1024) {
    return bad(key, "expected a number from 0 to 1024, got '" + v + "'");
  }
  out = static_cast<int>(n);
  return ok();
}

Status set_count(uint64_t& out, const std::string& key, const std::string& v, uint64_t min,
                 uint64_t max) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v.front() == '-' || *end != '\0' || errno != 0 || n < min || n > max) {
    return bad(key, "expected a whole number from " + std::to_string(min) + " to " +
                        std::to_string(max) + ", got '" + v + "'");
  }
  out = n;
  return ok();
}

// A size in bytes: a whole number with an optional unit, K/KiB/M/MiB/G/GiB/T/TiB (powers of
// 1024) or KB/MB/GB/TB (powers of 1000); B or none for bytes.
Status set_size(uint64_t& out, const std::string& key, const std::string& v) {
  auto fail = [&] {
    return bad(key, "expected a size such as 10GiB, 500MB or 0, got '" + v + "'");
  };
  size_t digits = v.find_first_not_of("0123456789");
  std::string num = v.substr(0, digits), unit = digits == std::string::npos ? "" : v.substr(digits);
  if (num.empty() || num.size() > 19) {
    return fail();
  }
  if (!unit.empty() && unit.front() == ' ') {
    unit.erase(0, 1);
  }
  uint64_t mult = 1;
  if (auto p = unit.empty() ? std::string::npos : std::string_view("KMGT").find(unit.front());
      p != std::string::npos) {
    std::string rest = unit.substr(1);
    if (rest != "" && rest != "iB" && rest != "B") {
      return fail();
    }
    for (size_t i = 0; i <= p; ++i) {
      mult *= rest == "B" ? 1000 : 1024;
    }
  } else if (unit != "" && unit != "B") {
    return fail();
  }
  uint64_t n = std::strtoull(num.c_str(), nullptr, 10);
  if (n > UINT64_MAX / mult) {
    return fail();
  }
  out = n * mult;
  return ok();
}

Status set_dur(std::chrono::seconds& out, const std::string& key, const std::string& v) {
  auto d = parse_duration(v);
  if (!d) {
    return bad(key, d.error().message());
  }
  out = *d;
  return ok();
}

// "repo/name", "repo/name:tag" or "repo/name@sha256:<hex>": the shape only (the build
// service resolves it in the registry, which has the full grammar).
bool plausible_image(const std::string& image) {
  auto sep = image.find_first_of(":@");
  std::string repo = image.substr(0, sep);
  if (repo.empty() || repo.front() == '/' || repo.back() == '/' ||
      repo.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-/") != std::string::npos) {
    return false;
  }
  if (sep == std::string::npos) {
    return true;
  }
  std::string rest = image.substr(sep + 1);
  if (image[sep] == '@') {
    return rest.size() == 71 && rest.rfind("sha256:", 0) == 0 &&
           rest.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
  }
  return !rest.empty() && rest.size() <= 128 && rest.front() != '.' && rest.front() != '-' &&
         rest.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string::npos;
}

using Setter = std::function<Status(Config&, const std::string& key, const std::string& value)>;

// The keys every listener section shares, under `section.` (http, router).
template <class Section>
void add_listener_limits(std::map<std::string, Setter>& table, const std::string& section,
                         Section Config::*member) {
  auto dur = [&](const char* key, std::chrono::seconds ListenerLimits::*field) {
    table.emplace(section + "." + key, [member, field](Config& c, auto& k, auto& v) {
      return set_dur(c.*member.*field, k, v);
    });
  };
  auto count = [&](const char* key, uint64_t ListenerLimits::*field) {
    table.emplace(section + "." + key, [member, field](Config& c, auto& k, auto& v) {
      return set_count(c.*member.*field, k, v, 0, 10'000'000);
    });
  };
  dur("header_timeout", &ListenerLimits::header_timeout);
  dur("keepalive_timeout", &ListenerLimits::keepalive_timeout);
  dur("body_timeout", &ListenerLimits::body_timeout);
  count("max_connections", &ListenerLimits::max_connections);
  count("max_connections_per_address", &ListenerLimits::max_connections_per_address);
}

// The settings that take a list (a YAML sequence, or comma-separated from the environment):
// one table for their setters and for the loader, which accepts a sequence only for these.
// "off" (or an empty sequence) turns off the switch a list has, if it has one.
struct ListSetting {
  const char* key;
  std::vector<std::string>& (*list)(Config&);
  bool* (*enabled)(Config&);  // null: no switch
};
const ListSetting kListSettings[] = {{"dns.listen", [](Config& c) -> auto& {return c.dns.listen;
}  // namespace
, [](Config& c) { return &c.dns.enabled; }
}  // namespace berth::config
, {"dns.nameservers", [](Config& c) -> auto& {return c.dns.nameservers;
}
, nullptr
}
, {"dns.nameserver_addresses", [](Config& c) -> auto& {return c.dns.nameserver_addresses;
}
, nullptr
}
, {"dns.service_addresses", [](Config& c) -> auto& {return c.dns.service_addresses;
}
, nullptr
}
, {"dns.registry_addresses", [](Config& c) -> auto& {return c.dns.registry_addresses;
}
, nullptr
}
, {"router_listen", [](Config& c) -> auto& {return c.router_listen;
}
, nullptr
}
, {"router_tls_listen", [](Config& c) -> auto& {return c.router_tls_listen;
}
, [](Config& c) { return &c.router_tls_enabled; }
}
,
}
;

std::map<std::string, Setter> make_setters();

// Every settable key, by its dotted path. One table serves YAML and the environment.
const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> table = make_setters();
  return table;
}

std::map<std::string, Setter> make_setters() {
  std::map<std::string, Setter> table = {
      {"data",
       [](Config& c, auto&, auto& v) {
         c.data_dir = v;
         return ok();
       }},
      {"listen",
       [](Config& c, auto&, auto& v) {
         c.listen = v;
         return ok();
       }},
      {"apps_domain",
       [](Config& c, auto&, auto& v) {
         c.apps_domain = v;
         return ok();
       }},
      {"router.connect_timeout",
       [](Config& c, auto& k, auto& v) { return set_dur(c.router.connect_timeout, k, v); }},
      {"router.response_timeout",
       [](Config& c, auto& k, auto& v) { return set_dur(c.router.response_timeout, k, v); }},
      {"router.idle_timeout",
       [](Config& c, auto& k, auto& v) { return set_dur(c.router.idle_timeout, k, v); }},
      {"router.redirect_http",
       [](Config& c, auto& k, auto& v) { return set_bool(c.router.redirect_http, k, v); }},
      {"router.hsts", [](Config& c, auto& k, auto& v) { return set_bool(c.router.hsts, k, v); }},
      {"router.hsts_max_age",
       [](Config& c, auto& k, auto& v) { return set_dur(c.router.hsts_max_age, k, v); }},
      {"router.max_idle_per_upstream",
       [](Config& c, auto& k, auto& v) {
         return set_count(c.router.max_idle_per_upstream, k, v, 0, 100'000);
       }},
      {"runtime.enabled",
       [](Config& c, auto& k, auto& v) { return set_bool(c.runtime.enabled, k, v); }},
      {"runtime.userns",
       [](Config& c, auto& k, auto& v) { return set_bool(c.runtime.userns, k, v); }},
      {"runtime.oci_runtime",
       [](Config& c, auto&, auto& v) {
         c.runtime.oci_runtime = v;
         return ok();
       }},
      {"log_level",
       [](Config& c, auto&, auto& v) {
         c.log_level = v;
         return ok();
       }},
      {"access_log", [](Config& c, auto& k, auto& v) { return set_bool(c.access_log, k, v); }},
      {"io_threads", [](Config& c, auto& k, auto& v) { return set_int(c.io_threads, k, v); }},
      {"blocking_threads",
       [](Config& c, auto& k, auto& v) { return set_int(c.blocking_threads, k, v); }},
      {"storage.driver",
       [](Config& c, auto&, auto& v) {
         c.storage.driver = v;
         return ok();
       }},
      {"storage.fsync",
       [](Config& c, auto& k, auto& v) { return set_bool(c.storage.fsync, k, v); }},
      {"storage.s3.endpoint",
       [](Config& c, auto&, auto& v) {
         c.storage.s3.endpoint = v;
         return ok();
       }},
      {"storage.s3.region",
       [](Config& c, auto&, auto& v) {
         c.storage.s3.region = v;
         return ok();
       }},
      {"storage.s3.bucket",
       [](Config& c, auto&, auto& v) {
         c.storage.s3.bucket = v;
         return ok();
       }},
      {"storage.s3.access_key_id_file",
       [](Config& c, auto&, auto& v) {
         c.storage.s3.access_key_id_file = v;
         return ok();
       }},
      {"storage.s3.secret_access_key_file",
       [](Config& c, auto&, auto& v) {
         c.storage.s3.secret_access_key_file = v;
         return ok();
       }},
      {"storage.s3.path_style",
       [](Config& c, auto& k, auto& v) { return set_bool(c.storage.s3.path_style, k, v); }},
      {"storage.s3.redirect_pulls",
       [](Config& c, auto& k, auto& v) { return set_bool(c.storage.s3.redirect_pulls, k, v); }},
      {"storage.s3.cache_size",
       [](Config& c, auto& k, auto& v) { return set_size(c.storage.s3.cache_size, k, v); }},
      {"storage.s3.cache_pushed",
       [](Config& c, auto& k, auto& v) { return set_bool(c.storage.s3.cache_pushed, k, v); }},
      {"storage.s3.cache_min_free_percent",
       [](Config& c, auto& k, auto& v) {
         return set_count(c.storage.s3.cache_min_free_percent, k, v, 0, 90);
       }},
      {"store.driver",
       [](Config& c, auto&, auto& v) {
         c.store.driver = v;
         return ok();
       }},
      {"store.postgres.dsn",
       [](Config& c, auto&, auto& v) {
         c.store.postgres.dsn = v;
         return ok();
       }},
      {"store.postgres.password_file",
       [](Config& c, auto&, auto& v) {
         c.store.postgres.password_file = v;
         return ok();
       }},
      {"store.postgres.max_connections",
       [](Config& c, auto& k, auto& v) { return set_int(c.store.postgres.max_connections, k, v); }},
      {"store.postgres.query_timeout",
       [](Config& c, auto& k, auto& v) { return set_dur(c.store.postgres.query_timeout, k, v); }},
      {"registry.auto_create_repositories",
       [](Config& c, auto& k, auto& v) {
         return set_bool(c.registry.auto_create_repositories, k, v);
       }},
      {"registry.upload_ttl",
       [](Config& c, auto& k, auto& v) { return set_dur(c.registry.upload_ttl, k, v); }},
      {"registry.gc_interval",
       [](Config& c, auto& k, auto& v) { return set_dur(c.registry.gc_interval, k, v); }},
      {"tls.cert_file",
       [](Config& c, auto&, auto& v) {
         c.tls.cert_file = v;
         return ok();
       }},
      {"tls.key_file",
       [](Config& c, auto&, auto& v) {
         c.tls.key_file = v;
         return ok();
       }},
      {"iam.enforce", [](Config& c, auto& k, auto& v) { return set_bool(c.iam.enforce, k, v); }},
      {"iam.token_ttl", [](Config& c, auto& k, auto& v) { return set_dur(c.iam.token_ttl, k, v); }},
      {"registry.gc_grace",
       [](Config& c, auto& k, auto& v) { return set_dur(c.registry.gc_grace, k, v); }},
      {"registry.lifecycle_interval",
       [](Config& c, auto& k, auto& v) { return set_dur(c.registry.lifecycle_interval, k, v); }},
      {"registry.max_upstream_fetches",
       [](Config& c, auto& k, auto& v) { return set_int(c.registry.max_upstream_fetches, k, v); }},
      {"registry.upstream_timeout",
       [](Config& c, auto& k, auto& v) { return set_dur(c.registry.upstream_timeout, k, v); }},
      {"console.enabled",
       [](Config& c, auto& k, auto& v) { return set_bool(c.console.enabled, k, v); }},
      {"console.session_ttl",
       [](Config& c, auto& k, auto& v) { return set_dur(c.console.session_ttl, k, v); }},
      {"build.max_concurrent",
       [](Config& c, auto& k, auto& v) { return set_int(c.build.max_concurrent, k, v); }},
      {"build.allow_file_remotes",
       [](Config& c, auto& k, auto& v) { return set_bool(c.build.allow_file_remotes, k, v); }},
      {"build.builder_image",
       [](Config& c, auto&, auto& v) {
         c.build.builder_image = v;
         return ok();
       }},
      {"build.timeout", [](Config& c, auto& k, auto& v) { return set_dur(c.build.timeout, k, v); }},
      {"http.max_header_bytes",
       [](Config& c, auto& k, auto& v) {
         return set_count(c.http.max_header_bytes, k, v, 1024, 1024 * 1024);
       }},
      {"http.max_header_fields",
       [](Config& c, auto& k, auto& v) {
         return set_count(c.http.max_header_fields, k, v, 8, 10'000);
       }},
  };
  // Lists: a YAML sequence, or one string of comma-separated items (the environment's form).
  for (const auto& ls : kListSettings) {
    table.emplace(ls.key, [ls](Config& c, auto&, auto& v) {
      auto& out = ls.list(c);
      out.clear();
      if (ls.enabled != nullptr) {
        *ls.enabled(c) = v != "off" && !v.empty();
      }
      size_t start = 0;
      while (start <= v.size()) {
        size_t comma = v.find(',', start);
        std::string item =
            v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty() && item != "off") {
          out.push_back(item);
        }
        if (comma == std::string::npos) {
          break;
        }
        start = comma + 1;
      }
      return ok();
    });
  }
  table.emplace("dns.udp_threads",
                [](Config& c, auto& k, auto& v) { return set_int(c.dns.udp_threads, k, v); });
  table.emplace("dns.max_tcp_connections", [](Config& c, auto& k, auto& v) {
    return set_count(c.dns.max_tcp_connections, k, v, 1, 1'000'000);
  });
  table.emplace("dns.max_tcp_connections_per_address", [](Config& c, auto& k, auto& v) {
    return set_count(c.dns.max_tcp_connections_per_address, k, v, 1, 1'000'000);
  });
  table.emplace("dns.tcp_idle_timeout",
                [](Config& c, auto& k, auto& v) { return set_dur(c.dns.tcp_idle_timeout, k, v); });
  table.emplace("dns.max_record_sets_per_zone", [](Config& c, auto& k, auto& v) {
    return set_count(c.dns.max_record_sets_per_zone, k, v, 10, 10'000'000);
  });
  table.emplace("tls.issuer", [](Config& c, auto& k, auto& v) -> Status {
    if (v != "internal" && v != "acme") {
      return Error(Errc::InvalidArgument, k + ": must be internal or acme, not '" + v + "'");
    }
    c.tls.issuer = v;
    return ok();
  });
  table.emplace("tls.internal_lifetime",
                [](Config& c, auto& k, auto& v) { return set_dur(c.tls.internal_lifetime, k, v); });
  table.emplace("tls.dns_check",
                [](Config& c, auto& k, auto& v) { return set_bool(c.tls.dns_check, k, v); });
  table.emplace("acme.directory_url", [](Config& c, auto&, auto& v) {
    c.acme.directory_url = v;
    return ok();
  });
  table.emplace("acme.email", [](Config& c, auto&, auto& v) {
    c.acme.email = v;
    return ok();
  });
  table.emplace("acme.ca_bundle", [](Config& c, auto&, auto& v) {
    c.acme.ca_bundle = v;
    return ok();
  });
  table.emplace("acme.challenge", [](Config& c, auto& k, auto& v) -> Status {
    if (v != "auto" && v != "http-01" && v != "dns-01") {
      return Error(Errc::InvalidArgument,
                   k + ": must be auto, http-01 or dns-01, not '" + v + "'");
    }
    c.acme.challenge = v;
    return ok();
  });
  add_listener_limits(table, "http", &Config::http);
  add_listener_limits(table, "router", &Config::router);
  return table;
}

// The settings that name files or directories. A relative one is relative to the config file
// that sets it, or (set anywhere else) to the directory berthd starts in.
std::vector<std::pair<std::string, std::string*>> path_settings(Config& c) {
  std::vector<std::pair<std::string, std::string*>> v = {
      {"data", &c.data_dir},
      {"tls.cert_file", &c.tls.cert_file},
      {"tls.key_file", &c.tls.key_file},
      {"acme.ca_bundle", &c.acme.ca_bundle},
      {"store.postgres.password_file", &c.store.postgres.password_file},
      {"storage.s3.access_key_id_file", &c.storage.s3.access_key_id_file},
      {"storage.s3.secret_access_key_file", &c.storage.s3.secret_access_key_file}};
  // A bare name is looked up on PATH; only a path with a '/' is a file.
  if (c.runtime.oci_runtime.find('/') != std::string::npos) {
    v.emplace_back("runtime.oci_runtime", &c.runtime.oci_runtime);
  }
  return v;
}

// base/path, normalised ("./var" -> "/base/var", no trailing '/'); path itself when absolute.
std::string absolute_under(const std::string& base, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) {
    p = std::filesystem::path(base) / p;
  }
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') {
    s.pop_back();
  }
  return s;
}

bool is_list_setting(const std::string& key) {
  for (const auto& entry : kListSettings) {
    if (key == entry.key) {
      return true;
    }
  }
  return false;
}

Status apply_node(Config& cfg, const YAML::Node& node, const std::string& prefix,
                  const std::string& base_dir) {
  for (const auto& kv : node) {
    std::string key = prefix + kv.first.as<std::string>();
    if (key == "version") {
      continue;
    }
    if (kv.second.IsMap()) {
      BERTH_TRY(apply_node(cfg, kv.second, key + ".", base_dir));
      continue;
    }
    // A top-level alias users expect from the issue text.
    if (key == "auto_create_repositories") {
      key = "registry.auto_create_repositories";
    }
    auto it = setters().find(key);
    if (it == setters().end()) {
      return bad(key, "unknown setting");
    }
    std::string value;
    if (kv.second.IsSequence() && is_list_setting(key)) {
      for (const auto& item : kv.second) {
        if (!item.IsScalar()) {
          return bad(key, "expected a list of values");
        }
        value += (value.empty() ? "" : ",") + item.as<std::string>();
      }
      if (kv.second.size() == 0) {
        value = "off";
      }
    } else if (!kv.second.IsScalar()) {
      return bad(key,
                 is_list_setting(key) ? "expected a list of values" : "expected a single value");
    } else {
      value = kv.second.as<std::string>();
    }
    BERTH_TRY(it->second(cfg, key, value));
    if (!base_dir.empty()) {
      for (auto& [name, field] : path_settings(cfg)) {
        if (name == key && !field->empty()) {
          *field = absolute_under(base_dir, *field);
        }
      }
    }
  }
  return ok();
}

// The YAML text over the defaults; relative paths it sets are resolved against base_dir
// (unless empty).
Result<Config> load(const std::string& yaml_text, const std::string& base_dir) {
  Config cfg;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (root.IsNull()) {
      return cfg;
    }
    if (!root.IsMap()) {
      return Error(Errc::InvalidArgument, "config: expected a mapping at the top level");
    }
    if (root["version"] && root["version"].as<std::string>() != "1") {
      return bad("version", "only version 1 is supported");
    }
    BERTH_TRY(apply_node(cfg, root, "", base_dir));
  } catch (const YAML::Exception& e) {
    return Error(Errc::InvalidArgument, std::string("config: ") + e.what());
  }
  return cfg;
}

// The directory berthd runs in.
Result<std::string> current_dir() {
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  if (ec) {
    return Error(Errc::Internal, "cannot read the current directory: " + ec.message());
  }
  return cwd.string();
}

}  // namespace

Result<std::chrono::seconds> parse_duration(const std::string& text) {
  BERTH_ASSIGN_OR_RETURN(auto ms, berth::parse_duration(text));
  if (ms.count() % 1000 != 0) {  // settings here are whole seconds
    return Error(Errc::InvalidArgument, "invalid duration '" + text + "' (try 90s, 15m, 1h, 2d)");
  }
  return std::chrono::duration_cast<std::chrono::seconds>(ms);
}

Result<Config> load_string(const std::string& yaml_text) { return load(yaml_text, ""); }

Result<Config> load_file(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    BERTH_ASSIGN_OR_RETURN(auto cwd, current_dir());
    std::string dir = std::filesystem::path(absolute_under(cwd, path)).parent_path().string();
    auto r = load(YAML::Dump(root), dir);
    if (!r) {
      return std::move(r).error().with_context(path);
    }
    return r;
  } catch (const YAML::BadFile&) {
    return Error(Errc::NotFound, path + ": cannot read config file");
  } catch (const YAML::Exception& e) {
    return Error(Errc::InvalidArgument, path + ": " + e.what());
  }
}

Status apply_env(Config& cfg) {
  for (const auto& [key, setter] : setters()) {
    std::string env = "BERTH_";
    for (char c : key) {
      env.push_back(c == '.' ? '_'
                             : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    if (const char* v = std::getenv(env.c_str())) {
      BERTH_TRY(setter(cfg, env, v));
    }
  }
  return ok();
}

Status make_paths_absolute(Config& cfg) {
  BERTH_ASSIGN_OR_RETURN(auto cwd, current_dir());
  for (auto& [name, field] : path_settings(cfg)) {
    if (!field->empty()) {
      *field = absolute_under(cwd, *field);
    }
  }
  return ok();
}

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& listen) {
  auto bad_listen = [&](const std::string& why) {
    return bad("listen", why + " in '" + listen + "' (expected ADDR:PORT or [IPv6]:PORT)");
  };
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return bad_listen("no port");
  }
  std::string host = listen.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return bad_listen("malformed IPv6 address");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad_listen("IPv6 addresses need brackets");
  }
  std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stol(port) > 65535) {
    return bad_listen("invalid port");
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stol(port)));
}

namespace {

// S3's rules for bucket names that work with both addressing styles.
bool valid_bucket(const std::string& b) {
  return b.size() >= 3 && b.size() <= 63 &&
         b.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") == std::string::npos &&
         b.front() != '-' && b.front() != '.' && b.back() != '-' && b.back() != '.';
}

Status validate_storage(const StorageConfig& st) {
  if (st.driver != "fs" && st.driver != "s3") {
    return bad("storage.driver", "'" + st.driver + "' is not a blob storage (fs or s3)");
  }
  if (st.driver != "s3") {
    return ok();
  }
  const auto& s3 = st.s3;
  bool http = s3.endpoint.rfind("http://", 0) == 0, https = s3.endpoint.rfind("https://", 0) == 0;
  std::string rest = http ? s3.endpoint.substr(7) : https ? s3.endpoint.substr(8) : "";
  while (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  if (rest.empty() || rest.find('/') != std::string::npos) {
    return bad("storage.s3.endpoint",
               "storage.driver is s3: set the service's URL, http(s)://HOST[:PORT] without a "
               "path (got '" +
                   s3.endpoint + "')");
  }
  if (s3.region.empty()) {
    return bad("storage.s3.region", "must not be empty (us-east-1 for RGW and MinIO)");
  }
  if (!valid_bucket(s3.bucket)) {
    return bad("storage.s3.bucket",
               "expected an S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a "
               "letter or digit), got '" +
                   s3.bucket + "'");
  }
  for (const auto& [key, file] :
       {std::pair{"storage.s3.access_key_id_file", &s3.access_key_id_file},
        std::pair{"storage.s3.secret_access_key_file", &s3.secret_access_key_file}}) {
    if (file->empty()) {
      return bad(key, "storage.driver is s3: set the file that holds the key");
    }
    if (::access(file->c_str(), R_OK) != 0) {
      return bad(key, *file + ": cannot read the file");
    }
  }
  return ok();
}

}  // namespace

Status validate(const Config& cfg) {
  BERTH_TRY(split_host_port(cfg.listen));
  for (const auto& [key, list] : {std::pair{"router_listen", &cfg.router_listen},
                                  std::pair{"router_tls_listen", &cfg.router_tls_listen}}) {
    for (const auto& a : *list) {
      if (!split_host_port(a)) {
        return bad(key, "expected ADDR:PORT or [IPv6]:PORT, got '" + a + "'");
      }
    }
  }
  if (cfg.router.hsts_max_age.count() < 0) {
    return bad("router.hsts_max_age", "must not be negative");
  }
  if (cfg.apps_domain.empty() || cfg.apps_domain.front() == '.' || cfg.apps_domain.back() == '.' ||
      cfg.apps_domain.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") !=
          std::string::npos) {
    return bad("apps_domain", "expected a lower-case DNS name like apps.example.com, got '" +
                                  cfg.apps_domain + "'");
  }
  if (cfg.data_dir.empty()) {
    return bad("data", "must not be empty");
  }
  BERTH_TRY(validate_storage(cfg.storage));
  if (cfg.store.driver != "sqlite" && cfg.store.driver != "postgres") {
    return bad("store.driver", "'" + cfg.store.driver + "' is not a store (sqlite or postgres)");
  }
  if (cfg.store.driver == "postgres" && cfg.store.postgres.dsn.empty()) {
    return bad("store.postgres.dsn",
               "store.driver is postgres: set the connection string (\"host=... dbname=... "
               "user=...\") or BERTH_STORE_POSTGRES_DSN");
  }
  if (cfg.store.postgres.max_connections < 1 || cfg.store.postgres.max_connections > 1024) {
    return bad("store.postgres.max_connections",
               "must be 1..1024, got " + std::to_string(cfg.store.postgres.max_connections));
  }
  if (cfg.store.postgres.query_timeout < std::chrono::seconds(1) ||
      cfg.store.postgres.query_timeout > std::chrono::hours(1)) {
    return bad(
        "store.postgres.query_timeout",
        "must be 1s..1h, got " + std::to_string(cfg.store.postgres.query_timeout.count()) + "s");
  }
  if (cfg.registry.upload_ttl.count() <= 0) {
    return bad("registry.upload_ttl", "must be positive");
  }
  if (cfg.tls.cert_file.empty() != cfg.tls.key_file.empty()) {
    return bad(cfg.tls.cert_file.empty() ? "tls.cert_file" : "tls.key_file",
               "set both tls.cert_file and tls.key_file, or neither");
  }
  if (cfg.tls.issuer == "acme" && cfg.acme.directory_url.rfind("https://", 0) != 0) {
    return bad("acme.directory_url",
               "tls.issuer is acme: set the ACME server's https:// directory URL");
  }
  if (cfg.tls.internal_lifetime.count() < 10) {
    return bad("tls.internal_lifetime", "must be at least 10s");
  }
  if (!cfg.acme.ca_bundle.empty() && ::access(cfg.acme.ca_bundle.c_str(), R_OK) != 0) {
    return bad("acme.ca_bundle", cfg.acme.ca_bundle + ": cannot read the file");
  }
  for (const auto* f : {&cfg.tls.cert_file, &cfg.tls.key_file}) {
    if (!f->empty() && ::access(f->c_str(), R_OK) != 0) {
      return bad(f == &cfg.tls.cert_file ? "tls.cert_file" : "tls.key_file",
                 *f + ": cannot read the file");
    }
  }
  if (cfg.iam.token_ttl.count() < 60) {
    return bad("iam.token_ttl", "must be at least 60s");
  }
  if (cfg.registry.gc_grace.count() < 0 || cfg.registry.gc_interval.count() < 0) {
    return bad("registry.gc_grace", "durations must not be negative");
  }
  if (cfg.registry.lifecycle_interval.count() < 0) {
    return bad("registry.lifecycle_interval", "must not be negative (0 turns it off)");
  }
  if (cfg.registry.max_upstream_fetches < 1 || cfg.registry.max_upstream_fetches > 1024) {
    return bad("registry.max_upstream_fetches", "must be between 1 and 1024");
  }
  if (cfg.registry.upstream_timeout.count() < 1) {
    return bad("registry.upstream_timeout", "must be at least 1s");
  }
  if (cfg.console.session_ttl.count() < 60 || cfg.console.session_ttl.count() > 30 * 86400) {
    return bad("console.session_ttl", "must be between 60s and 30d");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool level_ok = false;
  for (auto* l : kLevels) {
    level_ok = level_ok || cfg.log_level == l;
  }
  if (!level_ok) {
    return bad("log_level", "expected trace, debug, info, warn, error or off");
  }
  for (auto [key, d] : {std::pair{"router.connect_timeout", cfg.router.connect_timeout},
                        std::pair{"router.response_timeout", cfg.router.response_timeout},
                        std::pair{"router.idle_timeout", cfg.router.idle_timeout},
                        std::pair{"router.header_timeout", cfg.router.header_timeout},
                        std::pair{"router.keepalive_timeout", cfg.router.keepalive_timeout},
                        std::pair{"router.body_timeout", cfg.router.body_timeout},
                        std::pair{"http.header_timeout", cfg.http.header_timeout},
                        std::pair{"http.keepalive_timeout", cfg.http.keepalive_timeout},
                        std::pair{"http.body_timeout", cfg.http.body_timeout}}) {
    if (d.count() < 1) {
      return bad(key, "must be at least 1s");
    }
  }
  if (cfg.build.max_concurrent < 1 || cfg.build.max_concurrent > 64) {
    return bad("build.max_concurrent",
               "expected a number from 1 to 64, got " + std::to_string(cfg.build.max_concurrent));
  }
  if (cfg.build.timeout.count() < 1) {
    return bad("build.timeout", "must be at least 1s");
  }
  if (!cfg.build.builder_image.empty() && !plausible_image(cfg.build.builder_image)) {
    return bad("build.builder_image",
               "expected an image in berth's registry like tools/builder:1, got '" +
                   cfg.build.builder_image + "'");
  }
  for (const auto& a : cfg.dns.listen) {
    if (!split_host_port(a)) {
      return bad("dns.listen", "expected ADDR:PORT or [IPv6]:PORT, got '" + a + "'");
    }
  }
  for (const auto* list :
       {&cfg.dns.nameserver_addresses, &cfg.dns.service_addresses, &cfg.dns.registry_addresses}) {
    for (const auto& a : *list) {
      if (a.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos || a.empty()) {
        return bad(list == &cfg.dns.service_addresses    ? "dns.service_addresses"
                   : list == &cfg.dns.registry_addresses ? "dns.registry_addresses"
                                                         : "dns.nameserver_addresses",
                   "expected IP addresses, got '" + a + "'");
      }
    }
  }
  for (const auto& n : cfg.dns.nameservers) {
    if (n.empty() ||
        n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-.") != std::string::npos ||
        n.front() == '.') {
      return bad("dns.nameservers",
                 "expected lower-case host names like ns1.example.com, got '" + n + "'");
    }
  }
  if (cfg.dns.tcp_idle_timeout.count() < 1) {
    return bad("dns.tcp_idle_timeout", "must be at least 1s");
  }
  if (cfg.blocking_threads < 1) {
    return bad("blocking_threads", "must be at least 1");
  }
  return ok();
}

}  // namespace berth::config
