// SPDX-License-Identifier: Apache-2.0
// A standalone berth router for bench/router_bench.sh: one route (hosts "127.0.0.1",
// "localhost" and "bench") to one or more upstreams, io_contexts on N threads, until SIGINT
// or SIGTERM.
//
//   berth_router_bench --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000 [--upstream ...]
//                      [--threads N] [--max-idle N] [--access-log] [--protocol h2c]
//                      [--tls-listen 127.0.0.1:8443 --cert CHAIN.pem --key KEY.pem]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.h"
#include "router/router.h"

namespace {

bool split_host_port(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  host = s.substr(0, colon);
  port = static_cast<uint16_t>(std::atoi(s.c_str() + colon + 1));
  return port != 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace berth;
  std::string listen = "127.0.0.1:8080";
  std::string tls_listen, cert_file, key_file;
  std::vector<std::string> upstreams;
  bool h2c = false;  // to the upstreams over HTTP/2 cleartext (as for gRPC)
  size_t threads = std::thread::hardware_concurrency();
  router::RouterOptions opts;
  opts.access_log = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (a == "--upstream" && i + 1 < argc) {
      upstreams.emplace_back(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      threads = static_cast<size_t>(std::atoi(argv[++i]));
    } else if (a == "--tls-listen" && i + 1 < argc) {
      tls_listen = argv[++i];
    } else if (a == "--cert" && i + 1 < argc) {
      cert_file = argv[++i];
    } else if (a == "--key" && i + 1 < argc) {
      key_file = argv[++i];
    } else if (a == "--max-idle" && i + 1 < argc) {
      opts.max_idle_per_upstream = static_cast<size_t>(std::atoi(argv[++i]));
    } else if (a == "--protocol" && i + 1 < argc && std::string(argv[i + 1]) == "h2c") {
      h2c = true;
      ++i;
    } else if (a == "--access-log") {
      opts.access_log = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s --listen HOST:PORT --upstream HOST:PORT... [--threads N] "
                   "[--max-idle N] [--access-log]\n",
                   argv[0]);
      return 2;
    }
  }
  if (upstreams.empty() || threads == 0) {
    std::fprintf(stderr, "need --upstream and --threads >= 1\n");
    return 2;
  }
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::io_context*> raw;
  for (size_t i = 0; i < threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    raw.push_back(contexts.back().get());
  }
  router::Router r(raw, opts);
  router::Route route;
  route.service = "bench";
  route.protocol = h2c ? router::Route::Protocol::h2c : router::Route::Protocol::http1;
  for (size_t i = 0; i < upstreams.size(); ++i) {
    auto u = std::make_shared<router::Upstream>();
    u->id = "bench-" + std::to_string(i);
    if (!split_host_port(upstreams[i], u->host, u->port)) {
      std::fprintf(stderr, "bad upstream %s\n", upstreams[i].c_str());
      return 2;
    }
    route.upstreams.push_back(u);
  }
  auto table = std::make_shared<router::RouteTable>();
  for (const char* h : {"127.0.0.1", "localhost", "bench"}) {
    table->hosts[h] = route;
  }
  r.publish(table);
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(listen, host, port)) {
    std::fprintf(stderr, "bad --listen %s\n", listen.c_str());
    return 2;
  }
  auto bound = r.listen(host, port);
  if (!bound) {
    std::fprintf(stderr, "%s\n", bound.error().message().c_str());
    return 1;
  }
  if (!tls_listen.empty()) {
    auto slurp = [](const std::string& f) {
      std::ifstream in(f);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    router::TlsCertificate cert;
    cert.chain_pem = slurp(cert_file);
    cert.key_pem = slurp(key_file);
    if (auto s = r.publish_certificates({cert}); !s) {
      std::fprintf(stderr, "%s\n", s.error().message().c_str());
      return 1;
    }
    std::string th;
    uint16_t tp = 0;
    if (!split_host_port(tls_listen, th, tp)) {
      std::fprintf(stderr, "bad --tls-listen %s\n", tls_listen.c_str());
      return 2;
    }
    auto tb = r.listen_tls(th, tp);
    if (!tb) {
      std::fprintf(stderr, "%s\n", tb.error().message().c_str());
      return 1;
    }
  }
  r.start();
  std::printf("listening on %s:%u with %zu threads\n", host.c_str(), *bound, threads);
  std::fflush(stdout);

  asio::signal_set signals(*raw[0], SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    r.stop();
    for (auto* c : raw) {
      c->stop();
    }
  });
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) {
    pool.emplace_back([c = raw[i]] {
      auto guard = asio::make_work_guard(*c);
      c->run();
    });
  }
  raw[0]->run();
  for (auto& t : pool) {
    t.join();
  }
  return 0;
}
