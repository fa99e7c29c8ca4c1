// SPDX-License-Identifier: Apache-2.0
// authoritative_addresses(): a small stub resolver for one question only, "where does this name
// point at its zone's own name servers?" (dns.h). UDP queries built and read with message.h
// (answers from another id, or not responses, are ignored); a truncated answer is asked again
// over TCP.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "dns/dns.h"
#include "dns/message.h"
#include "dns/name.h"
#include "dns/peer.h"
#include "dns/rdata.h"

namespace berth::dns {

namespace {

struct QueryTarget {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // as errors name it
};

// "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353" -> a UDP endpoint (port 53 by default).
std::optional<QueryTarget> parse_server(const std::string& s, uint16_t default_port) {
  auto peer = parse_peer(s, default_port);
  if (!peer) {
    return std::nullopt;
  }
  const std::string& host = peer->address;
  uint16_t port = peer->port;
  QueryTarget out;
  out.text = s;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.len = sizeof(sockaddr_in6);
  } else {
    return std::nullopt;
  }
  return out;
}

// The first `nameserver` line of /etc/resolv.conf.
std::string system_resolver() {
  std::ifstream in("/etc/resolv.conf");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (words >> key >> value && key == "nameserver") {
      return value;
    }
  }
  return "";
}

// The query again over TCP (RFC 7766): two bytes of length before each message.
Result<Message> ask_tcp(const QueryTarget& server, const std::string& query, uint16_t id,
                        std::chrono::steady_clock::time_point deadline,
                        std::chrono::milliseconds timeout) {
  int fd = ::socket(server.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return Error(Errc::Unavailable, "socket: " + std::string(std::strerror(errno)));
  }
  auto fail = [&](const std::string& why) {
    ::close(fd);
    return Error(Errc::Unavailable, server.text + " over TCP: " + why);
  };
  // Waits until fd is ready for `events` or the deadline passes.
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, events, 0};
    return left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) > 0;
  };
  std::string no_answer = "no answer within " + std::to_string(timeout.count()) + " ms";
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&server.addr), server.len) != 0 &&
      errno != EINPROGRESS) {
    return fail(std::strerror(errno));
  }
  if (!wait(POLLOUT)) {
    return fail(no_answer);
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    return fail(std::strerror(err != 0 ? err : errno));
  }
  std::string out;
  out.push_back(static_cast<char>(query.size() >> 8));
  out.push_back(static_cast<char>(query.size() & 0xff));
  out += query;
  for (size_t sent = 0; sent < out.size();) {
    ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLOUT)) {
        return fail(no_answer);
      }
      continue;
    }
    if (n < 0) {
      return fail(std::strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }
  std::string in;
  size_t want = 2;
  char buf[4096];
  while (in.size() < want) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLIN)) {
        return fail(no_answer);
      }
      continue;
    }
    if (n <= 0) {
      return fail(n == 0 ? "the connection closed before the answer" : std::strerror(errno));
    }
    in.append(buf, static_cast<size_t>(n));
    if (want == 2 && in.size() >= 2) {
      want = 2 + ((static_cast<size_t>(static_cast<uint8_t>(in[0])) << 8) |
                  static_cast<uint8_t>(in[1]));
    }
  }
  ::close(fd);
  auto m = parse_message(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(in.data()) + 2, want - 2));
  if (!m || m->id != id || (m->flags & flag::QR) == 0) {
    return Error(Errc::Unavailable, server.text + " over TCP: not an answer to the query");
  }
  return m;
}

// One question to one server over UDP (over TCP when the answer was cut short); the answer, or
// an error naming the server.
Result<Message> ask(const QueryTarget& server, const std::string& qname, uint16_t qtype,
                    bool recursive, std::chrono::milliseconds timeout) {
  static thread_local std::mt19937 rng(std::random_device{}());
  uint16_t id = static_cast<uint16_t>(rng());
  std::string query;
  Writer w(query, kDefaultUdpPayload);
  w.header(id, recursive ? flag::RD : 0);
  if (!w.question(Question{qname, qtype, kClassIN})) {
    return Error(Errc::InvalidArgument, "the name does not fit in a query");
  }
  int fd = ::socket(server.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Error(Errc::Unavailable, "socket: " + std::string(std::strerror(errno)));
  }
  auto fail = [&](const std::string& why) {
    ::close(fd);
    return Error(Errc::Unavailable, server.text + ": " + why);
  };
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&server.addr), server.len) != 0 ||
      ::send(fd, query.data(), query.size(), 0) < 0) {
    return fail(std::strerror(errno));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<uint8_t, 4096> buf{};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return fail("no answer within " + std::to_string(timeout.count()) + " ms");
    }
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      return fail(std::strerror(errno));  // ECONNREFUSED: nothing listens there
    }
    auto m = parse_message(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    if (m && m->id == id && (m->flags & flag::QR) != 0) {
      ::close(fd);
      if ((m->flags & flag::TC) != 0) {
        // Cut short (RFC 1035 4.2.1): the whole answer comes over TCP.
        return ask_tcp(server, query, id, deadline, timeout);
      }
      return m;
    }
  }
}

std::string address_text(const ResourceRecord& rr) {
  if (rr.type != type::A && rr.type != type::AAAA) {
    return "";
  }
  auto text = rdata_to_text(rr.type, rr.rdata);
  return text ? *text : "";
}

constexpr size_t kMaxCnameFollows = 8;

// "a.example.org -> b.example.net -> a.example.org", for errors.
std::string chain_text(const std::vector<std::string>& chain) {
  std::string out;
  for (const auto& n : chain) {
    out += (out.empty() ? "" : " -> ") + name_to_api(n);
  }
  return out;
}

// The addresses of chain.back() (wire form) at its zone's own name servers. chain: the names
// so far, the linked name first and each CNAME's target after it; a CNAME into another zone
// adds its target and asks that zone's servers the same way.
Result<std::vector<std::string>> addresses_at_zone(std::vector<std::string>& chain,
                                                   const QueryTarget& resolver,
                                                   const std::string& rtext,
                                                   std::chrono::milliseconds timeout) {
  const std::string wire = chain.back();
  const std::string name = name_to_api(wire);
  // The zone: the closest enclosing name with an NS set (the name itself may not exist yet).
  std::vector<std::string> ns_names;
  std::string zone;
  std::string zone_wire;
  for (std::string_view at = wire; name_labels(at) >= 1 && ns_names.empty(); at = name_parent(at)) {
    BERTH_ASSIGN_OR_RETURN(auto m, ask(resolver, std::string(at), type::NS, true, timeout));
    for (const auto& rr : m.answers) {
      if (rr.type == type::NS && name_equal(rr.name, at)) {
        ns_names.push_back(rr.rdata);
        zone = name_to_api(at);
        zone_wire = std::string(at);
      }
    }
  }
  if (ns_names.empty()) {
    return Error(Errc::Unavailable,
                 "no zone with name servers holds " + name + " (asked " + rtext + ")");
  }
  // Their addresses, through the resolver.
  std::vector<QueryTarget> servers;
  for (const auto& ns : ns_names) {
    for (uint16_t t : {type::A, type::AAAA}) {
      auto m = ask(resolver, ns, t, true, timeout);
      if (!m) {
        continue;
      }
      for (const auto& rr : m->answers) {
        std::string a = address_text(rr);
        if (auto s = a.empty() ? std::nullopt : parse_server(a, 53)) {
          s->text = name_to_api(ns) + " (" + a + ")";
          servers.push_back(*s);
        }
      }
    }
  }
  if (servers.empty()) {
    return Error(Errc::Unavailable, "the name servers of " + zone + " have no address");
  }
  // Each name server, directly: the first that answers for the zone says what the name is.
  std::string last_error;
  const size_t known = chain.size();
  for (const auto& s : servers) {
    std::vector<std::string> out;
    bool answered = false;
    for (uint16_t t : {type::A, type::AAAA}) {
      auto m = ask(s, wire, t, false, timeout);
      if (!m) {
        last_error = m.error().message();
        continue;
      }
      if (m->rcode() != rcode::NOERROR && m->rcode() != rcode::NXDOMAIN) {
        last_error = s.text + " answered rcode " + std::to_string(m->rcode());
        continue;
      }
      if ((m->flags & flag::AA) == 0) {
        // A referral or a cached answer: this server does not hold the zone (a lame
        // delegation); another may.
        last_error = s.text + " does not answer with authority for " + zone;
        continue;
      }
      for (const auto& rr : m->answers) {
        if (std::string a = address_text(rr); !a.empty()) {
          out.push_back(a);
        }
      }
      if (answered) {
        continue;  // the chain was walked on the first answer
      }
      answered = true;
      // The server followed the CNAMEs as far as its zone goes (RFC 1034 4.3.2); the chain
      // goes on where the answer's CNAMEs end.
      for (std::string end = wire;;) {
        auto next = std::find_if(m->answers.begin(), m->answers.end(), [&](const auto& rr) {
          return rr.type == type::CNAME && name_equal(rr.name, end);
        });
        if (next == m->answers.end()) {
          break;
        }
        end = next->rdata;
        bool seen = std::any_of(chain.begin(), chain.end(),
                                [&](const std::string& n) { return name_equal(n, end); });
        chain.push_back(end);
        if (seen) {
          return Error(Errc::FailedPrecondition, "a CNAME loop: " + chain_text(chain));
        }
        if (chain.size() - 1 > kMaxCnameFollows) {
          return Error(Errc::FailedPrecondition, "more than " + std::to_string(kMaxCnameFollows) +
                                                     " CNAMEs: " + chain_text(chain));
        }
      }
    }
    if (!answered) {
      continue;
    }
    // A CNAME into another zone: that zone's own name servers say the rest. (One whose target
    // is in this zone was answered here already, the target's records or its absence.)
    if (out.empty() && chain.size() > known && !name_is_within(chain.back(), zone_wire)) {
      return addresses_at_zone(chain, resolver, rtext, timeout);
    }
    return out;
  }
  return Error(Errc::Unavailable, "no name server of " + zone + " answered: " + last_error);
}

}  // namespace

Result<PointsAt> authoritative_addresses(const std::string& name, const std::string& resolver_text,
                                         std::chrono::milliseconds timeout) {
  std::string rtext = resolver_text.empty() ? system_resolver() : resolver_text;
  auto resolver = parse_server(rtext, 53);
  if (!resolver) {
    return Error(Errc::Unavailable, "no usable resolver ('" + rtext + "')");
  }
  BERTH_ASSIGN_OR_RETURN(std::string wire, name_from_text(name));
  std::vector<std::string> chain{wire};
  PointsAt out;
  BERTH_ASSIGN_OR_RETURN(out.addresses, addresses_at_zone(chain, *resolver, rtext, timeout));
  for (size_t i = 1; i < chain.size(); ++i) {
    out.cnames.push_back(name_to_api(chain[i]));
  }
  return out;
}

}  // namespace berth::dns
