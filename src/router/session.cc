// SPDX-License-Identifier: Apache-2.0
// A new client connection: socket options, the TLS handshake on TLS listeners (bounded by
// header_timeout through the thread's timeout sweep), then the protocol ALPN chose: HTTP/2
// (h2.cc) or HTTP/1.1 (Conn). A failed handshake (garbage instead of a ClientHello, no
// certificate published, an unsupported version) closes this connection only.
#include "router/conn.h"
#include "router/h2.h"

namespace berth::router {

namespace {

// Registers a watch on the socket for the handshake and takes it off again.
struct HandshakeWatch {
  HandshakeWatch(ThreadCtx& t, tcp::socket& s, std::chrono::milliseconds limit) : tc(t) {
    w.a = &s;
    w.between_requests = true;  // stop() closes connections still in their handshake
    w.deadline = Clock::now() + limit;
    tc.add(&w);
  }
  ~HandshakeWatch() { ThreadCtx::remove(&w); }
  ThreadCtx& tc;
  Watch w;
};

}  // namespace

awaitable<void> session(std::shared_ptr<State> st, ThreadCtx* tc, tcp::socket sock, bool tls,
                        [[maybe_unused]] net::ConnectionGate::Ticket ticket,
                        tcp::endpoint peer_ep) {
  // `ticket` holds this connection's slot until the frame goes (it may outlive the gate).
  beast::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  sock.non_blocking(true, ec);  // the pumps try writes synchronously first
  std::string peer = peer_ep.address().to_string();
  tls::SslPtr ssl;
  if (tls) {
    ssl = st->tls.new_ssl();
    if (!ssl) {
      st->log->error("tls: cannot create a connection (out of memory?) peer={}", peer);
      co_return;
    }
  }
  ClientStream stream(std::move(sock), std::move(ssl));
  if (tls) {
    {
      HandshakeWatch hw(*tc, stream.socket(), st->opts.header_timeout);
      co_await stream.handshake(&ec);
    }
    if (ec) {
      st->tls.handshakes_failed.fetch_add(1, std::memory_order_relaxed);
      st->log->debug("tls handshake failed peer={} error={}", peer, ec.message());
      stream.close(ec);
      co_return;
    }
    st->tls.handshakes_ok.fetch_add(1, std::memory_order_relaxed);
    if (stream.alpn() == "h2") {
      co_await serve_h2(st, tc, std::move(stream), std::move(peer));
      co_return;
    }
  }
  Conn c(std::move(st), *tc, std::move(stream), std::move(peer));
  co_await c.run();
}

}  // namespace berth::router
