// SPDX-License-Identifier: Apache-2.0
// Server: berthd's HTTP/1.1 listener (plain, or TLS detected per connection): one acceptor per
// I/O thread, a gate on open connections, idle and head deadlines, and each connection's
// requests run through Conn (conn.h) to the handler; certificates from files or published.
#include <sys/socket.h>

#include <atomic>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <map>
#include <mutex>

#include "common/async.h"
#include "common/fs.h"
#include "common/http1.h"
#include "common/log.h"
#include "http/conn.h"
#include "http/http.h"
#include "tls/tls.h"

namespace berth::http {

using tcp = asio::ip::tcp;

awaitable<Result<std::string>> Exchange::read_all(size_t limit) {
  std::string out;
  if (auto cl = content_length()) {
    if (*cl > limit) {
      co_return Error(Errc::ResourceExhausted, "body of " + std::to_string(*cl) +
                                                   " bytes exceeds the limit of " +
                                                   std::to_string(limit) + " bytes");
    }
    out.reserve(*cl);
  }
  char buf[64 * 1024];
  while (true) {
    auto n = co_await read_some(buf, sizeof buf);
    if (!n) {
      co_return n.error();
    }
    if (*n == 0) {
      break;
    }
    if (out.size() + *n > limit) {
      co_return Error(Errc::ResourceExhausted,
                      "body exceeds the limit of " + std::to_string(limit) + " bytes");
    }
    out.append(buf, *n);
  }
  co_return out;
}

using detail::Conn;
using detail::next_request_id;

struct Server::State : std::enable_shared_from_this<Server::State> {
  State(std::vector<asio::io_context*> c, Handler h, ServerOptions o)
      : contexts(std::move(c)),
        acceptor(std::make_shared<tcp::acceptor>(*contexts.front())),
        handler(std::move(h)),
        opts(o),
        gate(o.limits) {}

  std::vector<asio::io_context*> contexts;
  // TLS: the certificates published, chosen by SNI (tls.cert_file's first, as the default).
  // The asio context wraps their base SSL_CTX, which picks the certificate's context per handshake.
  tls::ServerContext certs{tls::ServerOptions{}};
  asio::ssl::context ssl{wrap(certs.base())};
  bool tls_only = false;  // tls.cert_file: every connection is TLS
  std::mutex publish_mu;
  std::optional<tls::Certificate> fixed;    // tls.cert_file's certificate
  std::vector<tls::Certificate> published;  // the last publish_certificates()

  // Under publish_mu.
  Status publish_locked() {
    std::vector<tls::Certificate> all;
    if (fixed) {
      all.push_back(*fixed);
    }
    all.insert(all.end(), published.begin(), published.end());
    return certs.publish(all);
  }
  // Bound by listen() on contexts[0]. start() hands it to its accept loop, and the other I/O
  // threads' loops their own descriptors of it (net::acceptors_per_thread): each acceptor lives
  // in its loop's frame, so it dies with its own io_context even when nothing ran (a start
  // that failed later), and stop() reaches it through `started`.
  std::shared_ptr<tcp::acceptor> acceptor;
  std::vector<std::weak_ptr<tcp::acceptor>> started;
  Handler handler;
  ServerOptions opts;
  std::atomic<bool> stopping{false};
  net::ConnectionGate gate;
  // Every open connection's descriptor and whether it is waiting for its next request head:
  // stop() shuts the waiting ones down so that they end at once instead of holding shutdown
  // for the grace period. Registered once per connection (the flag flips per request without
  // the mutex); a session removes its entry before it can close the descriptor.
  std::mutex conns_mu;
  std::map<int, const std::atomic<bool>*> conns;
  std::shared_ptr<spdlog::logger> log = log::get("http");

  // One per I/O thread: a connection is served on the thread that accepted it.
  static awaitable<void> accept_loop(std::shared_ptr<State> self,
                                     std::shared_ptr<tcp::acceptor> acc, asio::io_context* io) {
    net::AcceptLoop loop;
    loop.acceptor = acc.get();
    loop.context = io;
    loop.gate = &self->gate;
    loop.on_connection = [s = self.get()](tcp::socket sock, net::ConnectionGate::Ticket t,
                                          const tcp::endpoint& peer) {
      auto ex = sock.get_executor();
      spawn_logged(ex, session(s->shared_from_this(), std::move(sock), std::move(t), peer),
                   "http.session");
    };
    loop.stopping = &self->stopping;
    loop.log = self->log;
    loop.name = "http";
    co_await net::run_accept_loop(std::move(loop));
  }

  static asio::ssl::context::native_handle_type wrap(SSL_CTX* base) {
    SSL_CTX_up_ref(base);  // asio's context frees its handle; tls keeps its own reference
    return base;
  }

  static awaitable<void> session(std::shared_ptr<State> self, tcp::socket sock,
                                 [[maybe_unused]] net::ConnectionGate::Ticket ticket,
                                 tcp::endpoint peer_ep) {
    // `ticket` holds this connection's slot until the frame goes (it may outlive the gate).
    beast::error_code ec;
    std::string peer = peer_ep.address().to_string() + ":" + std::to_string(peer_ep.port());
    sock.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream plain(std::move(sock));
    beast::flat_buffer buffer;
    bool tls = self->tls_only;
    if (!tls && self->certs.has_certificates()) {
      // Certificates are published (berth domain link --registry): the same port speaks TLS
      // to a client whose first bytes are a TLS ClientHello, and plain HTTP to the rest.
      plain.expires_after(self->opts.header_timeout);
      tls =
          co_await beast::async_detect_ssl(plain, buffer, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        plain.close();
        co_return;
      }
    }
    if (!tls) {
      co_await serve(self, plain, peer, std::move(buffer));
      plain.socket().shutdown(tcp::socket::shutdown_send, ec);
      plain.close();
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(plain), self->ssl);
    beast::get_lowest_layer(stream).expires_after(self->opts.header_timeout);
    size_t used = co_await stream.async_handshake(asio::ssl::stream_base::server, buffer.data(),
                                                  asio::redirect_error(use_awaitable, ec));
    buffer.consume(used);
    if (!ec) {
      co_await serve(self, stream, peer, beast::flat_buffer());
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
      co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
    } else {
      self->log->debug("tls handshake failed peer={} error={}", peer, ec.message());
    }
    beast::get_lowest_layer(stream).close();
  }

  // Reads until the buffer holds a whole request head (or the limit), without parsing it, so
  // that the raw head can be checked before its framing is trusted. The first byte may take
  // `first_byte` (the keep-alive wait between requests); the rest of the head must arrive
  // within header_timeout of it.
  template <class Stream>
  static awaitable<beast::error_code> read_head(const State& self, Stream& stream,
                                                beast::flat_buffer& buffer,
                                                std::chrono::seconds first_byte) {
    beast::error_code ec;
    bool armed_head = buffer.size() > 0;
    beast::get_lowest_layer(stream).expires_after(armed_head ? self.opts.header_timeout
                                                             : first_byte);
    size_t scanned = 0;
    while (true) {
      std::string_view data(static_cast<const char*>(buffer.data().data()), buffer.size());
      size_t from = scanned > 3 ? scanned - 3 : 0;
      if (data.find("\r\n\r\n", from) != std::string_view::npos ||
          data.find("\n\n", from) != std::string_view::npos ||
          data.size() >= self.opts.max_header_bytes ||
          !http1::plausible_head_bytes(data.substr(from))) {
        co_return beast::error_code{};  // a whole head, or bytes the parser refuses at once
      }
      scanned = data.size();
      auto mb = buffer.prepare(std::min<size_t>(16 * 1024, self.opts.max_header_bytes + 4));
      size_t n = co_await stream.async_read_some(mb, asio::redirect_error(use_awaitable, ec));
      buffer.commit(n);
      if (ec) {
        co_return ec;
      }
      if (!armed_head) {
        armed_head = true;
        beast::get_lowest_layer(stream).expires_after(self.opts.header_timeout);
      }
    }
  }

  template <class Stream>
  static awaitable<void> refuse(Stream& stream, unsigned status, std::string message) {
    bhttp::response<bhttp::string_body> bad{static_cast<bhttp::status>(status), 11};
    bad.set(bhttp::field::server, "berth");
    bad.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    bad.body() = std::move(message) + "\n";
    bad.keep_alive(false);
    bad.prepare_payload();
    beast::error_code wec;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await bhttp::async_write(stream, bad, asio::redirect_error(use_awaitable, wec));
  }

  // The request loop of one connection, over plain TCP or TLS. stream belongs to the caller,
  // which awaits this coroutine.
  template <class Stream>
  static awaitable<void> serve(std::shared_ptr<State> self, Stream& stream, std::string peer,
                               beast::flat_buffer buffer) {
    constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
    beast::error_code ec;
    bool first = true;
    int fd = beast::get_lowest_layer(stream).socket().native_handle();
    std::atomic<bool> idle{false};
    struct Registered {
      State& st;
      int fd;
      ~Registered() {
        std::lock_guard lock(st.conns_mu);
        st.conns.erase(fd);
      }
    };
    {
      std::lock_guard lock(self->conns_mu);
      self->conns[fd] = &idle;
    }
    Registered registered{*self, fd};
    while (!self->stopping) {
      idle = true;
      if (self->stopping) {  // stop() may have looked before the flag was set
        break;
      }
      ec = co_await read_head(*self, stream, buffer,
                              first ? self->opts.header_timeout : self->opts.keepalive_timeout);
      idle = false;
      first = false;
      if (ec) {
        break;  // closed, reset, or too slow: nothing to answer
      }
      std::string_view raw(static_cast<const char*>(buffer.data().data()), buffer.size());
      if (auto bad = http1::check_request_head(raw, self->opts.max_header_fields)) {
        co_await refuse(stream, bad->status, std::move(bad->message));
        break;
      }
      bhttp::request_parser<bhttp::buffer_body> parser;
      parser.header_limit(static_cast<uint32_t>(self->opts.max_header_bytes));
      // Handlers enforce their own limits while streaming. (1.74 mis-compares boost::none.)
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      co_await bhttp::async_read_header(stream, buffer, parser,
                                        asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (ec == bhttp::error::header_limit) {
          co_await refuse(
              stream, 431,
              "request head exceeds " + std::to_string(self->opts.max_header_bytes) + " bytes");
        } else if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
                   ec != asio::error::connection_reset && ec != asio::error::eof) {
          co_await refuse(stream, 400, "malformed request: " + ec.message());
        }
        break;
      }
      auto started = std::chrono::steady_clock::now();
      Conn<Stream> ex(stream, buffer, parser, self->opts);
      ex.context().peer = peer;
      ex.context().request_id = next_request_id();
      ex.context().base_url =
          std::string(kTls ? "https://" : "http://") + ex.header(bhttp::field::host);
      if (ex.bad_path()) {
        Response r;
        r.status = 400;
        r.body = "malformed percent-encoding in path\n";
        co_await ex.send(std::move(r));
      } else {
        co_await self->handler(ex);
      }
      if (!ex.responded()) {
        Response r;
        r.status = 500;
        r.body = "handler sent no response\n";
        co_await ex.send(std::move(r));
      }
      if (self->opts.access_log) {
        auto ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                .count();
        self->log->info("{} {} {} {} {:.1f}ms id={} peer={}", ex.method_string(), ex.path(),
                        ex.status(), ex.bytes(), ms, ex.context().request_id, peer);
      }
      if (!ex.keep_alive()) {
        break;
      }
      // Discard any body the handler left unread, up to a bound; past it, close.
      if (!ex.body_done()) {
        char sink[16384];
        size_t drained = 0;
        bool ok_drain = true;
        while (!ex.body_done() && drained < (1u << 20)) {
          auto n = co_await ex.read_some(sink, sizeof sink);
          if (!n || *n == 0) {
            ok_drain = n.has_value();
            break;
          }
          drained += *n;
        }
        if (!ok_drain || !ex.body_done()) {
          break;
        }
      }
    }
  }
};

Server::Server(std::vector<asio::io_context*> contexts, Handler handler, ServerOptions opts)
    : state_(std::make_shared<State>(std::move(contexts), std::move(handler), std::move(opts))) {}

Server::~Server() { stop(); }

Result<uint16_t> Server::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  if (!state_->opts.tls_cert_file.empty() && !state_->fixed) {
    tls::Certificate c;
    auto chain = fs::read_file(state_->opts.tls_cert_file);
    if (!chain) {
      return Error(Errc::InvalidArgument, "tls.cert_file: " + chain.error().message());
    }
    auto key = fs::read_file(state_->opts.tls_key_file);
    if (!key) {
      return Error(Errc::InvalidArgument, "tls.key_file: " + key.error().message());
    }
    c.chain_pem = std::move(*chain);
    c.key_pem = std::move(*key);
    std::lock_guard lock(state_->publish_mu);
    state_->fixed = std::move(c);
    state_->tls_only = true;
    if (auto st = state_->publish_locked(); !st) {
      state_->fixed.reset();
      return Error(Errc::InvalidArgument, "tls.cert_file " + state_->opts.tls_cert_file +
                                              " / tls.key_file " + state_->opts.tls_key_file +
                                              ": " + st.error().message());
    }
  }
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    return Error(Errc::InvalidArgument, "listen: invalid address '" + host + "'");
  }
  tcp::endpoint ep(addr, port);
  auto& acc = *state_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) {
    acc.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acc.bind(ep, ec);
  }
  if (!ec) {
    acc.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Error(Errc::Unavailable,
                 "listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  }
  return acc.local_endpoint().port();
}

void Server::start() {
  auto& st = *state_;
  if (!st.acceptor) {
    return;  // started already
  }
  for (auto& [acc, i] :
       net::acceptors_per_thread(std::move(st.acceptor), st.contexts, *st.log, "listen")) {
    st.started.push_back(acc);
    spawn_logged(st.contexts[i]->get_executor(),
                 State::accept_loop(state_, std::move(acc), st.contexts[i]), "http.accept");
  }
}

void Server::stop() {
  if (state_->stopping.exchange(true)) {
    return;
  }
  {
    // Idle keep-alive connections end now (their read sees the end of the stream); requests
    // in flight finish within the daemon's grace period.
    std::lock_guard lock(state_->conns_mu);
    for (auto [fd, idle] : state_->conns) {
      if (*idle) {
        ::shutdown(fd, SHUT_RDWR);
      }
    }
  }
  for (auto& w : state_->started) {
    if (auto acc = w.lock()) {
      asio::post(acc->get_executor(), [acc] {
        beast::error_code ec;
        acc->close(ec);
      });
    }
  }
}

Status Server::publish_certificates(std::vector<tls::Certificate> certs) {
  std::lock_guard lock(state_->publish_mu);
  auto old = std::exchange(state_->published, std::move(certs));
  auto st = state_->publish_locked();
  if (!st) {
    state_->published = std::move(old);
  }
  return st;
}

size_t Server::active_connections() const { return state_->gate.open(); }

}  // namespace berth::http
