// SPDX-License-Identifier: Apache-2.0
// Private to the daemon: Daemon::Impl, everything a running berthd holds. Its code is in
// daemon.cc (wiring: create, start, stop), front.cc (what every request passes first:
// authentication by key, token or console session, then routing) and timers.cc (the
// periodic work: audit flushing, maintenance, the DNS service list, traffic samples).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/api.h"
#include "builder/build.h"
#include "common/async.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secret_box.h"
#include "common/url.h"
#include "console/console.h"
#include "daemon/daemon.h"
#include "deploy/deploy.h"
#include "dns/dns.h"
#include "dns/tsig.h"
#include "dns/update.h"
#include "domains/domains.h"
#include "http/http.h"
#include "iam/iam.h"
#include "registry/registry.h"
#include "router/router.h"
#include "runtime/runtime.h"
#include "store/store.h"

namespace berth::daemon {

// Image content for the runtime: manifests from the store, blobs from the registry's files.
class RegistryImageSource final : public runtime::ImageSource {
 public:
  RegistryImageSource(store::MetadataStore& store, registry::Registry& registry)
      : store_(store), registry_(registry) {}
  Result<std::pair<std::string, std::string>> manifest(const std::string& repository,
                                                       const std::string& digest) override {
    BERTH_ASSIGN_OR_RETURN(auto repo, store_.get_repository(repository));
    BERTH_ASSIGN_OR_RETURN(auto m, store_.get_manifest(repo.id, digest));
    return std::make_pair(m.content, m.media_type);
  }
  Result<std::string> blob_path(const std::string& digest) override {
    return registry_.blob_file(digest);
  }

 private:
  store::MetadataStore& store_;
  registry::Registry& registry_;
};

struct Daemon::Impl {
  config::Config cfg;
  int lock_fd = -1;
  store::MetadataStorePtr store;
  std::unique_ptr<BlockingPool> pool;
  // One io_context per I/O thread (see http::Server).
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  EventBus bus;
  std::unique_ptr<registry::Registry> registry;
  std::shared_ptr<iam::PolicyAuthorizer> policy_authz;  // null when iam.enforce is off
  std::shared_ptr<iam::TokenSigner> signer;
  std::unique_ptr<iam::AuditLog> audit;
  std::unique_ptr<iam::Service> iam;
  // Failed authentications per (key id, source address) and per address, for the lockout.
  iam::AuthThrottle throttle;
  std::unique_ptr<api::Api> api;
  std::unique_ptr<console::Sessions> sessions;  // signed-in browsers; null: console off
  std::unique_ptr<http::Server> server;
  // Services: runtime + router + controller (runtime and controller absent when disabled).
  std::unique_ptr<RegistryImageSource> image_source;
  std::unique_ptr<runtime::Runtime> runtime;
  std::unique_ptr<runtime::ImagePreparer> preparer;
  std::unique_ptr<router::Router> router;
  std::unique_ptr<deploy::Controller> controller;
  // DNS: the hosted zones and the server answering from them.
  std::unique_ptr<dns::Service> dns;
  // TSIG keys and the UPDATE handler (RFC 2136): before dns_server, which uses them.
  std::unique_ptr<dns::TsigKeyring> dns_tsig;
  std::unique_ptr<dns::UpdateHandler> dns_updates;
  std::unique_ptr<dns::Server> dns_server;
  bool dns_listen_defaulted = false;  // dns.listen not set: a busy default port is no error
  std::unique_ptr<dns::HealthChecker> dns_health;  // probes; publishes to dns
  std::unique_ptr<domains::Manager> domains;       // custom domains, certificates, renewal
  // Builds: after everything they use, so they are destroyed first.
  std::unique_ptr<builder::Service> build;
  uint16_t router_port = 0;
  uint16_t router_tls_port = 0;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  bool stopped = false;
  std::shared_ptr<spdlog::logger> log = log::get("daemon");

  ~Impl() {
    if (lock_fd >= 0) {
      ::close(lock_fd);
    }
  }

  // An access key's principal ("user/NAME"), or Unauthenticated; ResourceExhausted with
  // *retry_after set while the key id or the address is locked out. HTTP Basic and the
  // console's sign-in both come here.
  Result<std::string> check_key(const std::string& id, const std::string& secret,
                                const std::string& peer, std::chrono::seconds* retry_after);

  // A console session named by the cookie, for /api/v1/ requests without an Authorization
  // header. A request that changes something must also carry the session's CSRF token, which
  // a page of another site cannot read; signing in itself is exempt (it has no session yet).
  // No cookie, or an unknown or expired session: anonymous (then the API answers 401).
  Status session_auth(http::Exchange& ex);

  // Resolves the request's principal from its Authorization header. Ok with "anonymous" when
  // there is none; Unauthenticated or ResourceExhausted (lockout, with *retry_after set) when
  // it is wrong.
  Status authenticate(http::Exchange& ex, std::chrono::seconds* retry_after);

  awaitable<void> handle(http::Exchange& ex);

  // The console's files (public: they hold no data; the data comes from /api/v1 with the
  // session). "/" and "/console" lead to "/console/".
  awaitable<void> console_page(http::Exchange& ex);

  // Samples the router's per-service counters for the console's charts.
  static awaitable<void> metrics_sampler(Impl* self);

  // Prometheus scrapes authenticate like any client and need metrics:Get.
  awaitable<void> metrics(http::Exchange& ex);

  // Not a coroutine (GCC 12: no temporaries of this kind inside co_await expressions).
  awaitable<void> send_auth_failure(http::Exchange& ex, const Error& e,
                                    std::chrono::seconds retry_after = std::chrono::seconds(0));

  // Writes the audit queue once a second.
  static awaitable<void> audit_flusher(Impl* self);

  // Upload expiry (and gc, when configured) on timers.
  // Keeps DNS's list of services current (an ALIAS to a service answers only while it exists).
  static awaitable<void> dns_sync(Impl* self);

  // Binds the router's plain and TLS listeners. A busy *default* TLS address is logged and
  // the router serves without TLS (as DNS does on its default port); an address the operator
  // gave must bind, or the start fails.
  static Status listen_router(Impl* self);

  static awaitable<void> maintenance(Impl* self);
};

}  // namespace berth::daemon
