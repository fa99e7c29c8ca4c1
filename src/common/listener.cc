// SPDX-License-Identifier: Apache-2.0
#include "common/listener.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "common/log.h"

namespace berth::net {

using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct ConnectionGate::Counts {
  std::mutex mu;
  size_t total = 0;
  std::unordered_map<std::string, size_t> per_address;
};

ConnectionGate::ConnectionGate(ConnectionLimits limits)
    : limits_(limits), counts_(std::make_shared<Counts>()) {}

ConnectionGate::~ConnectionGate() = default;

ConnectionGate::Ticket& ConnectionGate::Ticket::operator=(Ticket&& o) noexcept {
  if (this != &o) {
    if (counts_ != nullptr) {
      release(*counts_, key_);
    }
    counts_ = std::move(o.counts_);
    key_ = std::move(o.key_);
  }
  return *this;
}

ConnectionGate::Ticket::~Ticket() {
  if (counts_ != nullptr) {
    release(*counts_, key_);
  }
}

std::string ConnectionGate::address_key(const asio::ip::address& a) {
  if (a.is_v6()) {
    auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) {
      return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
    }
    // One host (or one customer of a provider) usually holds a whole /64.
    auto bytes = v6.to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return asio::ip::address_v6(bytes).to_string() + "/64";
  }
  return a.to_string();
}

ConnectionGate::Ticket ConnectionGate::admit(const asio::ip::address& peer, Verdict* why) {
  std::string key = address_key(peer);
  std::lock_guard lock(counts_->mu);
  if (limits_.max_total != 0 && counts_->total >= limits_.max_total) {
    if (why != nullptr) {
      *why = Verdict::TotalCap;
    }
    return {};
  }
  size_t& mine = counts_->per_address[key];
  if (limits_.max_per_address != 0 && mine >= limits_.max_per_address) {
    if (why != nullptr) {
      *why = Verdict::AddressCap;
    }
    return {};
  }
  ++mine;
  ++counts_->total;
  if (why != nullptr) {
    *why = Verdict::Admitted;
  }
  return Ticket(counts_, std::move(key));
}

void ConnectionGate::release(Counts& c, const std::string& key) {
  std::lock_guard lock(c.mu);
  --c.total;
  auto it = c.per_address.find(key);
  if (it != c.per_address.end() && --it->second == 0) {
    c.per_address.erase(it);
  }
}

size_t ConnectionGate::open() const {
  std::lock_guard lock(counts_->mu);
  return counts_->total;
}

namespace {

// Errors that say "not now" (the process or the system is out of something) rather than
// "this one connection failed": accepting again at once would fail again at once.
bool resource_exhausted(const beast::error_code& ec) {
  if (ec.category() != boost::system::system_category()) {
    return false;
  }
  int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

// A condition that may repeat thousands of times a second, logged at most once a second with
// the number of times it happened since the last line.
class Throttled {
 public:
  template <class F>
  void hit(F&& log_line) {
    ++count_;
    auto now = Clock::now();
    if (now - last_ >= std::chrono::seconds(1)) {
      log_line(count_);
      count_ = 0;
      last_ = now;
    }
  }

 private:
  uint64_t count_ = 0;
  Clock::time_point last_{};
};

}  // namespace

awaitable<void> run_accept_loop(AcceptLoop loop) {
  constexpr auto kMinPause = std::chrono::milliseconds(5);
  constexpr auto kMaxPause = std::chrono::seconds(1);
  auto pause = std::chrono::milliseconds(0);
  Throttled exhausted, refused;
  asio::steady_timer timer(loop.acceptor->get_executor());
  while (!loop.stopping->load()) {
    beast::error_code ec;
    tcp::endpoint ep;
    tcp::socket sock = co_await loop.acceptor->async_accept(
        *loop.context, ep, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (loop.stopping->load() || ec == asio::error::operation_aborted ||
          !loop.acceptor->is_open()) {
        break;
      }
      if (resource_exhausted(ec)) {
        // Pending connections stay in the kernel's backlog until descriptors free up.
        pause = pause.count() == 0 ? kMinPause
                                   : std::min<std::chrono::milliseconds>(pause * 2, kMaxPause);
        exhausted.hit([&](uint64_t n) {
          loop.log->error(
              "{} accept failed error={} count={} pause_ms={} (out of file descriptors: "
              "raise the limit or lower the connection caps)",
              loop.name, ec.message(), n, pause.count());
        });
        timer.expires_after(pause);
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      } else {
        loop.log->warn("{} accept failed error={}", loop.name, ec.message());
      }
      continue;
    }
    pause = std::chrono::milliseconds(0);
    ConnectionGate::Verdict why{};
    auto ticket = loop.gate->admit(ep.address(), &why);
    if (!ticket) {
      // Closed at once: an RST tells the client there is no point in waiting.
      sock.set_option(asio::socket_base::linger(true, 0), ec);
      sock.close(ec);
      refused.hit([&](uint64_t n) {
        loop.log->warn("{} connection refused peer={} reason={} count={} limit={}", loop.name,
                       ep.address().to_string(),
                       why == ConnectionGate::Verdict::TotalCap ? "max_connections"
                                                                : "max_connections_per_address",
                       n,
                       why == ConnectionGate::Verdict::TotalCap
                           ? loop.gate->limits().max_total
                           : loop.gate->limits().max_per_address);
      });
      continue;
    }
    loop.on_connection(std::move(sock), std::move(ticket), ep);
  }
}

namespace {

Result<std::shared_ptr<tcp::acceptor>> share_acceptor(tcp::acceptor& acc, asio::io_context& io) {
  beast::error_code ec;
  auto protocol = acc.local_endpoint(ec).protocol();
  if (ec) {
    return Error(Errc::Internal, "listening socket: " + ec.message());
  }
  int fd = ::fcntl(acc.native_handle(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    return Error(Errc::Unavailable,
                 std::string("dup of the listening socket: ") + std::strerror(errno));
  }
  auto mine = std::make_shared<tcp::acceptor>(io);
  mine->assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return Error(Errc::Internal, "listening socket: " + ec.message());
  }
  return mine;
}

}  // namespace

std::vector<ThreadAcceptor> acceptors_per_thread(std::shared_ptr<tcp::acceptor> first,
                                                 const std::vector<asio::io_context*>& contexts,
                                                 spdlog::logger& log, const std::string& name) {
  std::vector<ThreadAcceptor> out;
  for (size_t i = 1; i < contexts.size(); ++i) {
    auto shared = share_acceptor(*first, *contexts[i]);
    if (!shared) {
      log.warn("{}: I/O thread {} does not accept connections itself error={}", name, i,
               shared.error().message());
      continue;
    }
    out.push_back({std::move(*shared), i});
  }
  out.push_back({std::move(first), 0});
  return out;
}

FdLimit raise_fd_limit() {
  auto as_u64 = [](rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(v); };
  rlimit rl{};
  FdLimit out;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    out.error = errno;
    out.soft = out.hard = 1024;
    return out;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) {
      rl = want;
    } else {
      out.error = errno;
    }
  }
  out.soft = as_u64(rl.rlim_cur);
  out.hard = as_u64(rl.rlim_max);
  return out;
}

FdPlan plan_fd_budget(uint64_t fd_limit, uint64_t http_max, uint64_t router_max) {
  uint64_t reserve = std::max<uint64_t>(512, fd_limit / 10);
  uint64_t available = fd_limit > reserve ? fd_limit - reserve : 0;
  FdPlan plan;
  uint64_t http_fit = available / 2;
  plan.http = http_max == 0 ? http_fit : std::min(http_max, http_fit);
  uint64_t router_fit = (available - plan.http) / 2;
  plan.router = router_max == 0 ? router_fit : std::min(router_max, router_fit);
  plan.http = std::max<uint64_t>(plan.http, 1);
  plan.router = std::max<uint64_t>(plan.router, 1);
  plan.lowered =
      (http_max != 0 && plan.http < http_max) || (router_max != 0 && plan.router < router_max);
  return plan;
}

}  // namespace berth::net
