// SPDX-License-Identifier: Apache-2.0
// config/: YAML over defaults, BERTH_* environment overrides, validation, host:port splitting.
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <utility>

#include "support/harness.h"

namespace berth::config {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

TEST(ConfigLoadTest, EmptyTextGivesDefaults) {
  auto c = load_string("");
  ASSERT_TRUE(c) << c.error().message();
  Config d;
  EXPECT_EQ(c->data_dir, d.data_dir);
  EXPECT_EQ(c->listen, "127.0.0.1:5000");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_TRUE(c->access_log);
  EXPECT_EQ(c->io_threads, 0);
  EXPECT_EQ(c->blocking_threads, 8);
  EXPECT_EQ(c->storage.driver, "fs");
  EXPECT_TRUE(c->storage.fsync);
  EXPECT_FALSE(c->registry.auto_create_repositories);
  EXPECT_EQ(c->registry.upload_ttl, 24h);
  EXPECT_EQ(c->registry.gc_interval, 0s);
  EXPECT_EQ(c->registry.gc_grace, 1h);
  EXPECT_TRUE(validate(*c));
}

TEST(ConfigLoadTest, VersionOnlyKeepsDefaults) {
  auto c = load_string("version: 1\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->listen, "127.0.0.1:5000");
  EXPECT_EQ(c->storage.driver, "fs");
}

TEST(ConfigLoadTest, TopLevelAndNestedKeys) {
  auto c = load_string(R"(version: 1
data: /srv/berth
listen: 0.0.0.0:8080
log_level: debug
access_log: false
io_threads: 4
blocking_threads: 16
storage:
  driver: fs
  fsync: no
registry:
  auto_create_repositories: true
  upload_ttl: 2d
  gc_interval: 15m
  gc_grace: 90s
)");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->data_dir, "/srv/berth");
  EXPECT_EQ(c->listen, "0.0.0.0:8080");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_FALSE(c->access_log);
  EXPECT_EQ(c->io_threads, 4);
  EXPECT_EQ(c->blocking_threads, 16);
  EXPECT_FALSE(c->storage.fsync);
  EXPECT_TRUE(c->registry.auto_create_repositories);
  EXPECT_EQ(c->registry.upload_ttl, 48h);
  EXPECT_EQ(c->registry.gc_interval, 15min);
  EXPECT_EQ(c->registry.gc_grace, 90s);
  EXPECT_TRUE(validate(*c));
}

TEST(ConfigLoadTest, UnsetNestedKeysKeepDefaults) {
  auto c = load_string("registry:\n  gc_interval: 1h\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->registry.gc_interval, 1h);
  EXPECT_EQ(c->registry.upload_ttl, 24h);
  EXPECT_EQ(c->registry.gc_grace, 1h);
  EXPECT_FALSE(c->registry.auto_create_repositories);
}

TEST(ConfigLoadTest, LifecycleIntervalDefaultsToAnHourAndZeroTurnsItOff) {
  auto d = load_string("");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->registry.lifecycle_interval, 1h);
  auto c = load_string("registry:\n  lifecycle_interval: 0\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->registry.lifecycle_interval, 0s);
  auto bad = load_string("registry:\n  lifecycle_interval: soon\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("registry.lifecycle_interval"));
}

TEST(ConfigLoadTest, UpstreamFetchLimitAndTimeoutHaveDefaultsAndBounds) {
  auto d = load_string("");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->registry.max_upstream_fetches, 16);
  EXPECT_EQ(d->registry.upstream_timeout, 30s);
  auto c = load_string("registry:\n  max_upstream_fetches: 4\n  upstream_timeout: 2m\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->registry.max_upstream_fetches, 4);
  EXPECT_EQ(c->registry.upstream_timeout, 120s);
  for (const char* bad :
       {"registry:\n  max_upstream_fetches: 0\n", "registry:\n  max_upstream_fetches: 5000\n",
        "registry:\n  upstream_timeout: 0\n"}) {
    // Refused when loading or, for a well-formed value out of range, by validate().
    auto b = load_string(bad);
    Status v = b ? validate(*b) : Status(b.error());
    ASSERT_FALSE(v) << bad;
    EXPECT_THAT(v.error().message(), HasSubstr("registry.")) << bad;
  }
}

TEST(ConfigLoadTest, TopLevelAutoCreateAlias) {
  auto c = load_string("auto_create_repositories: yes\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->registry.auto_create_repositories);
}

TEST(ConfigLoadTest, UnknownTopLevelKeyIsNamed) {
  auto c = load_string("version: 1\nlisten_addr: 1.2.3.4:5\n");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(c.error().message(), HasSubstr("listen_addr"));
}

TEST(ConfigLoadTest, UnknownNestedKeyIsNamedByPath) {
  auto c = load_string("registry:\n  gc_intervall: 1h\n");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(c.error().message(), HasSubstr("registry.gc_intervall"));
  auto d = load_string("storage:\n  s3:\n    buckett: x\n");
  ASSERT_FALSE(d);
  EXPECT_THAT(d.error().message(), HasSubstr("storage.s3.buckett"));
}

TEST(ConfigLoadTest, BadBoolNamesKeyAndValue) {
  auto c = load_string("registry:\n  auto_create_repositories: maybe\n");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(c.error().message(), HasSubstr("registry.auto_create_repositories"));
  EXPECT_THAT(c.error().message(), HasSubstr("maybe"));
  EXPECT_FALSE(load_string("access_log: 2\n"));
}

TEST(ConfigLoadTest, BoolSpellings) {
  for (const char* v : {"true", "yes", "on", "1"}) {
    auto c = load_string(std::string("storage:\n  fsync: ") + v + "\naccess_log: " + v + "\n");
    ASSERT_TRUE(c) << v;
    EXPECT_TRUE(c->storage.fsync) << v;
    EXPECT_TRUE(c->access_log) << v;
  }
  for (const char* v : {"false", "no", "off", "0"}) {
    auto c = load_string(std::string("storage:\n  fsync: ") + v + "\naccess_log: " + v + "\n");
    ASSERT_TRUE(c) << v;
    EXPECT_FALSE(c->storage.fsync) << v;
    EXPECT_FALSE(c->access_log) << v;
  }
}

TEST(ConfigLoadTest, BadIntegerIsNamed) {
  auto c = load_string("io_threads: lots\n");
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("io_threads"));
  EXPECT_FALSE(load_string("blocking_threads: -1\n"));
  EXPECT_FALSE(load_string("blocking_threads: 5000\n"));
  EXPECT_FALSE(load_string("blocking_threads: 4x\n"));
}

TEST(ConfigLoadTest, DurationUnits) {
  struct Case {
    const char* text;
    std::chrono::seconds want;
  };
  for (const Case& tc : {Case{"90s", 90s}, Case{"15m", 15min}, Case{"1h", 1h}, Case{"2d", 48h},
                         Case{"45", 45s}, Case{"0s", 0s}}) {
    auto c = load_string(std::string("registry:\n  upload_ttl: ") + tc.text + "\n");
    ASSERT_TRUE(c) << tc.text << ": " << c.error().message();
    EXPECT_EQ(c->registry.upload_ttl, tc.want) << tc.text;
    auto d = parse_duration(tc.text);
    ASSERT_TRUE(d) << tc.text;
    EXPECT_EQ(*d, tc.want) << tc.text;
  }
}

TEST(ConfigLoadTest, BadDurationsAreNamed) {
  for (const char* text : {"1w", "h", "1.5h", "-5s", "5 s", "1hh", "ms"}) {
    auto c = load_string(std::string("registry:\n  gc_grace: \"") + text + "\"\n");
    ASSERT_FALSE(c) << text;
    EXPECT_EQ(c.error().code(), Errc::InvalidArgument) << text;
    EXPECT_THAT(c.error().message(), HasSubstr("registry.gc_grace")) << text;
  }
  EXPECT_FALSE(parse_duration(""));
}

// A duration too large for std::chrono::seconds must be refused, not wrapped: a wrapped
// (negative) gc_grace would put the gc cutoff in the future and collect fresh uploads.
TEST(ConfigLoadTest, OverflowingDurationIsRejected) {
  for (const char* text :
       {"200000000000000d", "9000000000000000h", "99999999999999999999", "99999999999999999999s"}) {
    auto d = parse_duration(text);
    EXPECT_FALSE(d) << text << " parsed as " << (d ? d->count() : 0) << "s";
  }
}

TEST(ConfigLoadTest, UnsupportedVersion) {
  for (const char* v : {"2", "0", "\"1.1\""}) {
    auto c = load_string(std::string("version: ") + v + "\n");
    ASSERT_FALSE(c) << v;
    EXPECT_EQ(c.error().code(), Errc::InvalidArgument);
    EXPECT_THAT(c.error().message(), HasSubstr("version")) << v;
  }
}

TEST(ConfigLoadTest, MalformedYamlAndNonMapping) {
  auto bad = load_string("listen: [unclosed\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::InvalidArgument);
  auto list = load_string("- a\n- b\n");
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code(), Errc::InvalidArgument);
  auto seq_value = load_string("listen:\n  - a\n");
  ASSERT_FALSE(seq_value);
  EXPECT_THAT(seq_value.error().message(), HasSubstr("listen"));
}

TEST(ConfigLoadTest, LoadFileReadsAndNamesThePath) {
  test::TempDir dir;
  std::string path = dir / "berth.yaml";
  test::write_file(path, "version: 1\nlisten: 127.0.0.1:6000\n");
  auto c = load_file(path);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->listen, "127.0.0.1:6000");

  std::string bad = dir / "bad.yaml";
  test::write_file(bad, "version: 1\nbogus: 1\n");
  auto b = load_file(bad);
  ASSERT_FALSE(b);
  EXPECT_THAT(b.error().message(), HasSubstr(bad));
  EXPECT_THAT(b.error().message(), HasSubstr("bogus"));

  std::string empty = dir / "empty.yaml";
  test::write_file(empty, "");
  auto e = load_file(empty);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->listen, "127.0.0.1:5000");

  auto missing = load_file(dir / "nope.yaml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
}

// A config file's relative paths are relative to the file's directory, whatever directory
// berthd starts in; paths it does not set keep their defaults.
TEST(ConfigLoadTest, LoadFileResolvesRelativePathsAgainstTheFilesDirectory) {
  test::TempDir dir;
  std::string path = dir / "etc/berth.yaml";
  test::write_file(path,
                   "version: 1\ndata: ./var/\ntls:\n  cert_file: certs/c.pem\n"
                   "  key_file: /abs/k.pem\nruntime:\n  oci_runtime: bin/../bin/runc\n");
  auto c = load_file(path);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->data_dir, dir / "etc/var");
  EXPECT_EQ(c->tls.cert_file, dir / "etc/certs/c.pem");
  EXPECT_EQ(c->tls.key_file, "/abs/k.pem");
  EXPECT_EQ(c->runtime.oci_runtime, dir / "etc/bin/runc");

  // The same through a relative path to the file.
  std::string rel = std::filesystem::relative(path).string();
  ASSERT_FALSE(rel.empty());
  ASSERT_NE(rel.front(), '/');
  auto r = load_file(rel);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->data_dir, dir / "etc/var");

  // A runtime given by name is looked up on PATH; an unset data dir keeps the default.
  test::write_file(path, "version: 1\nruntime:\n  oci_runtime: runc\n");
  auto n = load_file(path);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->runtime.oci_runtime, "runc");
  EXPECT_EQ(n->data_dir, Config{}.data_dir);
}

// What is still relative at start (the default ./var, --data, BERTH_DATA) is relative to the
// directory berthd starts in, made absolute once.
TEST(ConfigLoadTest, MakePathsAbsoluteUsesTheCurrentDirectory) {
  std::string cwd = std::filesystem::current_path().string();
  Config c;
  c.tls.cert_file = "c.pem";
  c.tls.key_file = "/k.pem";
  ASSERT_TRUE(make_paths_absolute(c));
  EXPECT_EQ(c.data_dir, cwd + "/var");
  EXPECT_EQ(c.tls.cert_file, cwd + "/c.pem");
  EXPECT_EQ(c.tls.key_file, "/k.pem");
  EXPECT_EQ(c.runtime.oci_runtime, "runc");
  c.data_dir = "data/./berth/";
  ASSERT_TRUE(make_paths_absolute(c));
  EXPECT_EQ(c.data_dir, cwd + "/data/berth");
  ASSERT_TRUE(make_paths_absolute(c));  // idempotent
  EXPECT_EQ(c.data_dir, cwd + "/data/berth");
}

// ---- apply_env ------------------------------------------------------------------------------

TEST(ConfigEnvTest, ListenAndAutoCreateOverrides) {
  ScopedEnv listen("BERTH_LISTEN", "0.0.0.0:9999");
  ScopedEnv create("BERTH_REGISTRY_AUTO_CREATE_REPOSITORIES", "true");
  auto c = load_string("listen: 127.0.0.1:1\n");
  ASSERT_TRUE(c);
  ASSERT_TRUE(apply_env(*c));
  EXPECT_EQ(c->listen, "0.0.0.0:9999");
  EXPECT_TRUE(c->registry.auto_create_repositories);
}

TEST(ConfigEnvTest, OtherOverrides) {
  ScopedEnv data("BERTH_DATA", "/var/lib/berth");
  ScopedEnv ttl("BERTH_REGISTRY_UPLOAD_TTL", "15m");
  ScopedEnv fsync("BERTH_STORAGE_FSYNC", "off");
  Config c;
  ASSERT_TRUE(apply_env(c));
  EXPECT_EQ(c.data_dir, "/var/lib/berth");
  EXPECT_EQ(c.registry.upload_ttl, 15min);
  EXPECT_FALSE(c.storage.fsync);
}

TEST(ConfigEnvTest, RuntimeUsernsFromYamlAndEnv) {
  EXPECT_FALSE(Config{}.runtime.userns);
  auto c = load_string("runtime:\n  userns: true\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(c->runtime.userns);
  EXPECT_FALSE(load_string("runtime:\n  userns: sometimes\n"));
  ScopedEnv userns("BERTH_RUNTIME_USERNS", "false");
  ASSERT_TRUE(apply_env(*c));
  EXPECT_FALSE(c->runtime.userns);
}

TEST(ConfigEnvTest, NoVariablesChangesNothing) {
  ::unsetenv("BERTH_LISTEN");
  ::unsetenv("BERTH_REGISTRY_AUTO_CREATE_REPOSITORIES");
  Config c;
  c.listen = "127.0.0.1:7";
  ASSERT_TRUE(apply_env(c));
  EXPECT_EQ(c.listen, "127.0.0.1:7");
  EXPECT_FALSE(c.registry.auto_create_repositories);
}

TEST(ConfigEnvTest, BadValueNamesTheVariable) {
  ScopedEnv create("BERTH_REGISTRY_AUTO_CREATE_REPOSITORIES", "perhaps");
  Config c;
  auto st = apply_env(c);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(st.error().message(), HasSubstr("BERTH_REGISTRY_AUTO_CREATE_REPOSITORIES"));
  EXPECT_FALSE(c.registry.auto_create_repositories);
}

// ---- validate and split_host_port ----------------------------------------------------------

TEST(ConfigValidateTest, BadListen) {
  for (const char* listen : {"", "localhost", ":5000", "127.0.0.1:", "127.0.0.1:http",
                             "127.0.0.1:70000", "127.0.0.1:-1"}) {
    Config c;
    c.listen = listen;
    auto st = validate(c);
    ASSERT_FALSE(st) << "'" << listen << "' accepted";
    EXPECT_EQ(st.error().code(), Errc::InvalidArgument);
    EXPECT_THAT(st.error().message(), HasSubstr("listen")) << listen;
  }
}

TEST(ConfigValidateTest, S3DriverNotAvailable) {
  auto c = load_string("storage:\n  driver: s3\n");
  ASSERT_TRUE(c) << c.error().message();  // parses, but...
  auto st = validate(*c);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(st.error().message(), HasSubstr("storage.driver"));
  EXPECT_THAT(st.error().message(), HasSubstr("s3"));
}

TEST(ConfigValidateTest, OtherNonsense) {
  {
    Config c;
    c.registry.upload_ttl = 0s;
    auto st = validate(c);
    ASSERT_FALSE(st);
    EXPECT_THAT(st.error().message(), HasSubstr("registry.upload_ttl"));
  }
  {
    Config c;
    c.log_level = "verbose";
    auto st = validate(c);
    ASSERT_FALSE(st);
    EXPECT_THAT(st.error().message(), HasSubstr("log_level"));
  }
  {
    Config c;
    c.blocking_threads = 0;
    auto st = validate(c);
    ASSERT_FALSE(st);
    EXPECT_THAT(st.error().message(), HasSubstr("blocking_threads"));
  }
  {
    Config c;
    c.data_dir = "";
    auto st = validate(c);
    ASSERT_FALSE(st);
    EXPECT_THAT(st.error().message(), HasSubstr("data"));
  }
}

TEST(SplitHostPortTest, Ipv4AndNames) {
  auto r = split_host_port("127.0.0.1:5000");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->first, "127.0.0.1");
  EXPECT_EQ(r->second, 5000);
  auto z = split_host_port("0.0.0.0:0");
  ASSERT_TRUE(z);
  EXPECT_EQ(z->second, 0);
  auto n = split_host_port("localhost:65535");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->first, "localhost");
  EXPECT_EQ(n->second, 65535);
}

TEST(SplitHostPortTest, Ipv6InBrackets) {
  auto r = split_host_port("[::1]:5000");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->first, "::1");
  EXPECT_EQ(r->second, 5000);
  auto any = split_host_port("[::]:443");
  ASSERT_TRUE(any) << any.error().message();
  EXPECT_EQ(any->first, "::");
  EXPECT_EQ(any->second, 443);
  auto full = split_host_port("[fe80::1:2]:8080");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->first, "fe80::1:2");
  EXPECT_EQ(full->second, 8080);
}

TEST(SplitHostPortTest, RejectsBadPorts) {
  for (const char* s : {"host", "host:", "host:65536", "host:12ab", ":80", "[::1]:"}) {
    EXPECT_FALSE(split_host_port(s)) << s;
  }
}

}  // namespace
}  // namespace berth::config

namespace berth::config {
namespace {

TEST(ConfigServicesTest, RouterRuntimeAndDomain) {
  auto c = load_string(R"(version: 1
router_listen: 127.0.0.1:9080
apps_domain: apps.example.com
router:
  connect_timeout: 2s
  response_timeout: 5m
  idle_timeout: 1h
  max_idle_per_upstream: 32
runtime:
  enabled: false
  oci_runtime: /usr/sbin/runc
)");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->router_listen, std::vector<std::string>{"127.0.0.1:9080"});
  EXPECT_EQ(c->apps_domain, "apps.example.com");
  EXPECT_EQ(c->router.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c->router.response_timeout, std::chrono::minutes(5));
  EXPECT_EQ(c->router.idle_timeout, std::chrono::hours(1));
  EXPECT_EQ(c->router.max_idle_per_upstream, 32u);
  EXPECT_FALSE(c->runtime.enabled);
  EXPECT_EQ(c->runtime.oci_runtime, "/usr/sbin/runc");
  EXPECT_TRUE(validate(*c));
  Config d;
  EXPECT_TRUE(d.router_listen.empty());  // kDefaultRouterListen
  EXPECT_TRUE(d.router_tls_listen.empty());
  EXPECT_TRUE(d.router_tls_enabled);
  EXPECT_TRUE(d.router.redirect_http);
  EXPECT_FALSE(d.router.hsts);
  EXPECT_EQ(d.router.max_idle_per_upstream, 1024u);
  EXPECT_FALSE(load_string("router:\n  max_idle_per_upstream: lots\n"));
  EXPECT_EQ(d.apps_domain, "localhost");
  EXPECT_TRUE(d.runtime.enabled);
}

TEST(ConfigServicesTest, RouterListenersTakeAStringOrAList) {
  auto c = load_string(R"(version: 1
router_listen: ["127.0.0.1:8080", "[::1]:8080"]
router_tls_listen: "[::1]:8443"
router:
  redirect_http: false
  hsts: true
  hsts_max_age: 1d
)");
  ASSERT_TRUE(c) << c.error().message();
  std::vector<std::string> plain = {"127.0.0.1:8080", "[::1]:8080"};
  EXPECT_EQ(c->router_listen, plain);
  EXPECT_EQ(c->router_tls_listen, std::vector<std::string>{"[::1]:8443"});
  EXPECT_TRUE(c->router_tls_enabled);
  EXPECT_FALSE(c->router.redirect_http);
  EXPECT_TRUE(c->router.hsts);
  EXPECT_EQ(c->router.hsts_max_age, std::chrono::hours(24));
  EXPECT_TRUE(validate(*c));

  auto off = load_string("router_tls_listen: off\n");
  ASSERT_TRUE(off) << off.error().message();
  EXPECT_FALSE(off->router_tls_enabled);
  auto none = load_string("router_tls_listen: []\n");
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_FALSE(none->router_tls_enabled);

  auto bad = load_string("router_tls_listen: [\"127.0.0.1\"]\n");
  ASSERT_TRUE(bad);
  auto s = validate(*bad);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message().rfind("router_tls_listen:", 0), 0u) << s.error().message();
}

TEST(ConfigServicesTest, BadValuesAreNamed) {
  Config c;
  c.router_listen = {"nope"};
  auto s = validate(c);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message().rfind("router_listen:", 0), 0u) << s.error().message();
  c = Config{};
  c.apps_domain = "Apps.Example";
  s = validate(c);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message().rfind("apps_domain:", 0), 0u) << s.error().message();
  c = Config{};
  c.router.response_timeout = std::chrono::seconds(0);
  s = validate(c);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message().rfind("router.response_timeout:", 0), 0u) << s.error().message();
}

TEST(ConfigServicesTest, AcmeChallengeIsAutoHttp01OrDns01) {
  auto c = load_string("");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->acme.challenge, "auto");
  c = load_string("acme:\n  challenge: http-01\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->acme.challenge, "http-01");
  auto bad = load_string("acme:\n  challenge: tls-alpn-01\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("acme.challenge: must be auto, http-01 or dns-01, not "
                                       "'tls-alpn-01'"),
            std::string::npos)
      << bad.error().message();
}

TEST(ConfigServicesTest, DnsCheckResolverIsAnAddressWithAnOptionalPort) {
  for (const char* good : {"127.0.0.53", "127.0.0.1:5353", "::1", "[::1]:5353"}) {
    Config c;
    c.tls.dns_check_resolver = good;
    EXPECT_TRUE(validate(c)) << good;
  }
  for (const char* bad_value : {"resolver.example", "127.0.0.1:x", "[::1]:0", "1.2.3"}) {
    Config c;
    c.tls.dns_check_resolver = bad_value;
    auto s = validate(c);
    ASSERT_FALSE(s) << bad_value;
    EXPECT_EQ(s.error().message().rfind("tls.dns_check_resolver: '", 0), 0u)
        << s.error().message();
  }
}

TEST(ConfigBuildTest, DefaultsAndYaml) {
  Config d;
  EXPECT_EQ(d.build.max_concurrent, 1);
  EXPECT_FALSE(d.build.allow_file_remotes);
  EXPECT_EQ(d.build.builder_image, "");
  EXPECT_EQ(d.build.timeout, 1h);
  EXPECT_TRUE(validate(d));
  auto c = load_string(R"(
version: 1
build:
  max_concurrent: 4
  allow_file_remotes: true
  builder_image: tools/builder:1.2
  timeout: 20m
)");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->build.max_concurrent, 4);
  EXPECT_TRUE(c->build.allow_file_remotes);
  EXPECT_EQ(c->build.builder_image, "tools/builder:1.2");
  EXPECT_EQ(c->build.timeout, 20min);
  EXPECT_TRUE(validate(*c));
}

TEST(ConfigBuildTest, EnvironmentOverrides) {
  ScopedEnv a("BERTH_BUILD_MAX_CONCURRENT", "3");
  ScopedEnv b("BERTH_BUILD_ALLOW_FILE_REMOTES", "true");
  ScopedEnv c("BERTH_BUILD_BUILDER_IMAGE", "tools/sh");
  ScopedEnv d("BERTH_BUILD_TIMEOUT", "90s");
  Config cfg;
  ASSERT_TRUE(apply_env(cfg));
  EXPECT_EQ(cfg.build.max_concurrent, 3);
  EXPECT_TRUE(cfg.build.allow_file_remotes);
  EXPECT_EQ(cfg.build.builder_image, "tools/sh");
  EXPECT_EQ(cfg.build.timeout, 90s);
  EXPECT_TRUE(validate(cfg));
}

TEST(ConfigBuildTest, BadValuesNameTheKey) {
  auto expect_key = [](const Status& s, const std::string& key) {
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message().rfind(key + ":", 0), 0u) << s.error().message();
  };
  Config c;
  c.build.max_concurrent = 0;
  expect_key(validate(c), "build.max_concurrent");
  c.build.max_concurrent = 65;
  expect_key(validate(c), "build.max_concurrent");
  c = Config{};
  c.build.timeout = 0s;
  expect_key(validate(c), "build.timeout");
  c = Config{};
  for (const char* img : {"Tools/x", "tools/x:", "tools/x:-a", "tools/x@sha256:abc", "/x", "a b"}) {
    c.build.builder_image = img;
    expect_key(validate(c), "build.builder_image");
  }
  c.build.builder_image = "tools/x@sha256:" + std::string(64, 'f');
  EXPECT_TRUE(validate(c));
  auto bad = load_string("build:\n  timeout: soon\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("build.timeout:"));
  bad = load_string("build:\n  allow_file_remotes: maybe\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("build.allow_file_remotes:"));
  bad = load_string("build:\n  max_concurrent: many\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("build.max_concurrent:"));
  bad = load_string("build:\n  workers: 2\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("build.workers: unknown setting"));
}

TEST(ConfigLoadTest, ListenerLimitsHaveDefaultsAndParse) {
  Config d;
  EXPECT_EQ(d.http.keepalive_timeout, 60s);
  EXPECT_EQ(d.http.body_timeout, 60s);
  EXPECT_EQ(d.http.max_connections_per_address, 256u);
  EXPECT_EQ(d.router.max_connections, 16384u);
  EXPECT_EQ(d.router.max_connections_per_address, 1024u);
  EXPECT_EQ(d.router.idle_timeout, 300s);
  auto c = load_string(
      "http:\n  header_timeout: 5s\n  max_connections_per_address: 0\n"
      "  max_header_fields: 50\nrouter:\n  keepalive_timeout: 10s\n  max_connections: 99\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->http.header_timeout, 5s);
  EXPECT_EQ(c->http.max_connections_per_address, 0u);
  EXPECT_EQ(c->http.max_header_fields, 50u);
  EXPECT_EQ(c->router.keepalive_timeout, 10s);
  EXPECT_EQ(c->router.max_connections, 99u);
  EXPECT_EQ(c->router.max_connections_per_address, 1024u);
  ScopedEnv env("BERTH_ROUTER_MAX_CONNECTIONS_PER_ADDRESS", "7");
  ASSERT_TRUE(apply_env(*c));
  EXPECT_EQ(c->router.max_connections_per_address, 7u);
  auto bad = load_string("router:\n  max_connections: -1\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("router.max_connections"));
  c->http.body_timeout = 0s;
  auto v = validate(*c);
  ASSERT_FALSE(v);
  EXPECT_THAT(v.error().message(), HasSubstr("http.body_timeout"));
}

}  // namespace
}  // namespace berth::config

namespace berth::config {
namespace {

TEST(ConfigStoreTest, DefaultsToSqliteAndReadsThePostgresKeys) {
  auto d = load_string("version: 1\n");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->store.driver, "sqlite");
  EXPECT_EQ(d->store.postgres.max_connections, 16);
  EXPECT_EQ(d->store.postgres.query_timeout, std::chrono::seconds(30));
  EXPECT_TRUE(validate(*d));

  auto c = load_string(
      "version: 1\nstore:\n  driver: postgres\n  postgres:\n    dsn: \"host=127.0.0.1 "
      "dbname=berth user=berth\"\n    password_file: /run/secrets/pg\n    max_connections: 4\n"
      "    query_timeout: 2m\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->store.driver, "postgres");
  EXPECT_EQ(c->store.postgres.dsn, "host=127.0.0.1 dbname=berth user=berth");
  EXPECT_EQ(c->store.postgres.password_file, "/run/secrets/pg");
  EXPECT_EQ(c->store.postgres.max_connections, 4);
  EXPECT_EQ(c->store.postgres.query_timeout, std::chrono::minutes(2));
  EXPECT_TRUE(validate(*c));
}

TEST(ConfigStoreTest, TheDsnComesFromTheEnvironment) {
  Config c;
  ::setenv("BERTH_STORE_DRIVER", "postgres", 1);
  ::setenv("BERTH_STORE_POSTGRES_DSN", "host=db dbname=berth", 1);
  auto s = apply_env(c);
  ::unsetenv("BERTH_STORE_DRIVER");
  ::unsetenv("BERTH_STORE_POSTGRES_DSN");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(c.store.driver, "postgres");
  EXPECT_EQ(c.store.postgres.dsn, "host=db dbname=berth");
  EXPECT_TRUE(validate(c));
}

TEST(ConfigStoreTest, BadValuesNameTheKey) {
  auto expect_bad = [](const std::string& yaml, const std::string& key) {
    auto c = load_string("version: 1\n" + yaml);
    Status s = c ? validate(*c) : Status(c.error());
    ASSERT_FALSE(s) << yaml;
    EXPECT_NE(s.error().message().find(key), std::string::npos) << s.error().message();
  };
  expect_bad("store:\n  driver: mysql\n", "store.driver");
  expect_bad("store:\n  driver: postgres\n", "store.postgres.dsn");
  expect_bad("store:\n  postgres:\n    max_connections: 0\n", "store.postgres.max_connections");
  expect_bad("store:\n  postgres:\n    max_connections: 1025\n", "store.postgres.max_connections");
  expect_bad("store:\n  postgres:\n    query_timeout: 0\n", "store.postgres.query_timeout");
  expect_bad("store:\n  postgres:\n    query_timeout: 2h\n", "store.postgres.query_timeout");
  expect_bad("store:\n  postgres:\n    query_timeout: soon\n", "store.postgres.query_timeout");
}

}  // namespace
}  // namespace berth::config

namespace berth::config {
namespace {

TEST(ConfigStorageTest, DefaultsToFsAndReadsTheS3Keys) {
  auto d = load_string("version: 1\n");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->storage.driver, "fs");
  EXPECT_TRUE(d->storage.s3.path_style);
  EXPECT_FALSE(d->storage.s3.redirect_pulls);
  EXPECT_EQ(d->storage.s3.cache_size, uint64_t{10} << 30);
  EXPECT_TRUE(d->storage.s3.cache_pushed);
  EXPECT_EQ(d->storage.s3.cache_min_free_percent, 10u);

  test::TempDir dir;
  test::write_file(dir / "s3.id", "AKID\n");
  test::write_file(dir / "s3.secret", "SECRET\n");
  auto c = load_string(
      "version: 1\nstorage:\n  driver: s3\n  s3:\n    endpoint: "
      "http://127.0.0.1:7480\n    region: eu-west-1\n    bucket: berth\n"
      "    access_key_id_file: " +
      (dir / "s3.id") + "\n    secret_access_key_file: " + (dir / "s3.secret") +
      "\n    path_style: false\n    redirect_pulls: true\n    cache_size: 512MiB\n"
      "    cache_pushed: false\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->storage.driver, "s3");
  EXPECT_EQ(c->storage.s3.endpoint, "http://127.0.0.1:7480");
  EXPECT_EQ(c->storage.s3.region, "eu-west-1");
  EXPECT_EQ(c->storage.s3.bucket, "berth");
  EXPECT_EQ(c->storage.s3.access_key_id_file, dir / "s3.id");
  EXPECT_FALSE(c->storage.s3.path_style);
  EXPECT_TRUE(c->storage.s3.redirect_pulls);
  EXPECT_EQ(c->storage.s3.cache_size, uint64_t{512} << 20);
  EXPECT_FALSE(c->storage.s3.cache_pushed);
  auto v = validate(*c);
  EXPECT_TRUE(v) << v.error().message();

  ::setenv("BERTH_STORAGE_S3_BUCKET", "from-env", 1);
  auto s = apply_env(*c);
  ::unsetenv("BERTH_STORAGE_S3_BUCKET");
  ASSERT_TRUE(s);
  EXPECT_EQ(c->storage.s3.bucket, "from-env");
}

TEST(ConfigStorageTest, BadS3SettingsNameTheKey) {
  test::TempDir dir;
  test::write_file(dir / "k", "x");
  std::string files = "    access_key_id_file: " + (dir / "k") +
                      "\n    secret_access_key_file: " + (dir / "k") + "\n";
  auto expect_bad = [](const std::string& yaml, const std::string& key) {
    auto c = load_string("version: 1\n" + yaml);
    Status s = c ? validate(*c) : Status(c.error());
    ASSERT_FALSE(s) << yaml;
    EXPECT_NE(s.error().message().find(key), std::string::npos) << s.error().message();
  };
  std::string head = "storage:\n  driver: s3\n  s3:\n";
  expect_bad("storage:\n  driver: gcs\n", "storage.driver");
  expect_bad(head + "    bucket: berth\n" + files, "storage.s3.endpoint");
  expect_bad(head + "    endpoint: 127.0.0.1:7480\n    bucket: berth\n" + files,
             "storage.s3.endpoint");
  expect_bad(head + "    endpoint: http://h/path\n    bucket: berth\n" + files,
             "storage.s3.endpoint");
  expect_bad(head + "    endpoint: http://h\n" + files, "storage.s3.bucket");
  expect_bad(head + "    endpoint: http://h\n    bucket: Berth_Blobs\n" + files,
             "storage.s3.bucket");
  expect_bad(head + "    endpoint: http://h\n    bucket: berth\n    region: \"\"\n" + files,
             "storage.s3.region");
  expect_bad(head + "    endpoint: http://h\n    bucket: berth\n", "storage.s3.access_key_id_file");
  expect_bad(head + "    endpoint: http://h\n    bucket: berth\n    access_key_id_file: " +
                 (dir / "k") + "\n    secret_access_key_file: " + (dir / "missing") + "\n",
             "storage.s3.secret_access_key_file");
  expect_bad("storage:\n  s3:\n    redirect_pulls: maybe\n", "storage.s3.redirect_pulls");
  expect_bad("storage:\n  s3:\n    cache_min_free_percent: 95\n",
             "storage.s3.cache_min_free_percent");
  for (const char* size : {"big", "-1", "10 PiB", "1.5GiB", "GiB", "99999999999TiB"}) {
    expect_bad(std::string("storage:\n  s3:\n    cache_size: \"") + size + "\"\n",
               "storage.s3.cache_size");
  }
}

TEST(ConfigStorageTest, CacheSizesTakeUnits) {
  for (auto [text, bytes] :
       std::initializer_list<std::pair<const char*, uint64_t>>{{"0", 0},
                                                               {"4096", 4096},
                                                               {"20G", uint64_t{20} << 30},
                                                               {"20GiB", uint64_t{20} << 30},
                                                               {"20GB", 20'000'000'000},
                                                               {"1 TiB", uint64_t{1} << 40},
                                                               {"300MB", 300'000'000}}) {
    auto c =
        load_string(std::string("version: 1\nstorage:\n  s3:\n    cache_size: ") + text + "\n");
    ASSERT_TRUE(c) << text << ": " << c.error().message();
    EXPECT_EQ(c->storage.s3.cache_size, bytes) << text;
  }
}

}  // namespace
}  // namespace berth::config
