// SPDX-License-Identifier: Apache-2.0
// gRPC end to end: a Python grpcio server in a service instance (runc, its own network
// namespace), a service with --protocol h2c, a domain linked with berth's own CA, and a grpcio
// client over TLS (ALPN h2) to the router. The image is this machine's python3 and grpcio:
// the files a run of the same server loaded, copied into a layer with umoci.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "e2e/e2e_util.h"
#include "support/harness.h"

namespace berth::test {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

// The server: echoes unary calls with a trailer, echoes a bidirectional stream message by
// message, and holds "Slow" calls until the client gives up, noting that the call ended.
// `python3 server.py` in the instance (on $PORT); `python3 server.py --closure` on the host runs it
// once against itself and prints every file the interpreter loaded.
constexpr const char* kServer = R"PY(
import os, struct, sys, time, grpc
from concurrent import futures

ended = []

def unary(req, ctx):
    seen = dict(ctx.invocation_metadata())
    ctx.set_trailing_metadata((("x-served-by", os.uname().nodename),
                               ("x-seen-proto", seen.get("x-forwarded-proto", "-")),
                               ("x-seen-for", seen.get("x-forwarded-for", "-"))))
    return b"echo:" + req

def bidi(it, ctx):
    for m in it:
        yield b"echo:" + m

def slow(req, ctx):
    while ctx.is_active():
        time.sleep(0.02)
    ended.append(req)
    return req

def ended_count(req, ctx):
    return str(len(ended)).encode()

handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    "Slow": grpc.unary_unary_rpc_method_handler(slow),
    "Ended": grpc.unary_unary_rpc_method_handler(ended_count),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))

if sys.argv[1:] == ["--closure"]:
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ch = grpc.insecure_channel("127.0.0.1:%d" % port)
    ch.unary_unary("/echo.Echo/Unary")(b"x", timeout=10)
    list(ch.stream_stream("/echo.Echo/Bidi")(iter([b"a", b"b"]), timeout=10))
    try:
        ch.unary_unary("/echo.Echo/Slow")(b"z", timeout=0.2)
    except grpc.RpcError:
        pass
    server.stop(1).wait()
    files = {sys.executable, os.path.realpath(sys.executable)}
    # The program interpreter (ld.so) under the name the executable asks for (PT_INTERP).
    elf = open(os.path.realpath(sys.executable), "rb").read()
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        ph = phoff + i * phentsize
        if struct.unpack_from("<I", elf, ph)[0] == 3:
            off, = struct.unpack_from("<Q", elf, ph + 8)
            size, = struct.unpack_from("<Q", elf, ph + 32)
            files.add(elf[off:off + size].rstrip(b"\0").decode())
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if f:
            files.add(f)
    # Shared objects as mapped (their real file names), under the names the loader looks
    # for: every name in the same directory that leads to the same file (libz.so.1).
    libs = set()
    for line in open("/proc/self/maps"):
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("/") and ".so" in parts[5]:
            libs.add(parts[5])
    for d in {os.path.dirname(l) for l in libs}:
        for n in os.listdir(d):
            if os.path.realpath(os.path.join(d, n)) in libs:
                files.add(os.path.join(d, n))
    print("\n".join(sorted(files)))
    sys.exit(0)

server.add_insecure_port("[::]:" + os.environ["PORT"])
server.start()
print("grpc server on", os.environ["PORT"], flush=True)
server.wait_for_termination()
)PY";

// The client, over TLS to the router: `python3 client.py PORT CA NAME`.
constexpr const char* kClient = R"PY(
import queue, sys, grpc
port, ca, name = sys.argv[1], sys.argv[2], sys.argv[3]
creds = grpc.ssl_channel_credentials(open(ca, "rb").read())
opts = (("grpc.ssl_target_name_override", name), ("grpc.default_authority", name))
ch = grpc.secure_channel("127.0.0.1:" + port, creds, options=opts)
unary = ch.unary_unary("/echo.Echo/Unary")

resp, call = unary.with_call(b"hello", timeout=30)
trailers = dict(call.trailing_metadata())
print("unary", resp.decode(), call.code().name, "x-served-by" in trailers)
print("forwarded", trailers.get("x-seen-proto"), trailers.get("x-seen-for"))
big = b"x" * 3000000
resp, call = unary.with_call(big, timeout=30)
print("big", resp == b"echo:" + big, call.code().name)

# Each message is sent only once the answer to the one before has come back: both directions
# of one stream are open at the same time.
outbox, got = queue.Queue(), []
def requests():
    for i in range(5):
        yield b"m%d" % i
        if outbox.get(timeout=10) is None:
            return
call = ch.stream_stream("/echo.Echo/Bidi")(requests(), timeout=30)
for m in call:
    got.append(m.decode())
    outbox.put(m)
print("bidi", ",".join(got), call.code().name)

try:
    ch.unary_unary("/echo.Echo/Slow")(b"z", timeout=0.5)
    print("slow OK")
except grpc.RpcError as e:
    print("slow", e.code().name)
)PY";

constexpr const char* kEnded = R"PY(
import sys, time, grpc
port, ca, name = sys.argv[1], sys.argv[2], sys.argv[3]
opts = (("grpc.ssl_target_name_override", name), ("grpc.default_authority", name))
ch = grpc.secure_channel("127.0.0.1:" + port, grpc.ssl_channel_credentials(open(ca, "rb").read()),
                         options=opts)
ended = ch.unary_unary("/echo.Echo/Ended")
for _ in range(100):
    n = ended(b"", timeout=10).decode()
    if n != "0":
        break
    time.sleep(0.05)
print("ended", n)
)PY";

class GrpcService : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!can_run_services(&why)) {
      GTEST_SKIP() << why;
    }
    if (run(std::string(kPython) + " -c 'import grpc' 2>&1").code != 0) {
      GTEST_SKIP() << "python3-grpcio is not installed";
    }
    d_ = std::make_unique<TestDaemon>();
    write_file(work_ / "server.py", kServer);
    write_file(work_ / "client.py", kClient);
    write_file(work_ / "ended.py", kEnded);
  }

  // An OCI layout holding python3, grpcio and server.py, run as `python3 /app/server.py`.
  void make_image(const std::string& layout) {
    auto closure = run(std::string(kPython) + " " + work_ / "server.py" + " --closure");
    ASSERT_EQ(closure.code, 0) << closure.all();
    std::string list = work_ / "files";
    write_file(list, closure.out);
    std::string bundle = work_ / "bundle";
    auto r = run("set -e; umoci init --layout " + layout + "; umoci new --image " + layout +
                 ":v1; umoci unpack --rootless --image " + layout + ":v1 " + bundle +
                 " >/dev/null; xargs -a " + list + " cp -L --parents -t " + bundle +
                 "/rootfs; mkdir -p " + bundle + "/rootfs/app " + bundle + "/rootfs/tmp; cp " +
                 work_ / "server.py" + " " + bundle + "/rootfs/app/; umoci repack --image " +
                 layout + ":v1 " + bundle + "; umoci config --image " + layout +
                 ":v1 --os linux --architecture amd64 --config.cmd " + kPython +
                 " --config.cmd /app/server.py 2>&1");
    ASSERT_EQ(r.code, 0) << r.all();
  }

  std::string client(const char* script, const std::string& name) {
    auto r = run(std::string(kPython) + " " + work_ / script + " " +
                 std::to_string(d_->router_tls_port()) + " " + work_ / "root.pem" + " " + name +
                 " 2>&1");
    return r.out;
  }

  TempDir work_;
  std::unique_ptr<TestDaemon> d_;
};

TEST_F(GrpcService, UnaryStreamingAndDeadlinesReachAnInstanceOverH2c) {
  std::string layout = work_ / "layout";
  ASSERT_NO_FATAL_FAILURE(make_image(layout));
  ASSERT_EQ(d_->cli("repo create apps/echo").code, 0);
  auto push = run("skopeo copy -q --dest-tls-verify=false --dest-creds '" + d_->creds() +
                  "' oci:" + layout + ":v1 docker://" + d_->host() + "/apps/echo:v1");
  ASSERT_EQ(push.code, 0) << push.all();

  auto svc = d_->cli("service create echo --image apps/echo:v1 --port 8080 --protocol h2c");
  ASSERT_EQ(svc.code, 0) << svc.all();
  ASSERT_EQ(d_->cli("dns zone create example.com").code, 0);
  auto link = d_->cli("domain link echo grpc.example.com");
  ASSERT_EQ(link.code, 0) << link.all();
  EXPECT_NE(link.out.find("grpc.example.com: ACTIVE"), std::string::npos) << link.out;
  write_file(work_ / "root.pem", d_->cli("ca export").out);
  auto show = d_->cli("service show echo");
  EXPECT_NE(show.out.find("h2c"), std::string::npos) << show.out;

  // The name resolves to the router through berth's DNS; the client connects to 127.0.0.1
  // with that name in its SNI and :authority, as `curl --resolve` would.
  if (have("dig")) {
    auto dig = run("dig @127.0.0.1 -p " + std::to_string(d_->dns_port()) +
                   " +norec +short grpc.example.com A");
    EXPECT_EQ(dig.out, "127.0.0.1\n") << dig.all();
  }

  // The deployment is up once create returns; the route and certificate may take a moment.
  std::string out;
  eventually(
      [&] {
        out = client("client.py", "grpc.example.com");
        return out.find("unary echo:hello OK True") != std::string::npos;
      },
      std::chrono::seconds(60));
  ASSERT_NE(out.find("unary echo:hello OK True"), std::string::npos)
      << out << d_->cli("logs echo").all();
  EXPECT_NE(out.find("big True OK"), std::string::npos) << out;
  // The instance learns the scheme and the client's address, as over HTTP/1.1.
  EXPECT_NE(out.find("forwarded https 127.0.0.1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("bidi echo:m0,echo:m1,echo:m2,echo:m3,echo:m4 OK"), std::string::npos) << out;
  EXPECT_NE(out.find("slow DEADLINE_EXCEEDED"), std::string::npos) << out;
  // The deadline ended the call in the instance too, not only at the client.
  EXPECT_NE(client("ended.py", "grpc.example.com").find("ended 1"), std::string::npos);
}

}  // namespace
}  // namespace berth::test
