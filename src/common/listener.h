// SPDX-License-Identifier: Apache-2.0
// What every TCP listener of berthd shares (the API/registry listener and the router): the
// accept loop, connection caps in total and per source address, and back-off when the
// process runs out of file descriptors. One client must never be able to take the daemon
// down by holding connections open: past a cap a new connection is closed at once, and on
// EMFILE/ENFILE the loop pauses accepting (5 ms doubling to 1 s) instead of spinning, logging
// the condition at most once a second with a count.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/result.h"

namespace spdlog {
class logger;
}

namespace berth::net {

struct ConnectionLimits {
  size_t max_total = 0;        // 0: no cap
  size_t max_per_address = 0;  // 0: no cap; IPv6 addresses count per /64
};

/// Counts a listener's open connections. Thread-safe: admitted on the accept thread, released
/// by whichever I/O thread closes the connection.
class ConnectionGate {
  struct Counts;  // shared with every Ticket

 public:
  explicit ConnectionGate(ConnectionLimits limits);
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  /// Held by a connection while it is open; releases its slot when destroyed. It shares the
  /// counts with the gate, so it may outlive the gate: a connection's frame destroyed with its
  /// io_context at shutdown, in whatever order, releases into live memory.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& o) noexcept = default;
    Ticket& operator=(Ticket&& o) noexcept;
    ~Ticket();
    explicit operator bool() const { return counts_ != nullptr; }

   private:
    friend class ConnectionGate;
    Ticket(std::shared_ptr<Counts> c, std::string key)
        : counts_(std::move(c)), key_(std::move(key)) {}
    std::shared_ptr<Counts> counts_;
    std::string key_;
  };

  enum class Verdict { Admitted, TotalCap, AddressCap };
  /// A ticket when the connection is within both caps; otherwise an empty one and why.
  Ticket admit(const asio::ip::address& peer, Verdict* why = nullptr);

  size_t open() const;
  const ConnectionLimits& limits() const { return limits_; }
  /// The key an address is counted under ("10.0.0.1", "2001:db8:1:2::/64").
  static std::string address_key(const asio::ip::address& a);

 private:
  static void release(Counts& c, const std::string& key);
  ConnectionLimits limits_;
  std::shared_ptr<Counts> counts_;
};

/// Called with each admitted connection and its peer's address (from accept(2) itself: no
/// getpeername per connection), on the accept loop's thread; the socket belongs to the loop's
/// `context`.
using OnConnection = std::function<void(asio::ip::tcp::socket, ConnectionGate::Ticket,
                                        const asio::ip::tcp::endpoint& peer)>;

struct AcceptLoop {
  asio::ip::tcp::acceptor* acceptor = nullptr;
  /// The io_context the accepted sockets belong to: the loop's own thread's.
  asio::io_context* context = nullptr;
  ConnectionGate* gate = nullptr;
  OnConnection on_connection;
  const std::atomic<bool>* stopping = nullptr;
  std::shared_ptr<spdlog::logger> log;
  std::string name;  // "router", "http": in log lines
};

/// Accepts until the acceptor is closed or *stopping. Never spins: a failing accept backs off.
awaitable<void> run_accept_loop(AcceptLoop loop);

/// One listening socket for every I/O thread. `first` is bound on contexts[0]; each other
/// context gets a duplicate of its descriptor, registered with that context's own reactor.
/// Both listeners run one accept loop per element and serve each connection on the thread
/// that accepted it: nothing crosses threads (no wake-up of another thread, no frame allocated
/// on one and freed on the other), and whichever thread is free takes the next connection. A
/// context whose duplicate fails is logged and left out: the others accept for it.
struct ThreadAcceptor {
  std::shared_ptr<asio::ip::tcp::acceptor> acceptor;
  size_t index = 0;  // into contexts
};
std::vector<ThreadAcceptor> acceptors_per_thread(std::shared_ptr<asio::ip::tcp::acceptor> first,
                                                 const std::vector<asio::io_context*>& contexts,
                                                 spdlog::logger& log, const std::string& name);

/// Raises the soft RLIMIT_NOFILE to the hard limit. error: the errno that stopped it (0: none).
struct FdLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
  int error = 0;
};
FdLimit raise_fd_limit();

/// How many connections the API listener and the router may hold so that both fit in the
/// process's descriptor limit with room to spare: a tenth (at least 512) stays for files,
/// blobs, SQLite and child processes, and each router connection counts twice (a proxied
/// request also holds an upstream connection). A cap of 0 (none) gets what fits. The API
/// listener is served first: it is how an operator reaches a daemon under attack.
struct FdPlan {
  uint64_t http = 0;
  uint64_t router = 0;
  bool lowered = false;  // a configured cap did not fit and was lowered
};
FdPlan plan_fd_budget(uint64_t fd_limit, uint64_t http_max, uint64_t router_max);

}  // namespace berth::net
