// SPDX-License-Identifier: Apache-2.0
// gRPC through the router: a Python grpcio server (generic handlers, raw bytes, no protoc) on
// 127.0.0.1 behind a route with protocol h2c, and a Python grpcio client over TLS (ALPN h2)
// to the router. Unary with a large message and trailing metadata, bidirectional streaming,
// a call past its deadline, which must end the stream at the server too, and concurrent
// calls, all multiplexed on one connection to the instance.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "common/asio.h"
#include "router/router.h"
#include "support/harness.h"

namespace berth::test {
namespace {

using namespace std::chrono_literals;
using router::Route;
using router::Router;
using router::RouterOptions;
using router::RouteTable;
using router::TlsCertificate;
using router::Upstream;

constexpr const char* kPython = "/usr/bin/python3";

constexpr const char* kServer = R"PY(
import sys, time, grpc
from concurrent import futures

port, dir = sys.argv[1], sys.argv[2]
# A maximum connection age (ms): the server ends each connection with GOAWAY after it.
age = int(sys.argv[3]) if len(sys.argv) > 3 else 0

def unary(req, ctx):
    ctx.set_trailing_metadata((("x-trailer", "t%d" % len(req)),))
    return b"echo:" + req

def bidi(it, ctx):
    for m in it:
        yield b"echo:" + m

def flood(req, ctx):
    for i in range(64):
        if not ctx.is_active():
            return
        yield b"f" * 65536

def slow(req, ctx):
    while ctx.is_active():
        time.sleep(0.02)
    open(dir + "/slow-ended", "w").write("ended\n")
    return req

handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    "Flood": grpc.unary_stream_rpc_method_handler(flood),
    "Slow": grpc.unary_unary_rpc_method_handler(slow),
}
options = [("grpc.max_connection_age_ms", age), ("grpc.max_connection_age_grace_ms", 10000)] if age else []
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
server.add_insecure_port("127.0.0.1:" + port)
server.start()
open(dir + "/ready", "w").write("ready\n")
server.wait_for_termination()
)PY";

// Every client script starts with this: a channel to the router, over TLS, for app.test.
constexpr const char* kChannel = R"PY(
import sys, time, grpc
from concurrent.futures import ThreadPoolExecutor

port, ca = sys.argv[1], sys.argv[2]
creds = grpc.ssl_channel_credentials(open(ca, "rb").read())
opts = (("grpc.ssl_target_name_override", "app.test"), ("grpc.default_authority", "app.test"))
ch = grpc.secure_channel("127.0.0.1:" + port, creds, options=opts)
)PY";

constexpr const char* kClient = R"PY(
unary = ch.unary_unary("/echo.Echo/Unary")
resp, call = unary.with_call(b"hello", timeout=30)
print("unary", resp.decode(), call.code().name, dict(call.trailing_metadata()).get("x-trailer"))
big = b"x" * 1000000
resp, call = unary.with_call(big, timeout=30)
print("big", resp == b"echo:" + big, call.code().name, dict(call.trailing_metadata()).get("x-trailer"))

bidi = ch.stream_stream("/echo.Echo/Bidi")
msgs = [b"one", b"two", b"three", b"y" * 100000, b"five"]
call = bidi(iter(msgs), timeout=30)
got = [m for m in call]
print("bidi", len(got), got[:3], got[3] == b"echo:" + b"y" * 100000, got[4], call.code().name)

slow = ch.unary_unary("/echo.Echo/Slow")
try:
    slow(b"z", timeout=0.5)
    print("slow", "OK")
except grpc.RpcError as e:
    print("slow", e.code().name)

try:
    ch.unary_unary("/echo.Echo/Missing")(b"q", timeout=30)
    print("missing", "OK")
except grpc.RpcError as e:
    print("missing", e.code().name)

with ThreadPoolExecutor(20) as ex:
    got = list(ex.map(lambda i: unary(b"c%d" % i, timeout=30), range(60)))
print("concurrent", all(g == b"echo:c%d" % i for i, g in enumerate(got)))
)PY";

constexpr const char* kAgingClient = R"PY(
unary = ch.unary_unary("/echo.Echo/Unary")
calls, good = 0, 0
end = time.time() + 2.5
with ThreadPoolExecutor(4) as ex:
    while time.time() < end:
        got = list(ex.map(lambda i: unary(b"a%d" % i, timeout=30), range(8)))
        calls += len(got)
        good += sum(1 for i, g in enumerate(got) if g == b"echo:a%d" % i)
print("aging", calls == good, calls >= 40)
)PY";

// A raw HTTP/2 client (python3-h2): a Flood call whose stream window it never opens again,
// then a Unary call on the same connection. The router puts both on one connection to the
// instance; the Unary must still be answered (per-stream flow control, not a stalled
// connection).
constexpr const char* kStallingClient = R"PY(
import socket, ssl, sys, time
import h2.config, h2.connection, h2.events

port, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="app.test")
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
c.increment_flow_control_window(64 << 20)  # the connection's window never runs out
s.sendall(c.data_to_send())

def call(method, msg):
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":authority", "app.test"),
                         (":path", "/echo.Echo/" + method), ("content-type", "application/grpc"),
                         ("te", "trailers")])
    c.send_data(sid, b"\0" + len(msg).to_bytes(4, "big") + msg, end_stream=True)
    s.sendall(c.data_to_send())
    return sid

flood, unary = call("Flood", b"go"), None
got, flood_bytes, done = b"", 0, False
s.settimeout(0.2)
start = time.time()
while time.time() < start + 15 and not done:
    if unary is None and time.time() > start + 1:
        unary = call("Unary", b"hello")  # once the flood has filled every window on its way
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    if not data:
        break
    for ev in c.receive_data(data):
        if isinstance(ev, h2.events.DataReceived):
            if ev.stream_id == flood:
                flood_bytes += len(ev.data)  # never acknowledged: its window stays shut
            else:
                got += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == unary:
            done = True
    s.sendall(c.data_to_send())
print("unary", done, got[5:].decode())
print("flood", 0 < flood_bytes <= 65535)
)PY";

class RouterGrpcTest : public ::testing::Test {
 protected:
  // Extra arguments for the server (its maximum connection age).
  virtual std::string server_args() const { return ""; }

  void SetUp() override {
    if (run(std::string(kPython) + " -c 'import grpc' 2>&1").code != 0) {
      GTEST_SKIP() << "python3-grpcio is not installed";
    }
    // A CA and a leaf for app.test.
    auto r = run("cd " + dir_.path() +
                 " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout ca.key -out ca.pem -days 2 -subj /CN=berth-grpc-ca 2>&1"
                 " && printf 'subjectAltName=DNS:app.test\\n' > app.ext"
                 " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
                 " -keyout app.key -out app.csr -subj /CN=app 2>&1"
                 " && openssl x509 -req -in app.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
                 " -days 1 -extfile app.ext -out app.pem 2>&1");
    ASSERT_EQ(r.code, 0) << r.all();
    write_file(dir_ / "server.py", kServer);
    write_file(dir_ / "client.py", std::string(kChannel) + kClient);
    write_file(dir_ / "aging_client.py", std::string(kChannel) + kAgingClient);
    write_file(dir_ / "stalling_client.py", kStallingClient);

    backend_port_ = free_port();
    auto s = run(std::string(kPython) + " " + dir_ / "server.py" + " " +
                 std::to_string(backend_port_) + " " + dir_.path() + " " + server_args() + " > " +
                 dir_ / "server.log" + " 2>&1 & echo $!");
    ASSERT_EQ(s.code, 0) << s.all();
    server_pid_ = std::stoi(s.out);
    for (int i = 0; i < 300 && !std::filesystem::exists(dir_ / "ready"); ++i) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(std::filesystem::exists(dir_ / "ready")) << read_file(dir_ / "server.log");

    for (int i = 0; i < 2; ++i) {
      ios_.push_back(std::make_unique<asio::io_context>(1));
    }
    std::vector<asio::io_context*> raw;
    for (auto& io : ios_) {
      raw.push_back(io.get());
    }
    router_ = std::make_unique<Router>(raw, RouterOptions{});
    auto t = router_->listen_tls("127.0.0.1", 0);
    ASSERT_TRUE(t) << t.error().message();
    tls_port_ = *t;
    router_->start();
    for (auto& io : ios_) {
      threads_.emplace_back([c = io.get()] {
        auto guard = asio::make_work_guard(*c);
        c->run();
      });
    }
    TlsCertificate c;
    c.names = {"app.test"};
    c.chain_pem = read_file(dir_ / "app.pem") + read_file(dir_ / "ca.pem");
    c.key_pem = read_file(dir_ / "app.key");
    std::vector<TlsCertificate> certs;
    certs.push_back(std::move(c));
    auto p = router_->publish_certificates(std::move(certs));
    ASSERT_TRUE(p) << p.error().message();
  }

  void TearDown() override {
    if (router_) {
      router_->stop();
    }
    for (auto& io : ios_) {
      io->stop();
    }
    for (auto& t : threads_) {
      t.join();
    }
    router_.reset();
    if (server_pid_ > 0) {
      ::kill(server_pid_, SIGKILL);
      run("while kill -0 " + std::to_string(server_pid_) + " 2>/dev/null; do sleep 0.05; done");
    }
  }

  void route(Route::Protocol protocol) {
    auto u = std::make_shared<Upstream>();
    u->id = "i-grpc";
    u->port = backend_port_;
    Route r;
    r.service = "grpc";
    r.upstreams = {u};
    r.protocol = protocol;
    auto t = std::make_shared<RouteTable>();
    t->hosts["app.test"] = r;
    router_->publish(t);
  }

  CmdResult client(const char* script = "client.py") {
    return run("timeout 120 " + std::string(kPython) + " " + dir_ / script + " " +
               std::to_string(tls_port_) + " " + dir_ / "ca.pem");
  }

  TempDir dir_;
  uint16_t backend_port_ = 0;
  int server_pid_ = -1;
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<std::thread> threads_;
  std::unique_ptr<Router> router_;
  uint16_t tls_port_ = 0;
};

TEST_F(RouterGrpcTest, UnaryStreamingAndDeadlineOverH2c) {
  route(Route::Protocol::h2c);
  auto r = client();
  ASSERT_EQ(r.code, 0) << r.all() << read_file(dir_ / "server.log");
  EXPECT_EQ(r.out,
            "unary echo:hello OK t5\n"
            "big True OK t1000000\n"
            "bidi 5 [b'echo:one', b'echo:two', b'echo:three'] True b'echo:five' OK\n"
            "slow DEADLINE_EXCEEDED\n"
            "missing UNIMPLEMENTED\n"
            "concurrent True\n")
      << r.err;
  // Every call, the concurrent ones included, went over one multiplexed connection to the
  // instance, which the router keeps for the next.
  auto ss = run("ss -Htn state established dst 127.0.0.1:" + std::to_string(backend_port_));
  ASSERT_EQ(ss.code, 0) << ss.all();
  EXPECT_EQ(std::count(ss.out.begin(), ss.out.end(), '\n'), 1) << ss.out;
  // The deadline ended the call at the server too (it waits while the call is active).
  for (int i = 0; i < 200 && !std::filesystem::exists(dir_ / "slow-ended"); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(std::filesystem::exists(dir_ / "slow-ended"));
}

TEST_F(RouterGrpcTest, AStreamTheClientStopsReadingHoldsUpNoOther) {
  if (run(std::string(kPython) + " -c 'import h2' 2>&1").code != 0) {
    GTEST_SKIP() << "python3-h2 is not installed";
  }
  route(Route::Protocol::h2c);
  auto r = client("stalling_client.py");
  ASSERT_EQ(r.code, 0) << r.all() << read_file(dir_ / "server.log");
  EXPECT_EQ(r.out, "unary True echo:hello\nflood True\n") << r.err;
  // Both calls were on one connection to the instance.
  auto ss = run("ss -Htn state established dst 127.0.0.1:" + std::to_string(backend_port_));
  EXPECT_EQ(std::count(ss.out.begin(), ss.out.end(), '\n'), 1) << ss.out;
}

TEST_F(RouterGrpcTest, Http1RouteCannotCarryGrpc) {
  // The same server behind an HTTP/1.1 route: the call fails (no trailers, no h2), which
  // shows the test above depends on the route's protocol.
  route(Route::Protocol::http1);
  auto r = client();
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out.find("unary echo:hello OK"), std::string::npos) << r.out;
}

// An instance that ends every connection after 300 ms (gRPC's max_connection_age: GOAWAY, then
// a grace period) costs no call: the router takes no new stream on a connection that got
// GOAWAY, opens another, and sends again a call the instance refused unprocessed.
class RouterGrpcAgingTest : public RouterGrpcTest {
 protected:
  std::string server_args() const override { return "300"; }
};

TEST_F(RouterGrpcAgingTest, ConnectionsTheInstanceEndsCostNoCall) {
  route(Route::Protocol::h2c);
  auto r = client("aging_client.py");
  ASSERT_EQ(r.code, 0) << r.all() << read_file(dir_ / "server.log");
  EXPECT_EQ(r.out, "aging True True\n") << r.err;
}

}  // namespace
}  // namespace berth::test
