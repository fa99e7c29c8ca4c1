// SPDX-License-Identifier: Apache-2.0
// config/ by section: the router, runtime and domains; builds; listener limits; the store
// (sqlite or postgres) and blob storage (fs or s3). Loading, the environment and validation in
// general are in config_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "config/config.h"
#include "support/harness.h"

namespace berth::config {
namespace {

using test::ScopedEnv;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

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

// The keys of docs/domains.md: the issuer, the ACME server and how to trust it, from the file
// and from the environment; each bad value names its key.
TEST(ConfigServicesTest, TlsIssuerAndAcmeKeys) {
  test::TempDir t;
  std::string bundle = t / "pebble.pem";
  test::write_file(bundle, "-----BEGIN CERTIFICATE-----\n");
  auto c = load_string(
      "tls:\n  issuer: acme\nacme:\n  directory_url: https://acme.test/dir\n"
      "  email: ops@example.com\n  ca_bundle: " +
      bundle + "\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->tls.issuer, "acme");
  EXPECT_EQ(c->acme.directory_url, "https://acme.test/dir");
  EXPECT_EQ(c->acme.email, "ops@example.com");
  EXPECT_EQ(c->acme.ca_bundle, bundle);
  EXPECT_TRUE(validate(*c));
  EXPECT_EQ(Config{}.tls.issuer, "internal");

  auto bad = load_string("tls:\n  issuer: letsencrypt\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(),
              HasSubstr("tls.issuer: must be internal or acme, not 'letsencrypt'"));
  Config plain;
  plain.tls.issuer = "acme";
  plain.acme.directory_url = "http://acme.test/dir";
  auto s = validate(plain);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(),
              HasSubstr("acme.directory_url: 'http://acme.test/dir' is not an https:// URL"));
  plain.acme.directory_url.clear();
  s = validate(plain);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(),
              HasSubstr("acme.directory_url: tls.issuer is acme: set the ACME server's https://"));
  Config unreadable;
  unreadable.acme.ca_bundle = t / "missing.pem";
  s = validate(unreadable);
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(),
              HasSubstr("acme.ca_bundle: " + t / "missing.pem" + ": cannot read the file"));

  ScopedEnv issuer("BERTH_TLS_ISSUER", "acme");
  ScopedEnv url("BERTH_ACME_DIRECTORY_URL", "https://acme.test/env");
  ScopedEnv email("BERTH_ACME_EMAIL", "env@example.com");
  Config env;
  ASSERT_TRUE(apply_env(env));
  EXPECT_EQ(env.tls.issuer, "acme");
  EXPECT_EQ(env.acme.directory_url, "https://acme.test/env");
  EXPECT_EQ(env.acme.email, "env@example.com");
  EXPECT_TRUE(validate(env));
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
    EXPECT_EQ(s.error().message().rfind("tls.dns_check_resolver: '", 0), 0u) << s.error().message();
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
