// SPDX-License-Identifier: Apache-2.0
// Health checks without sockets: the threshold state machine, the JSON form and its
// validation, and the checker's bookkeeping (store, references, refusals) with a SQLite store
// in memory. Probing itself is covered by tests/integration/dns_health_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/json.h"
#include "dns/dns.h"
#include "store/store.h"

namespace berth::dns {
namespace {

using ::testing::HasSubstr;

HealthStatus feed(HealthStatus s, const std::vector<bool>& results, uint32_t threshold) {
  int64_t t = 1000;
  for (bool ok : results) {
    s = next_health_status(s, ok, ok ? "" : "connect: Connection refused", threshold, ++t);
  }
  return s;
}

TEST(DnsHealthState, FirstResultDecidesUnknown) {
  HealthStatus s;
  EXPECT_EQ(s.state, HealthState::Unknown);
  EXPECT_EQ(feed(s, {true}, 3).state, HealthState::Healthy);
  auto bad = feed(s, {false}, 3);
  EXPECT_EQ(bad.state, HealthState::Unhealthy);
  EXPECT_EQ(bad.last_error, "connect: Connection refused");
  EXPECT_EQ(bad.consecutive, 1u);
  EXPECT_EQ(bad.last_checked, 1001);
}

TEST(DnsHealthState, FlipsOnlyAfterThresholdConsecutiveResults) {
  auto s = feed({}, {true}, 3);
  // Two failures are not enough at threshold 3, and a success resets the count.
  s = feed(s, {false, false}, 3);
  EXPECT_EQ(s.state, HealthState::Healthy);
  EXPECT_EQ(s.consecutive, 2u);
  EXPECT_FALSE(s.last_ok);
  s = feed(s, {true, false, false}, 3);
  EXPECT_EQ(s.state, HealthState::Healthy);
  s = feed(s, {false}, 3);
  EXPECT_EQ(s.state, HealthState::Unhealthy);
  EXPECT_EQ(s.consecutive, 3u);
  // Back to healthy takes as many successes in a row.
  s = feed(s, {true, true}, 3);
  EXPECT_EQ(s.state, HealthState::Unhealthy);
  EXPECT_EQ(s.last_error, "");
  s = feed(s, {true}, 3);
  EXPECT_EQ(s.state, HealthState::Healthy);
}

TEST(DnsHealthState, ThresholdOneFollowsEveryResult) {
  auto s = feed({}, {true, false}, 1);
  EXPECT_EQ(s.state, HealthState::Unhealthy);
  s = feed(s, {true}, 1);
  EXPECT_EQ(s.state, HealthState::Healthy);
}

TEST(DnsHealthState, Names) {
  EXPECT_EQ(health_state_name(HealthState::Unknown), "UNKNOWN");
  EXPECT_EQ(health_state_name(HealthState::Healthy), "HEALTHY");
  EXPECT_EQ(health_state_name(HealthState::Unhealthy), "UNHEALTHY");
}

TEST(DnsHealthJson, DefaultsAndRoundTrip) {
  auto c =
      health_check_from_json(Json{{"Id", "web"}, {"Type", "http"}, {"Target", "127.0.0.1:8080"}});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->type, "HTTP");
  EXPECT_EQ(c->path, "/");
  EXPECT_EQ(c->interval_seconds, 10u);
  EXPECT_EQ(c->timeout_seconds, 2u);
  EXPECT_EQ(c->failure_threshold, 3u);

  HealthCheck full;
  full.id = "api.v6";
  full.type = "HTTPS";
  full.target = "[::1]:8443";
  full.host = "web.localhost";
  full.path = "/healthz?x=1";
  full.interval_seconds = 30;
  full.timeout_seconds = 5;
  full.failure_threshold = 2;
  full.created_at = 1700000000;
  auto back = health_check_from_json(health_check_to_json(full));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, full);
}

TEST(DnsHealthJson, DurationsAsStringsOrSeconds) {
  auto c = health_check_from_json(Json{{"Id", "t"},
                                       {"Type", "TCP"},
                                       {"Target", "127.0.0.1:22"},
                                       {"Interval", "1m"},
                                       {"Timeout", 3}});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->interval_seconds, 60u);
  EXPECT_EQ(c->timeout_seconds, 3u);
  EXPECT_EQ(health_check_to_json(*c).count("Host"), 0u);  // TCP has no Host or Path
}

TEST(DnsHealthJson, BadChecksNameTheField) {
  struct Bad {
    Json j;
    std::string says;
  };
  Json base = {{"Id", "web"}, {"Type", "HTTP"}, {"Target", "127.0.0.1:8080"}};
  auto with = [&](const std::string& k, Json v) {
    Json j = base;
    j[k] = std::move(v);
    return j;
  };
  std::vector<Bad> bad = {
      {Json{{"Type", "HTTP"}, {"Target", "127.0.0.1:80"}}, "Id: is required"},
      {with("Id", "-x"), "Id"},
      {with("Id", "a b"), "Id"},
      {with("Id", std::string(65, 'a')), "Id"},
      {with("Type", "ICMP"), "Type"},
      {with("Target", "localhost:80"), "Target"},
      {with("Target", "127.0.0.1"), "Target"},
      {with("Target", "127.0.0.1:0"), "Target"},
      {with("Target", "127.0.0.1:65536"), "Target"},
      {with("Target", "::1:80"), "Target"},
      {with("Host", "web.localhost\r\nX-Evil: 1"), "Host"},
      {with("Path", "healthz"), "Path"},
      {with("Path", "/a b"), "Path"},
      {with("Interval", "0s"), "Interval"},
      {with("Interval", "1500ms"), "Interval"},
      {with("Interval", "2h"), "Interval"},
      {with("Timeout", 61), "Timeout"},
      {with("Interval", "1s"), "Timeout"},  // the default 2s timeout exceeds it
      {with("FailureThreshold", 0), "FailureThreshold"},
      {with("FailureThreshold", 11), "FailureThreshold"},
      {with("Intervall", 5), "Intervall: unknown field"},
      {Json{{"Id", "t"}, {"Type", "TCP"}, {"Target", "127.0.0.1:1"}, {"Host", "x"}}, "Host"},
      {Json{{"Id", "t"}, {"Type", "TCP"}, {"Target", "127.0.0.1:1"}, {"Path", "/x"}}, "Path"},
  };
  for (const auto& b : bad) {
    auto c = health_check_from_json(b.j);
    ASSERT_FALSE(c) << b.j.dump();
    EXPECT_EQ(c.error().code(), Errc::InvalidArgument);
    EXPECT_THAT(c.error().message(), HasSubstr(b.says)) << b.j.dump();
  }
}

class DnsHealthChecker : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::open_sqlite(":memory:");
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
    service_ = std::make_unique<Service>(*store_, Settings{});
    ASSERT_TRUE(service_->load());
    ASSERT_TRUE(service_->create_zone("example.com"));
  }

  static HealthCheck check(std::string id) {
    HealthCheck c;
    c.id = std::move(id);
    c.type = "TCP";
    c.target = "127.0.0.1:9";  // never started here: nothing is probed
    return c;
  }

  static Change policy_set(std::string set_id, std::string health_check) {
    RecordSet s;
    s.name = "www.example.com";
    s.type = "A";
    s.values = {"127.0.0.2"};
    s.set_identifier = std::move(set_id);
    s.failover = "PRIMARY";
    s.health_check = std::move(health_check);
    return {Change::Action::Upsert, s};
  }

  store::MetadataStorePtr store_;
  std::unique_ptr<Service> service_;
};

TEST_F(DnsHealthChecker, CreateStoresAndRefusesDuplicates) {
  HealthChecker hc(*store_, *service_);
  auto c = hc.create(check("web"));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->status.state, HealthState::Unknown);
  EXPECT_NE(c->check.created_at, 0);
  auto again = hc.create(check("web"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::AlreadyExists);
  auto rows = store_->list_objects("healthcheck");
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].name, "web");

  // A second checker (a restart) reads it back from the store.
  HealthChecker restarted(*store_, *service_);
  ASSERT_TRUE(restarted.start());
  auto got = restarted.get("web");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->check.target, "127.0.0.1:9");
  restarted.stop();
  EXPECT_EQ(restarted.list().size(), 1u);
}

TEST_F(DnsHealthChecker, BatchMayNameOnlyExistingChecks) {
  HealthChecker hc(*store_, *service_);
  auto bad = hc.check_references({policy_set("a", "nope")});
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("Changes[0].ResourceRecordSet.HealthCheckId"));
  EXPECT_THAT(bad.error().message(), HasSubstr("nope"));
  ASSERT_TRUE(hc.create(check("web")));
  EXPECT_TRUE(hc.check_references({policy_set("a", "web")}));
  // Deleting a set that names a vanished check stays possible.
  Change del = policy_set("a", "gone");
  del.action = Change::Action::Delete;
  EXPECT_TRUE(hc.check_references({del}));
}

TEST_F(DnsHealthChecker, RemoveRefusesWhileARecordSetUsesIt) {
  HealthChecker hc(*store_, *service_);
  ASSERT_TRUE(hc.create(check("web")));
  ASSERT_TRUE(service_->change("example.com", {policy_set("primary", "web")}));
  auto r = hc.remove("web");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::FailedPrecondition);
  EXPECT_THAT(r.error().message(), HasSubstr("www.example.com A (set primary)"));
  EXPECT_TRUE(hc.get("web"));

  Change del = policy_set("primary", "web");
  del.action = Change::Action::Delete;
  ASSERT_TRUE(service_->change("example.com", {del}));
  ASSERT_TRUE(hc.remove("web"));
  EXPECT_EQ(hc.get("web").error().code(), Errc::NotFound);
  EXPECT_EQ(hc.remove("web").error().code(), Errc::NotFound);
  auto rows = store_->list_objects("healthcheck");
  ASSERT_TRUE(rows);
  EXPECT_TRUE(rows->empty());
}

}  // namespace
}  // namespace berth::dns
