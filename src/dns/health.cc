// SPDX-License-Identifier: Apache-2.0
// Health checks (docs/dns.md "Health checks"): what a check is (JSON, validation), the pure
// state machine that turns results into HEALTHY/UNHEALTHY, and the HealthChecker that probes
// every check on a thread of its own. One Asio coroutine per check: wait (interval, with
// jitter), probe (TCP connect; HTTP(S) GET whose status must be 2xx/3xx), record. Every change
// of state publishes the full list of failing checks to dns::Service, whose next snapshot
// leaves their record sets out of answers.
//
// Threads: the checker's io_context runs on its own thread; create/remove/get/list run on the
// API's blocking pool. `mu` guards the probe map and every status; it is never held across a
// co_await, and Service::set_unhealthy (its own lock) is the only call made under it.
#include <arpa/inet.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "common/asio.h"
#include "common/async.h"
#include "common/duration.h"
#include "common/json.h"
#include "common/log.h"
#include "dns/dns.h"
#include "store/store.h"

// clang-format off
#include <boost/beast/ssl.hpp>
// clang-format on

namespace berth::dns {

namespace {

constexpr const char* kKind = "healthcheck";
constexpr size_t kMaxIdLength = 64;
constexpr size_t kMaxPathLength = 1024;
constexpr uint32_t kMaxIntervalSeconds = 3600;
constexpr uint32_t kMaxTimeoutSeconds = 60;
constexpr uint32_t kMaxThreshold = 10;
constexpr size_t kMaxResponseHeader = 16 * 1024;

Error invalid(const std::string& field, const std::string& what) {
  return Error(Errc::InvalidArgument, field + ": " + what);
}

// "ADDR:PORT" or "[IPv6]:PORT" → endpoint; nullopt when it is not one.
std::optional<asio::ip::tcp::endpoint> parse_target(const std::string& target) {
  std::string addr;
  std::string port;
  if (!target.empty() && target.front() == '[') {
    auto close = target.find("]:");
    if (close == std::string::npos) {
      return std::nullopt;
    }
    addr = target.substr(1, close - 1);
    port = target.substr(close + 2);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, addr.c_str(), buf) != 1) {
      return std::nullopt;
    }
  } else {
    auto colon = target.find(':');
    if (colon == std::string::npos || target.find(':', colon + 1) != std::string::npos) {
      return std::nullopt;
    }
    addr = target.substr(0, colon);
    port = target.substr(colon + 1);
    unsigned char buf[4];
    if (inet_pton(AF_INET, addr.c_str(), buf) != 1) {
      return std::nullopt;
    }
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  int p = std::stoi(port);
  if (p < 1 || p > 65535) {
    return std::nullopt;
  }
  beast::error_code ec;
  auto a = asio::ip::make_address(addr, ec);
  if (ec) {
    return std::nullopt;
  }
  return asio::ip::tcp::endpoint(a, static_cast<uint16_t>(p));
}

bool valid_host(const std::string& h) {
  if (h.empty() || h.size() > 260) {
    return false;
  }
  std::string name = h;
  if (auto colon = h.rfind(':'); colon != std::string::npos) {
    std::string port = h.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    name = h.substr(0, colon);
  }
  return !name.empty() && name.size() <= 253 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
             std::string::npos;
}

// A JSON duration: a number of seconds, or a string like "10s" / "1m" (whole seconds).
Result<uint32_t> seconds_field(const Json& j, const char* key) {
  const Json& v = j[key];
  if (v.is_number_unsigned() || v.is_number_integer()) {
    auto n = v.get<int64_t>();
    if (n < 0 || n > 86400) {
      return invalid(key, "must be a number of seconds");
    }
    return static_cast<uint32_t>(n);
  }
  if (v.is_string()) {
    auto d = parse_duration(v.get<std::string>());
    if (!d) {
      return invalid(key, d.error().message());
    }
    if (d->count() % 1000 != 0 || d->count() > 86400 * 1000) {
      return invalid(key, "must be whole seconds, at most a day ('" + v.get<std::string>() + "')");
    }
    return static_cast<uint32_t>(d->count() / 1000);
  }
  return invalid(key, "must be a number of seconds or a duration like \"10s\"");
}

Result<std::string> string_member(const Json& j, const char* key) {
  if (!j[key].is_string()) {
    return invalid(key, "must be a string");
  }
  return j[key].get<std::string>();
}

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

// The Host header: the user's, or the target as an authority ("[::1]:8443").
std::string host_header(const HealthCheck& c) { return c.host.empty() ? c.target : c.host; }

// The TLS server name: the Host without its port, unless it is an address (no SNI then).
std::string sni_name(const HealthCheck& c) {
  if (c.host.empty()) {
    return "";
  }
  std::string h = c.host.substr(0, c.host.rfind(':'));
  unsigned char buf[4];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 ? "" : h;
}

std::string describe(const std::string& step, const beast::error_code& ec, const HealthCheck& c) {
  if (ec == beast::error::timeout) {
    return step + ": timed out after " + std::to_string(c.timeout_seconds) + "s";
  }
  return step + ": " + ec.message();
}

// One probe of the check: "" when healthy, else what went wrong. Every step shares one deadline
// (the check's timeout), set once on the TCP stream.
awaitable<std::string> probe_once(HealthCheck c, asio::ssl::context* tls_ctx) {
  auto ep = parse_target(c.target);
  if (!ep) {
    co_return "target " + c.target + " is not ADDR:PORT";
  }
  auto ex = co_await asio::this_coro::executor;
  beast::error_code ec;
  beast::tcp_stream tcp(ex);
  tcp.expires_after(std::chrono::seconds(c.timeout_seconds));
  co_await tcp.async_connect(*ep, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return describe("connect", ec, c);
  }
  if (c.type == "TCP") {
    co_return "";
  }
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, c.path, 11};
  req.set(bhttp::field::host, host_header(c));
  req.set(bhttp::field::user_agent, "berth-health-check");
  req.set(bhttp::field::connection, "close");
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::empty_body> parser;
  parser.header_limit(kMaxResponseHeader);
  if (c.type == "HTTPS") {
    beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp), *tls_ctx);
    if (std::string sni = sni_name(c); !sni.empty()) {
      // SSL_set_tlsext_host_name, without the macro's C cast.
      SSL_ctrl(tls.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               sni.data());
    }
    co_await tls.async_handshake(asio::ssl::stream_base::client,
                                 asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return describe("TLS handshake", ec, c);
    }
    co_await bhttp::async_write(tls, req, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return describe("send request", ec, c);
    }
    co_await bhttp::async_read_header(tls, buf, parser, asio::redirect_error(use_awaitable, ec));
  } else {
    co_await bhttp::async_write(tcp, req, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return describe("send request", ec, c);
    }
    co_await bhttp::async_read_header(tcp, buf, parser, asio::redirect_error(use_awaitable, ec));
  }
  if (ec) {
    co_return describe("read response", ec, c);
  }
  unsigned status = parser.get().result_int();
  if (status < 200 || status > 399) {
    co_return "HTTP " + std::to_string(status);
  }
  co_return "";
}

}  // namespace

// ---- Values ---------------------------------------------------------------------------------

Json health_check_to_json(const HealthCheck& c) {
  Json j = Json::object();
  j["Id"] = c.id;
  j["Type"] = c.type;
  j["Target"] = c.target;
  if (c.type != "TCP") {
    j["Host"] = c.host;
    j["Path"] = c.path;
  }
  j["Interval"] = c.interval_seconds;
  j["Timeout"] = c.timeout_seconds;
  j["FailureThreshold"] = c.failure_threshold;
  if (c.created_at != 0) {
    j["CreatedAt"] = c.created_at;
  }
  return j;
}

Result<HealthCheck> health_check_from_json(const Json& j) {
  if (!j.is_object()) {
    return Error(Errc::InvalidArgument, "a health check must be a JSON object");
  }
  static const char* kKnown[] = {"Id",       "Type",    "Target",           "Host",     "Path",
                                 "Interval", "Timeout", "FailureThreshold", "CreatedAt"};
  // Not a structured binding: clang before 16 cannot capture one in the lambda (the fuzz build).
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return key == k; }) == std::end(kKnown)) {
      return invalid(key,
                     "unknown field (fields: Id, Type, Target, Host, Path, Interval, "
                     "Timeout, FailureThreshold)");
    }
  }
  HealthCheck c;
  for (const char* key : {"Id", "Type", "Target"}) {
    if (!j.contains(key)) {
      return invalid(key, "is required");
    }
  }
  BERTH_ASSIGN_OR_RETURN(c.id, string_member(j, "Id"));
  BERTH_ASSIGN_OR_RETURN(c.type, string_member(j, "Type"));
  for (auto& ch : c.type) {
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  BERTH_ASSIGN_OR_RETURN(c.target, string_member(j, "Target"));
  if (j.contains("Host") && !j["Host"].is_null()) {
    BERTH_ASSIGN_OR_RETURN(c.host, string_member(j, "Host"));
  }
  if (j.contains("Path") && !j["Path"].is_null()) {
    BERTH_ASSIGN_OR_RETURN(c.path, string_member(j, "Path"));
    if (c.type == "TCP" && c.path != "/" && !c.path.empty()) {
      return invalid("Path", "applies to HTTP and HTTPS checks only");
    }
    if (c.path.empty()) {
      c.path = "/";
    }
  }
  if (j.contains("Interval")) {
    BERTH_ASSIGN_OR_RETURN(c.interval_seconds, seconds_field(j, "Interval"));
  }
  if (j.contains("Timeout")) {
    BERTH_ASSIGN_OR_RETURN(c.timeout_seconds, seconds_field(j, "Timeout"));
  }
  if (j.contains("FailureThreshold")) {
    const Json& v = j["FailureThreshold"];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxThreshold) {
      return invalid("FailureThreshold", "must be a number from 1 to 10");
    }
    c.failure_threshold = static_cast<uint32_t>(v.get<int64_t>());
  }
  if (j.contains("CreatedAt") && j["CreatedAt"].is_number_integer()) {
    c.created_at = j["CreatedAt"].get<int64_t>();
  }
  BERTH_TRY(validate_health_check(c));
  return c;
}

Status validate_health_check(const HealthCheck& c) {
  if (c.id.empty() || c.id.size() > kMaxIdLength ||
      !std::isalnum(static_cast<unsigned char>(c.id[0])) ||
      c.id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
          std::string::npos) {
    return invalid("Id", "'" + c.id +
                             "' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                             "letter or digit");
  }
  if (c.type != "HTTP" && c.type != "HTTPS" && c.type != "TCP") {
    return invalid("Type", "'" + c.type + "' must be HTTP, HTTPS or TCP");
  }
  if (!parse_target(c.target)) {
    return invalid("Target", "'" + c.target +
                                 "' must be ADDR:PORT with an IP address (127.0.0.1:8080, "
                                 "[::1]:8443)");
  }
  if (c.type == "TCP" && !c.host.empty()) {
    return invalid("Host", "applies to HTTP and HTTPS checks only");
  }
  if (!c.host.empty() && !valid_host(c.host)) {
    return invalid("Host", "'" + c.host + "' is not a host name (web.example.com[:PORT])");
  }
  if (c.path.empty() || c.path.front() != '/' || c.path.size() > kMaxPathLength ||
      std::any_of(c.path.begin(), c.path.end(), [](char ch) { return ch <= ' ' || ch > '~'; })) {
    return invalid("Path", "must start with '/' and hold no spaces or control characters");
  }
  if (c.interval_seconds < 1 || c.interval_seconds > kMaxIntervalSeconds) {
    return invalid("Interval", "must be from 1s to 1h");
  }
  if (c.timeout_seconds < 1 || c.timeout_seconds > kMaxTimeoutSeconds) {
    return invalid("Timeout", "must be from 1s to 60s");
  }
  if (c.timeout_seconds > c.interval_seconds) {
    return invalid("Timeout", std::to_string(c.timeout_seconds) +
                                  "s is longer than the interval (" +
                                  std::to_string(c.interval_seconds) + "s)");
  }
  if (c.failure_threshold < 1 || c.failure_threshold > kMaxThreshold) {
    return invalid("FailureThreshold", "must be a number from 1 to 10");
  }
  return ok();
}

std::string_view health_state_name(HealthState s) {
  switch (s) {
    case HealthState::Healthy:
      return "HEALTHY";
    case HealthState::Unhealthy:
      return "UNHEALTHY";
    case HealthState::Unknown:
      break;
  }
  return "UNKNOWN";
}

HealthStatus next_health_status(const HealthStatus& s, bool ok, std::string error,
                                uint32_t threshold, int64_t now) {
  HealthStatus n = s;
  n.consecutive = (s.last_checked != 0 && s.last_ok == ok) ? s.consecutive + 1 : 1;
  n.last_ok = ok;
  n.last_checked = now;
  n.last_error = ok ? "" : std::move(error);
  HealthState seen = ok ? HealthState::Healthy : HealthState::Unhealthy;
  if (s.state == HealthState::Unknown ||
      (s.state != seen && n.consecutive >= std::max<uint32_t>(threshold, 1))) {
    n.state = seen;
  }
  return n;
}

// ---- The checker ----------------------------------------------------------------------------

namespace {

struct Probe {
  Probe(HealthCheck c, asio::io_context& ioc) : check(std::move(c)), timer(ioc) {}
  const HealthCheck check;
  asio::steady_timer timer;  // the checker's thread only
  // Guarded by Impl::mu.
  HealthStatus status;
  bool removed = false;
};

}  // namespace

struct HealthChecker::Impl {
  Impl(store::MetadataStore& s, Service& d) : store(s), service(d) {
    tls.set_verify_mode(asio::ssl::verify_none);  // docs/dns.md: certificates are not checked
  }

  store::MetadataStore& store;
  Service& service;
  asio::ssl::context tls{asio::ssl::context::tls_client};  // outlives the io_context's frames
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::shared_ptr<spdlog::logger> log = log::get("dns");

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Probe>> probes;  // by id
  bool running = false;
  std::mt19937 rng{std::random_device{}()};

  // Waits of a loop: the first in [0, min(interval, 1s)) so checks do not start in step, later
  // ones the interval ±10%.
  std::chrono::milliseconds delay(const HealthCheck& c, bool first) {
    std::lock_guard lock(mu);
    int64_t ms = int64_t{c.interval_seconds} * 1000;
    if (first) {
      return std::chrono::milliseconds(
          std::uniform_int_distribution<int64_t>(0, std::min<int64_t>(ms, 1000) - 1)(rng));
    }
    return std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(ms * 9 / 10, ms * 11 / 10)(rng));
  }

  void publish_locked() {
    std::vector<std::string> failing;
    for (const auto& [id, p] : probes) {
      if (p->status.state == HealthState::Unhealthy) {
        failing.push_back(id);
      }
    }
    service.set_unhealthy(std::move(failing));
  }

  bool gone(const Probe& p) {
    std::lock_guard lock(mu);
    return p.removed || stopping.load();
  }

  void record(Probe& p, std::string error) {
    std::lock_guard lock(mu);
    if (p.removed) {
      return;
    }
    HealthStatus before = p.status;
    bool ok = error.empty();  // before the move below: argument order is unspecified
    p.status =
        next_health_status(before, ok, std::move(error), p.check.failure_threshold, now_unix());
    if (p.status.state != before.state) {
      auto level =
          p.status.state == HealthState::Unhealthy ? spdlog::level::warn : spdlog::level::info;
      log->log(level, "health check state changed id={} old={} new={} target={} error={}",
               p.check.id, health_state_name(before.state), health_state_name(p.status.state),
               p.check.target, p.status.last_error.empty() ? "-" : p.status.last_error);
      publish_locked();
    } else if (!p.status.last_ok) {
      log->debug("health check failed id={} consecutive={} error={}", p.check.id,
                 p.status.consecutive, p.status.last_error);
    }
  }

  static awaitable<void> loop(Impl* self, std::shared_ptr<Probe> p) {
    auto wait = self->delay(p->check, true);
    while (true) {
      p->timer.expires_after(wait);
      beast::error_code ec;
      co_await p->timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (self->gone(*p)) {
        co_return;
      }
      std::string error = co_await probe_once(p->check, &self->tls);
      if (self->gone(*p)) {
        co_return;
      }
      self->record(*p, std::move(error));
      wait = self->delay(p->check, false);
    }
  }

  void spawn_locked(const std::shared_ptr<Probe>& p) {
    if (running) {
      spawn_logged(ioc.get_executor(), loop(this, p), "dns.health." + p->check.id);
    }
  }

  HealthCheckInfo info_locked(const Probe& p) const { return {p.check, p.status}; }
};

HealthChecker::HealthChecker(store::MetadataStore& store, Service& service)
    : impl_(std::make_unique<Impl>(store, service)) {}

HealthChecker::~HealthChecker() { stop(); }

Status HealthChecker::start() {
  auto& s = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto rows, s.store.list_objects(kKind));
  std::lock_guard lock(s.mu);
  if (s.running || s.stopping) {
    return ok();
  }
  for (const auto& row : rows) {
    auto j = parse_json(row.document, "health check document");
    auto c = j ? health_check_from_json(*j) : Result<HealthCheck>(j.error());
    if (!c) {
      s.log->error("health check {} is not run: {}", row.name, c.error().message());
      continue;
    }
    std::string id = c->id;  // the right side of `=` is evaluated first (C++17)
    s.probes[id] = std::make_shared<Probe>(std::move(*c), s.ioc);
  }
  s.running = true;
  s.work.emplace(asio::make_work_guard(s.ioc));
  for (const auto& [id, p] : s.probes) {
    s.spawn_locked(p);
  }
  s.thread = std::thread([&ioc = s.ioc] { ioc.run(); });
  s.log->info("health checks started count={}", s.probes.size());
  return ok();
}

void HealthChecker::stop() {
  auto& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    s.stopping = true;
    s.running = false;
  }
  // Probes in flight are abandoned: their frames go with the io_context.
  s.work.reset();
  s.ioc.stop();
  if (s.thread.joinable()) {
    s.thread.join();
  }
}

Result<HealthCheckInfo> HealthChecker::create(HealthCheck check) {
  auto& s = *impl_;
  BERTH_TRY(validate_health_check(check));
  {
    std::lock_guard lock(s.mu);
    if (s.probes.count(check.id) != 0) {
      return Error(Errc::AlreadyExists, "health check " + check.id + " already exists");
    }
  }
  check.created_at = now_unix();
  store::ObjectRow row{kKind, check.id, health_check_to_json(check).dump(), check.created_at,
                       check.created_at};
  if (auto put = s.store.put_object(row, true); !put) {
    if (put.error().code() == Errc::AlreadyExists) {
      return Error(Errc::AlreadyExists, "health check " + check.id + " already exists");
    }
    return put.error().with_context("store health check " + check.id);
  }
  std::lock_guard lock(s.mu);
  auto p = std::make_shared<Probe>(check, s.ioc);
  s.probes[check.id] = p;
  s.spawn_locked(p);
  s.log->info("health check created id={} type={} target={}", check.id, check.type, check.target);
  return s.info_locked(*p);
}

Status HealthChecker::remove(std::string_view id_in) {
  auto& s = *impl_;
  std::string id(id_in);
  {
    std::lock_guard lock(s.mu);
    if (s.probes.count(id) == 0) {
      return Error(Errc::NotFound, "health check " + id + " does not exist");
    }
  }
  // A record set that names the check would silently turn "always healthy": refuse instead.
  BERTH_ASSIGN_OR_RETURN(auto zones, s.service.list_zones());
  for (const auto& z : zones) {
    for (const auto& set : z.sets) {
      if (set.health_check == id) {
        return Error(Errc::FailedPrecondition,
                     "health check " + id + " is used by record set " + set.name + " " + set.type +
                         (set.set_identifier.empty() ? "" : " (set " + set.set_identifier + ")") +
                         " in zone " + z.name + "; change or delete that record set first");
      }
    }
  }
  BERTH_TRY(s.store.delete_object(kKind, id));
  std::lock_guard lock(s.mu);
  auto it = s.probes.find(id);
  if (it == s.probes.end()) {
    return ok();  // another request removed it meanwhile
  }
  auto p = it->second;
  p->removed = true;
  s.probes.erase(it);
  asio::post(s.ioc, [p] { p->timer.cancel(); });
  s.publish_locked();
  s.log->info("health check deleted id={}", id);
  return ok();
}

Result<HealthCheckInfo> HealthChecker::get(std::string_view id) const {
  auto& s = *impl_;
  std::lock_guard lock(s.mu);
  auto it = s.probes.find(std::string(id));
  if (it == s.probes.end()) {
    return Error(Errc::NotFound, "health check " + std::string(id) + " does not exist");
  }
  return s.info_locked(*it->second);
}

std::vector<HealthCheckInfo> HealthChecker::list() const {
  auto& s = *impl_;
  std::lock_guard lock(s.mu);
  std::vector<HealthCheckInfo> out;
  for (const auto& [id, p] : s.probes) {
    out.push_back(s.info_locked(*p));
  }
  return out;
}

Status HealthChecker::check_references(const std::vector<Change>& changes) const {
  auto& s = *impl_;
  std::lock_guard lock(s.mu);
  for (size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    if (c.action == Change::Action::Delete || c.set.health_check.empty()) {
      continue;
    }
    if (s.probes.count(c.set.health_check) == 0) {
      return Error(Errc::InvalidArgument, "Changes[" + std::to_string(i) +
                                              "].ResourceRecordSet.HealthCheckId: health "
                                              "check '" +
                                              c.set.health_check +
                                              "' does not exist (berth dns healthcheck ls)");
    }
  }
  return ok();
}

}  // namespace berth::dns
