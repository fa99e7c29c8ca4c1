// SPDX-License-Identifier: Apache-2.0
// The DNS server: per address, several UDP sockets sharing the port (SO_REUSEPORT), each
// with a thread that reads and answers in batches (recvmmsg/sendmmsg) from the snapshot of
// the moment; and TCP (RFC 7766: length-prefixed messages, several per connection, idle
// timeout, capped connections) on one Asio thread, which also serves AXFR.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <thread>

#include "common/asio.h"
#include "common/listener.h"
#include "common/log.h"
#include "dns/answer.h"
#include "dns/dns.h"
#include "dns/name.h"
#include "dns/peer.h"
#include "dns/rdata.h"
#include "dns/update.h"
#include "dns/xfr.h"

namespace berth::dns {

namespace {

constexpr int kBatch = 32;
constexpr size_t kMaxUdpQuery = 4096;

Result<asio::ip::udp::endpoint> parse_endpoint(const std::string& s) {
  std::string host;
  std::string port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return Error(Errc::InvalidArgument, "dns listen address '" + s + "': want [ADDR]:PORT");
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) {
      return Error(Errc::InvalidArgument, "dns listen address '" + s + "': want ADDR:PORT");
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (ec || port.empty() || *end != '\0' || p < 0 || p > 65535) {
    return Error(Errc::InvalidArgument, "dns listen address '" + s + "': bad address or port");
  }
  return asio::ip::udp::endpoint(addr, static_cast<uint16_t>(p));
}

std::string endpoint_text(const asio::ip::address& a, uint16_t port) {
  return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(port)
                   : a.to_string() + ":" + std::to_string(port);
}

}  // namespace

struct Server::Impl {
  Service& service;
  ServerSettings settings;
  std::vector<int> udp_fds;
  std::vector<std::thread> threads;
  int wake_fd = -1;
  std::atomic<bool> stopping{false};
  std::vector<std::string> bound;

  asio::io_context tcp_ioc{1};
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
  std::unique_ptr<net::ConnectionGate> gate;

  std::atomic<uint64_t> udp_queries{0}, tcp_queries{0}, dropped{0}, truncated{0};

  Impl(Service& s, ServerSettings st) : service(s), settings(std::move(st)) {}

  Status bind_all();
  Status bind_address(const asio::ip::udp::endpoint& ep, int per_address);
  void udp_loop(int fd);
  awaitable<void> tcp_connection(asio::ip::tcp::socket sock, net::ConnectionGate::Ticket ticket,
                                 asio::ip::tcp::endpoint peer_ep);
  void stop();
  awaitable<void> notify(std::string zone_wire, std::string target);
};

// NOTIFY (RFC 1996) to one secondary: sent, and resent up to 4 times (1 s, 2 s, 4 s apart)
// until it answers with the same id.
awaitable<void> Server::Impl::notify(std::string zone_wire, std::string target) {
  auto peer = parse_peer(target);
  if (!peer) {
    co_return;
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(peer->address, ec);
  if (ec) {
    co_return;
  }
  asio::ip::udp::endpoint to(addr, peer->port);
  asio::ip::udp::socket sock(tcp_ioc);
  sock.open(to.protocol(), ec);
  if (ec) {
    co_return;
  }
  uint16_t id = static_cast<uint16_t>(std::random_device{}());
  std::string msg;
  Writer w(msg, 512);
  w.header(id, static_cast<uint16_t>(opcode::NOTIFY << 11) | flag::AA);
  w.question(Question{zone_wire, type::SOA, kClassIN});
  asio::steady_timer timer(tcp_ioc);
  std::array<uint8_t, 512> reply{};
  for (int attempt = 0; attempt < 5 && !stopping; ++attempt) {
    co_await sock.async_send_to(asio::buffer(msg), to, asio::redirect_error(use_awaitable, ec));
    bool answered = false;
    timer.expires_after(std::chrono::seconds(1 << attempt));
    timer.async_wait([&sock](boost::system::error_code e) {
      if (!e) {
        boost::system::error_code ignore;
        sock.cancel(ignore);
      }
    });
    asio::ip::udp::endpoint from;
    size_t n = co_await sock.async_receive_from(asio::buffer(reply), from,
                                                asio::redirect_error(use_awaitable, ec));
    timer.cancel();
    if (!ec && n >= kHeaderBytes && reply[0] == (id >> 8) && reply[1] == (id & 0xFF)) {
      answered = true;
    }
    if (answered) {
      log::get("dns")->info("notify sent zone={} to={} attempts={}", name_to_api(zone_wire), target,
                            attempt + 1);
      co_return;
    }
  }
  log::get("dns")->warn("notify unanswered zone={} to={}", name_to_api(zone_wire), target);
}

// Binds UDP (per_address sockets sharing the port) and TCP on one address. Port 0: TCP picks
// a free port first and UDP takes the same one; when UDP finds it taken, try again (a few
// times), so parallel test daemons never collide.
Status Server::Impl::bind_address(const asio::ip::udp::endpoint& ep, int per_address) {
  const int attempts = ep.port() == 0 ? 20 : 1;
  std::string last_error;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    auto acc = std::make_unique<asio::ip::tcp::acceptor>(tcp_ioc);
    asio::ip::tcp::endpoint tep(ep.address(), ep.port());
    boost::system::error_code ec;
    acc->open(tep.protocol(), ec);
    if (!ec) {
      acc->set_option(asio::socket_base::reuse_address(true), ec);
      if (tep.address().is_v6()) {
        acc->set_option(asio::ip::v6_only(true), ec);
      }
      acc->bind(tep, ec);
    }
    if (!ec) {
      acc->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return Error(Errc::Unavailable,
                   "dns: bind tcp " + endpoint_text(ep.address(), ep.port()) + ": " + ec.message());
    }
    uint16_t port = acc->local_endpoint().port();
    std::vector<int> fds;
    bool ok_udp = true;
    for (int i = 0; i < per_address && ok_udp; ++i) {
      int fd = ::socket(ep.address().is_v6() ? AF_INET6 : AF_INET,
                        SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        last_error = std::string("socket: ") + strerror(errno);
        ok_udp = false;
        break;
      }
      fds.push_back(fd);
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      if (ep.address().is_v6()) {
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      }
      asio::ip::udp::endpoint at(ep.address(), port);
      if (::bind(fd, at.data(), static_cast<socklen_t>(at.size())) != 0) {
        last_error = "bind udp " + endpoint_text(ep.address(), port) + ": " + strerror(errno);
        ok_udp = false;
      }
    }
    if (!ok_udp) {
      for (int fd : fds) {
        ::close(fd);
      }
      continue;  // the acceptor closes as it goes out of scope
    }
    udp_fds.insert(udp_fds.end(), fds.begin(), fds.end());
    acceptors.push_back(std::move(acc));
    bound.push_back(endpoint_text(ep.address(), port));
    return ok();
  }
  return Error(Errc::Unavailable, "dns: " + last_error);
}

Status Server::Impl::bind_all() {
  int per_address = settings.udp_threads > 0
                        ? settings.udp_threads
                        : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (const auto& text : settings.listen) {
    BERTH_ASSIGN_OR_RETURN(auto ep, parse_endpoint(text));
    BERTH_TRY(bind_address(ep, per_address));
  }
  return ok();
}

void Server::Impl::udp_loop(int fd) {
  std::vector<std::array<uint8_t, kMaxUdpQuery>> in(kBatch);
  std::vector<std::string> out(kBatch);
  std::vector<sockaddr_storage> from(kBatch);
  std::vector<iovec> in_iov(kBatch), out_iov(kBatch);
  std::vector<mmsghdr> in_msgs(kBatch), out_msgs(kBatch);
  std::minstd_rand rng(static_cast<uint32_t>(fd) * 2654435761u ^
                       static_cast<uint32_t>(std::random_device{}()));
  pollfd pfds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  while (!stopping.load(std::memory_order_relaxed)) {
    for (int i = 0; i < kBatch; ++i) {
      in_iov[i] = {in[i].data(), in[i].size()};
      in_msgs[i].msg_hdr = {};
      in_msgs[i].msg_hdr.msg_name = &from[i];
      in_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
      in_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(fd, in_msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log::get("dns")->warn("udp receive: {}", strerror(errno));
      }
      ::poll(pfds, 2, -1);
      continue;
    }
    auto snap = service.snapshot();
    int k = 0;
    for (int i = 0; i < n; ++i) {
      std::span<const uint8_t> q(in[i].data(), in_msgs[i].msg_len);
      if (settings.updates != nullptr && is_update(q)) {  // replied to from update.cc
        settings.updates->handle_udp(fd, q, from[i], in_msgs[i].msg_hdr.msg_namelen);
        out[i].clear();
        continue;
      }
      QueryContext ctx{false, static_cast<uint32_t>(rng())};
      answer_query(*snap, q, ctx, out[i]);
      if (out[i].empty()) {
        dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (out[i].size() > 2 && (static_cast<uint8_t>(out[i][2]) & 0x02) != 0) {
        truncated.fetch_add(1, std::memory_order_relaxed);
      }
      out_iov[k] = {out[i].data(), out[i].size()};
      out_msgs[k].msg_hdr = {};
      out_msgs[k].msg_hdr.msg_name = &from[i];
      out_msgs[k].msg_hdr.msg_namelen = in_msgs[i].msg_hdr.msg_namelen;
      out_msgs[k].msg_hdr.msg_iov = &out_iov[k];
      out_msgs[k].msg_hdr.msg_iovlen = 1;
      ++k;
    }
    udp_queries.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    for (int sent = 0; sent < k;) {
      int m = ::sendmmsg(fd, out_msgs.data() + sent, static_cast<unsigned>(k - sent), 0);
      if (m <= 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          pollfd w{fd, POLLOUT, 0};
          ::poll(&w, 1, 100);
          continue;
        }
        // A reply that cannot be sent (the client's port is gone) is dropped, not retried.
        ++sent;
        dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      sent += m;
    }
  }
}

awaitable<void> Server::Impl::tcp_connection(asio::ip::tcp::socket sock,
                                             net::ConnectionGate::Ticket ticket,
                                             asio::ip::tcp::endpoint peer_ep) {
  (void)ticket;  // held until the connection ends
  std::string peer = peer_ep.address().to_string();
  asio::steady_timer idle(sock.get_executor());
  std::string query;
  std::string reply;
  std::minstd_rand rng(std::random_device{}());
  for (;;) {
    boost::system::error_code ec;
    idle.expires_after(std::chrono::seconds(settings.tcp_idle_timeout_seconds));
    idle.async_wait([&sock](boost::system::error_code e) {
      if (!e) {
        boost::system::error_code ignore;
        sock.close(ignore);
      }
    });
    uint8_t len_bytes[2];
    co_await asio::async_read(sock, asio::buffer(len_bytes, 2),
                              asio::redirect_error(use_awaitable, ec));
    if (ec) {
      break;
    }
    size_t len = (size_t{len_bytes[0]} << 8) | len_bytes[1];
    query.resize(len);
    co_await asio::async_read(sock, asio::buffer(query), asio::redirect_error(use_awaitable, ec));
    idle.cancel();
    if (ec) {
      break;
    }
    tcp_queries.fetch_add(1, std::memory_order_relaxed);
    std::span<const uint8_t> q(reinterpret_cast<const uint8_t*>(query.data()), query.size());
    auto snap = service.snapshot();
    std::vector<std::string> replies;
    Message parsed;
    auto qend = parse_question(q, parsed);
    if (qend && parsed.opcode() == opcode::UPDATE && settings.updates != nullptr) {
      auto r = co_await settings.updates->handle_tcp(std::make_unique<std::string>(query),
                                                     std::make_unique<std::string>(peer));
      replies.push_back(std::move(*r));
    } else if (qend && parsed.opcode() == opcode::QUERY && parsed.questions.size() == 1 &&
               (parsed.questions[0].type == type::AXFR || parsed.questions[0].type == type::IXFR)) {
      const Zone* zone = snap->zone_for(name_lower(parsed.questions[0].name));
      if (zone == nullptr || zone->apex() != name_lower(parsed.questions[0].name)) {
        replies.push_back(error_reply(q, rcode::NOTAUTH));
      } else if (!transfer_allowed(zone->data(), peer)) {
        log::get("dns")->warn("zone transfer refused zone={} peer={}", name_to_api(zone->apex()),
                              peer);
        replies.push_back(error_reply(q, rcode::REFUSED));
      } else {
        replies = axfr_replies(*zone, parsed);
        log::get("dns")->info("zone transfer zone={} peer={} serial={} messages={}",
                              name_to_api(zone->apex()), peer, zone->serial(), replies.size());
      }
    } else {
      answer_query(*snap, q, QueryContext{true, static_cast<uint32_t>(rng())}, reply);
      if (reply.empty()) {
        dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      replies.push_back(std::move(reply));
      reply.clear();
    }
    for (const auto& r : replies) {
      uint8_t prefix[2] = {static_cast<uint8_t>(r.size() >> 8), static_cast<uint8_t>(r.size())};
      std::array<asio::const_buffer, 2> bufs{asio::buffer(prefix, 2), asio::buffer(r)};
      co_await asio::async_write(sock, bufs, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        co_return;
      }
    }
  }
}

void Server::Impl::stop() {
  if (stopping.exchange(true)) {
    return;
  }
  service.set_on_change({});
  uint64_t one = 1;
  if (wake_fd >= 0) {
    (void)!::write(wake_fd, &one, sizeof one);
  }
  asio::post(tcp_ioc, [this] {
    for (auto& a : acceptors) {
      boost::system::error_code ec;
      a->close(ec);
    }
  });
  tcp_ioc.stop();
  for (auto& t : threads) {
    if (t.joinable()) {
      t.join();
    }
  }
  if (settings.updates != nullptr) {
    settings.updates->stop();  // its queued UDP replies use the sockets closed next
  }
  for (int fd : udp_fds) {
    ::close(fd);
  }
  udp_fds.clear();
  if (wake_fd >= 0) {
    ::close(wake_fd);
    wake_fd = -1;
  }
}

Result<std::unique_ptr<Server>> Server::start(Service& service, ServerSettings settings) {
  auto impl = std::make_unique<Impl>(service, std::move(settings));
  impl->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (auto s = impl->bind_all(); !s) {
    impl->stop();
    return s.error();
  }
  impl->gate = std::make_unique<net::ConnectionGate>(net::ConnectionLimits{
      impl->settings.max_tcp_connections, impl->settings.max_tcp_connections_per_address});
  Impl* p = impl.get();
  for (int fd : p->udp_fds) {
    p->threads.emplace_back([p, fd] { p->udp_loop(fd); });
  }
  for (auto& acc : p->acceptors) {
    net::AcceptLoop loop;
    loop.acceptor = acc.get();
    loop.context = &p->tcp_ioc;
    loop.gate = p->gate.get();
    loop.on_connection = [p](asio::ip::tcp::socket s, net::ConnectionGate::Ticket t,
                             const asio::ip::tcp::endpoint& peer) {
      asio::co_spawn(p->tcp_ioc, p->tcp_connection(std::move(s), std::move(t), peer),
                     asio::detached);
    };
    loop.stopping = &p->stopping;
    loop.log = log::get("dns");
    loop.name = "dns";
    asio::co_spawn(p->tcp_ioc, net::run_accept_loop(std::move(loop)), asio::detached);
  }
  service.set_on_change([p](const ZoneData& z) {
    if (z.also_notify.empty()) {
      return;
    }
    auto wire = name_from_text(z.name + ".");
    if (!wire) {
      return;
    }
    for (const auto& target : z.also_notify) {
      asio::co_spawn(p->tcp_ioc, p->notify(*wire, target), asio::detached);
    }
  });
  p->threads.emplace_back([p] {
    auto guard = asio::make_work_guard(p->tcp_ioc);
    p->tcp_ioc.run();
  });
  for (const auto& a : p->bound) {
    log::get("dns")->info("dns listening on {} (udp sockets={}, tcp)", a,
                          p->udp_fds.size() / std::max<size_t>(1, p->bound.size()));
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(); }
void Server::stop() {
  if (impl_) {
    impl_->stop();
  }
}
std::vector<std::string> Server::addresses() const { return impl_->bound; }
Server::Counters Server::counters() const {
  return Counters{impl_->udp_queries.load(), impl_->tcp_queries.load(), impl_->dropped.load(),
                  impl_->truncated.load()};
}

}  // namespace berth::dns
