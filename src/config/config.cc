// SPDX-License-Identifier: Apache-2.0
#include "config/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
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
#include "config/internal.h"

namespace berth::config {

namespace {

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
  table.emplace("tls.dns_check_resolver", [](Config& c, auto&, auto& v) {
    c.tls.dns_check_resolver = v;
    return ok();
  });
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
      return Error(Errc::InvalidArgument, k + ": must be auto, http-01 or dns-01, not '" + v + "'");
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

namespace {

// The address a listen address gives out: its IP literal, 127.0.0.1 for "localhost", "" for a
// wildcard, another name (no A/AAAA record can hold it) or one that does not parse.
std::string concrete_host(const std::string& listen) {
  auto hp = split_host_port(listen);
  if (!hp || hp->first == "0.0.0.0" || hp->first == "::") {
    return "";
  }
  if (hp->first == "localhost") {
    return "127.0.0.1";
  }
  unsigned char buf[sizeof(in6_addr)];
  if (::inet_pton(AF_INET, hp->first.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, hp->first.c_str(), buf) != 1) {
    return "";
  }
  return hp->first;
}

std::vector<std::string> concrete_hosts(const std::vector<std::string>& listens) {
  std::vector<std::string> out;
  for (const auto& l : listens) {
    auto h = concrete_host(l);
    if (!h.empty() && std::find(out.begin(), out.end(), h) == out.end()) {
      out.push_back(std::move(h));
    }
  }
  return out;
}

bool is_loopback(const std::string& host) { return host.starts_with("127.") || host == "::1"; }

}  // namespace

std::vector<std::string> dns_nameserver_addresses(const Config& cfg) {
  if (!cfg.dns.nameserver_addresses.empty() || !cfg.dns.enabled) {
    return cfg.dns.nameserver_addresses;
  }
  return concrete_hosts(cfg.dns.listen.empty() ? std::vector<std::string>{kDefaultDnsListen}
                                               : cfg.dns.listen);
}

std::vector<std::string> dns_service_addresses(const Config& cfg) {
  if (!cfg.dns.service_addresses.empty()) {
    return cfg.dns.service_addresses;
  }
  // Only TLS addresses the user set count: the default one is loopback, which a router on
  // 0.0.0.0:80 must not hand out.
  std::vector<std::string> listens = cfg.router_listen;
  if (listens.empty()) {
    listens = {kDefaultRouterListen};
  }
  if (cfg.router_tls_enabled) {
    listens.insert(listens.end(), cfg.router_tls_listen.begin(), cfg.router_tls_listen.end());
  }
  auto out = concrete_hosts(listens);
  if (!std::all_of(out.begin(), out.end(), is_loopback)) {
    std::erase_if(out, is_loopback);
  }
  return out;
}

std::vector<std::string> dns_registry_addresses(const Config& cfg) {
  if (!cfg.dns.registry_addresses.empty()) {
    return cfg.dns.registry_addresses;
  }
  return concrete_hosts({cfg.listen});
}

}  // namespace berth::config
