// SPDX-License-Identifier: Apache-2.0
// What every listener shares: the connection gate's caps, the descriptor budget, the framing
// rules for request heads, and an accept loop that backs off instead of spinning when the
// process is out of file descriptors.
#include "common/listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <vector>

#include "common/async.h"
#include "common/http1.h"
#include "support/harness.h"

namespace berth::net {
namespace {

asio::ip::address addr(const char* s) { return asio::ip::make_address(s); }

TEST(ConnectionGate, CapsPerAddressAndInTotalAndReleasesOnClose) {
  ConnectionGate gate({/*max_total=*/5, /*max_per_address=*/2});
  ConnectionGate::Verdict why{};
  auto a1 = gate.admit(addr("10.0.0.1"));
  auto a2 = gate.admit(addr("10.0.0.1"));
  auto a3 = gate.admit(addr("10.0.0.1"), &why);
  EXPECT_TRUE(a1 && a2);
  EXPECT_FALSE(a3);
  EXPECT_EQ(why, ConnectionGate::Verdict::AddressCap);
  auto b1 = gate.admit(addr("10.0.0.2"));
  auto b2 = gate.admit(addr("10.0.0.2"));
  auto c1 = gate.admit(addr("10.0.0.3"));
  EXPECT_TRUE(b1 && b2 && c1);
  EXPECT_EQ(gate.open(), 5u);
  auto d1 = gate.admit(addr("10.0.0.4"), &why);
  EXPECT_FALSE(d1);
  EXPECT_EQ(why, ConnectionGate::Verdict::TotalCap);
  a1 = ConnectionGate::Ticket();  // closing one frees a slot for its own address
  EXPECT_EQ(gate.open(), 4u);
  EXPECT_TRUE(gate.admit(addr("10.0.0.1")));
  EXPECT_EQ(gate.open(), 4u);  // that ticket was dropped at once
}

// A connection's frame may be destroyed after its listener's gate (an io_context torn down at
// shutdown with connections still queued): its ticket must release into live memory. Under
// ASan or valgrind the old ticket (a raw pointer to the gate) was a use after free; here the
// moved-from and the outliving tickets must at least not crash or double-count.
TEST(ConnectionGate, ATicketMayOutliveItsGate) {
  ConnectionGate::Ticket kept;
  {
    ConnectionGate gate({/*max_total=*/1, /*max_per_address=*/0});
    kept = gate.admit(addr("10.0.0.1"));
    ASSERT_TRUE(kept);
    EXPECT_FALSE(gate.admit(addr("10.0.0.2")));  // the cap holds while the ticket does
    ConnectionGate::Ticket moved = std::move(kept);
    EXPECT_FALSE(kept);
    kept = std::move(moved);
    EXPECT_EQ(gate.open(), 1u);
  }
  EXPECT_TRUE(kept);
  kept = ConnectionGate::Ticket();  // releases after the gate is gone
  EXPECT_FALSE(kept);
}

TEST(ConnectionGate, IPv6CountsPerSlash64AndMappedIPv4AsIPv4) {
  ConnectionGate gate({0, 1});
  auto a = gate.admit(addr("2001:db8:1:2::1"));
  EXPECT_TRUE(a);
  EXPECT_FALSE(gate.admit(addr("2001:db8:1:2:ffff::9")));  // same /64
  EXPECT_TRUE(gate.admit(addr("2001:db8:1:3::1")));
  auto v4 = gate.admit(addr("192.0.2.7"));
  EXPECT_FALSE(gate.admit(addr("::ffff:192.0.2.7")));
  EXPECT_EQ(ConnectionGate::address_key(addr("2001:db8:1:2::1")), "2001:db8:1:2::/64");
}

TEST(FdBudget, CapsFitTheDescriptorLimitWithRoomToSpare) {
  // The limit of this kind of machine: 20000 descriptors; the defaults ask 4096 + 16384.
  auto p = plan_fd_budget(20000, 4096, 16384);
  EXPECT_EQ(p.http, 4096u);
  EXPECT_TRUE(p.lowered);
  EXPECT_LE(p.http + 2 * p.router + 512, 20000u);
  EXPECT_GT(p.router, 5000u);
  // Plenty of descriptors: the configured caps stand.
  auto big = plan_fd_budget(1'048'576, 4096, 16384);
  EXPECT_EQ(big.http, 4096u);
  EXPECT_EQ(big.router, 16384u);
  EXPECT_FALSE(big.lowered);
  // "No cap" means what fits.
  auto none = plan_fd_budget(1024, 0, 0);
  EXPECT_GE(none.http, 1u);
  EXPECT_LE(none.http + 2 * none.router + 512, 1024u);
}

TEST(Http1Framing, RefusesAmbiguousTransferEncodingAndObsFold) {
  auto head = [](const std::string& fields) {
    return "POST /x HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n";
  };
  EXPECT_FALSE(http1::check_request_head(head("")));
  EXPECT_FALSE(http1::check_request_head(head("Transfer-Encoding: chunked\r\n")));
  EXPECT_FALSE(http1::check_request_head(head("transfer-encoding:  Chunked \r\n")));
  struct Case {
    const char* fields;
    unsigned status;
  } cases[] = {
      {"Transfer-Encoding: xchunked\r\n", 501},
      {"Transfer-Encoding: gzip, chunked\r\n", 501},
      {"Transfer-Encoding: identity\r\n", 501},
      {"Transfer-Encoding: chunked, identity\r\n", 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400},
      {"Transfer-Encoding: chunked, chunked\r\n", 400},
      {"Transfer-Encoding: \r\n", 400},
      {"X-A: 1\r\n  continued\r\n", 400},
      {"X-A: 1\r\n\tcontinued\r\n", 400},
  };
  for (auto& c : cases) {
    auto bad = http1::check_request_head(head(c.fields));
    ASSERT_TRUE(bad) << c.fields;
    EXPECT_EQ(bad->status, c.status) << c.fields << ": " << bad->message;
  }
  auto te = http1::check_request_head(head("Transfer-Encoding: xchunked\r\n"));
  EXPECT_NE(te->message.find("xchunked"), std::string::npos) << te->message;
  std::string many;
  for (int i = 0; i < 20; ++i) {
    many += "X-" + std::to_string(i) + ": v\r\n";
  }
  EXPECT_FALSE(http1::check_request_head(head(many), 30));
  auto too_many = http1::check_request_head(head(many), 10);
  ASSERT_TRUE(too_many);
  EXPECT_EQ(too_many->status, 431u);
}

// Puts the process at its descriptor limit with connections waiting in the backlog, runs the
// accept loop for a second, and checks it neither spins (CPU time) nor floods the log.
TEST(AcceptLoop, BacksOffWhenOutOfDescriptorsAndRecovers) {
  asio::io_context io(1);
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = acc.local_endpoint().port();

  // Client sockets made while descriptors are still there; connected once they are not.
  constexpr int kClients = 40;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  }
  int spare = ::dup(0);  // the highest descriptor in use decides the limit below
  ::close(spare);
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(spare + 3);  // room for about three accepted sockets

  std::ostringstream logged;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logged);
  auto logger = std::make_shared<spdlog::logger>("accept-test", sink);

  ConnectionGate gate({});
  std::vector<asio::ip::tcp::socket> accepted;
  std::vector<asio::ip::tcp::endpoint> peers;
  std::atomic<bool> stopping{false};
  AcceptLoop loop;
  loop.acceptor = &acc;
  loop.context = &io;
  loop.gate = &gate;
  loop.on_connection = [&](asio::ip::tcp::socket s, ConnectionGate::Ticket,
                           const asio::ip::tcp::endpoint& peer) {
    accepted.push_back(std::move(s));
    peers.push_back(peer);
  };
  loop.stopping = &stopping;
  loop.log = logger;
  loop.name = "test";
  spawn_logged(io.get_executor(), run_accept_loop(loop), "accept-test");

  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int fd : clients) {
    ASSERT_TRUE(test::connect_loopback(fd, port));
  }
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  io.run_for(std::chrono::milliseconds(1500));
  ::getrusage(RUSAGE_SELF, &after);
  ::setrlimit(RLIMIT_NOFILE, &saved);

  auto cpu_ms = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000.0 +
           (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1000.0;
  };
  EXPECT_LT(cpu_ms(after) - cpu_ms(before), 300.0) << "the accept loop spun";
  EXPECT_LT(accepted.size(), static_cast<size_t>(kClients));
  std::string log = logged.str();
  size_t lines = static_cast<size_t>(std::count(log.begin(), log.end(), '\n'));
  EXPECT_GE(lines, 1u) << "running out of descriptors must be logged";
  EXPECT_LE(lines, 3u) << log;
  EXPECT_NE(log.find("Too many open files"), std::string::npos) << log;

  // With descriptors back, the waiting connections are taken (the pause is at most 1 s).
  io.restart();
  io.run_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(accepted.size(), static_cast<size_t>(kClients));
  // Each connection came with its peer's address, as accept(2) gave it.
  ASSERT_EQ(peers.size(), accepted.size());
  for (size_t i = 0; i < accepted.size(); ++i) {
    EXPECT_EQ(peers[i], accepted[i].remote_endpoint()) << i;
  }
  stopping = true;
  acc.close();
  io.run_for(std::chrono::milliseconds(100));
  for (int fd : clients) {
    ::close(fd);
  }
}

}  // namespace
}  // namespace berth::net
