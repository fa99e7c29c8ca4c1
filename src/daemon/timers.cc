// SPDX-License-Identifier: Apache-2.0
// berthd's periodic work, each a coroutine on the first I/O context: the audit queue's
// flushes, maintenance (expired uploads, IAM reloads, gc, lifecycle rules), the DNS
// service's list of services, and the traffic samples behind the console's charts.
#include "daemon/impl.h"

namespace berth::daemon {

// Samples the router's per-service counters for the console's charts.
awaitable<void> Daemon::Impl::metrics_sampler(Impl* self) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!self->stopped) {
    self->api->sample_metrics();
    timer.expires_after(api::Api::metrics_interval());
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      break;
    }
  }
}

// Writes the audit queue once a second.
awaitable<void> Daemon::Impl::audit_flusher(Impl* self) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!self->stopped) {
    timer.expires_after(std::chrono::seconds(1));
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (self->stopped || ec) {
      break;
    }
    // Failed writes stay queued and back off; flush_if_due() skips until the next try.
    auto flush = [audit = self->audit.get()] { return audit->flush_if_due(); };
    Status fs = co_await run_blocking(*self->pool, std::move(flush));
    if (!fs) {
      self->log->warn("audit flush failed error={}", fs.error().message());
    }
  }
}

// Upload expiry (and gc, when configured) on timers.
// Keeps DNS's list of services current (an ALIAS to a service answers only while it exists).
awaitable<void> Daemon::Impl::dns_sync(Impl* self) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!self->stopped && self->dns) {
    auto list = [store = self->store.get()] { return store->list_services(); };
    auto services = co_await run_blocking(*self->pool, std::move(list));
    if (services) {
      std::vector<std::string> names;
      for (const auto& sv : *services) {
        names.push_back(sv.name);
      }
      self->dns->set_services(std::move(names));
    }
    timer.expires_after(std::chrono::seconds(2));
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      break;
    }
  }
}

awaitable<void> Daemon::Impl::maintenance(Impl* self) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto upload_every = std::min<std::chrono::seconds>(
      std::chrono::seconds(600),
      std::max<std::chrono::seconds>(std::chrono::seconds(1), self->cfg.registry.upload_ttl / 4));
  auto gc_every = self->cfg.registry.gc_interval;
  auto next_gc = std::chrono::steady_clock::now() + gc_every;
  // Lifecycle rules on their own interval; a short one (tests) shortens the tick too.
  auto lifecycle_every = self->cfg.registry.lifecycle_interval;
  if (lifecycle_every.count() > 0) {
    upload_every = std::min(upload_every, lifecycle_every);
  }
  auto next_lifecycle = std::chrono::steady_clock::now() + lifecycle_every;
  while (!self->stopped) {
    timer.expires_after(upload_every);
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (self->stopped || ec) {
      break;
    }
    co_await self->registry->expire_uploads();
    if (self->policy_authz) {
      // Picks up repository deletions (their resource policies go with them).
      auto reload = [authz = self->policy_authz] { return authz->reload(); };
      Status rs = co_await run_blocking(*self->pool, std::move(reload));
      if (!rs) {
        self->log->warn("iam reload failed error={}", rs.error().message());
      }
    }
    if (gc_every.count() > 0 && std::chrono::steady_clock::now() >= next_gc) {
      http::RequestContext ctx;
      ctx.principal = "system:gc";
      auto r = co_await self->registry->gc(ctx);
      if (!r) {
        self->log->warn("periodic gc failed error={}", r.error().message());
      }
      next_gc = std::chrono::steady_clock::now() + gc_every;
    }
    if (lifecycle_every.count() > 0 && std::chrono::steady_clock::now() >= next_lifecycle) {
      co_await self->registry->apply_lifecycle();
      next_lifecycle = std::chrono::steady_clock::now() + lifecycle_every;
    }
  }
}

}  // namespace berth::daemon
