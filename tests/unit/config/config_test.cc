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
#include <vector>

#include "support/harness.h"

namespace berth::config {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

using test::ScopedEnv;

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

using Hosts = std::vector<std::string>;

TEST(DnsAddressesTest, ServiceAddressesAreTheRoutersWithoutWildcards) {
  Config c;
  EXPECT_EQ(dns_service_addresses(c), Hosts{"127.0.0.1"});  // the default router address
  c.router_listen = {"0.0.0.0:80", "[::]:80"};
  EXPECT_EQ(dns_service_addresses(c), Hosts{});  // a wildcard is no address to give anyone
  c.router_listen = {"192.0.2.10:80", "[2001:db8::10]:80", "192.0.2.10:8080"};
  EXPECT_EQ(dns_service_addresses(c), (Hosts{"192.0.2.10", "2001:db8::10"}));
}

TEST(DnsAddressesTest, TlsAddressesCountOnlyWhenSet) {
  Config c;
  c.router_listen = {"0.0.0.0:80"};
  c.router_tls_listen = {"[2001:db8::10]:443"};  // HTTPS-only IPv6: still AAAA
  EXPECT_EQ(dns_service_addresses(c), Hosts{"2001:db8::10"});
  c.router_tls_enabled = false;
  EXPECT_EQ(dns_service_addresses(c), Hosts{});
}

TEST(DnsAddressesTest, LoopbackCountsOnlyWhenEveryAddressIsLoopback) {
  Config c;
  c.router_listen = {"127.0.0.1:8080", "[::1]:8080"};  // a development machine
  EXPECT_EQ(dns_service_addresses(c), (Hosts{"127.0.0.1", "::1"}));
  // A local proxy's loopback listener next to a public one: clients cannot come there.
  c.router_listen = {"127.0.0.1:8080", "192.0.2.10:80", "[::1]:8080", "[2001:db8::10]:80"};
  EXPECT_EQ(dns_service_addresses(c), (Hosts{"192.0.2.10", "2001:db8::10"}));
  c.router_listen = {"127.0.0.1:8080"};
  c.router_tls_listen = {"192.0.2.10:443"};
  EXPECT_EQ(dns_service_addresses(c), Hosts{"192.0.2.10"});
}

TEST(DnsAddressesTest, EachAddressOnceLocalhostAsLoopbackNamesDropped) {
  Config c;
  c.router_listen = {"localhost:8080", "127.0.0.1:8081", "web.example.com:80"};
  EXPECT_EQ(dns_service_addresses(c), Hosts{"127.0.0.1"});
  c.router_listen = {"localhost:8080", "192.0.2.10:80"};  // loopback next to a public one
  EXPECT_EQ(dns_service_addresses(c), Hosts{"192.0.2.10"});
  c.dns.listen = {"192.0.2.53:53", "192.0.2.53:5353", "ns.example.com:53"};
  EXPECT_EQ(dns_nameserver_addresses(c), Hosts{"192.0.2.53"});
  c.listen = "localhost:5000";
  EXPECT_EQ(dns_registry_addresses(c), Hosts{"127.0.0.1"});
}

TEST(DnsAddressesTest, SetAddressesWinAsGiven) {
  Config c;
  c.router_listen = {"192.0.2.10:80"};
  c.dns.service_addresses = {"127.0.0.1", "198.51.100.7"};
  EXPECT_EQ(dns_service_addresses(c), (Hosts{"127.0.0.1", "198.51.100.7"}));
  c.dns.nameserver_addresses = {"198.51.100.53"};
  EXPECT_EQ(dns_nameserver_addresses(c), Hosts{"198.51.100.53"});
  c.dns.registry_addresses = {"198.51.100.5"};
  EXPECT_EQ(dns_registry_addresses(c), Hosts{"198.51.100.5"});
}

TEST(DnsAddressesTest, NameServerAndRegistryAddressesFromTheirListeners) {
  Config c;
  EXPECT_EQ(dns_nameserver_addresses(c), Hosts{"127.0.0.1"});  // the default DNS address
  c.dns.listen = {"0.0.0.0:53", "[2001:db8::53]:53", "192.0.2.53:53"};
  EXPECT_EQ(dns_nameserver_addresses(c), (Hosts{"2001:db8::53", "192.0.2.53"}));
  c.dns.enabled = false;
  EXPECT_EQ(dns_nameserver_addresses(c), Hosts{});
  c.listen = "192.0.2.5:5000";
  EXPECT_EQ(dns_registry_addresses(c), Hosts{"192.0.2.5"});
  c.listen = "0.0.0.0:5000";
  EXPECT_EQ(dns_registry_addresses(c), Hosts{});
}

}  // namespace
}  // namespace berth::config
