// SPDX-License-Identifier: Apache-2.0
// answer_query: RFC 1034 §4.3.2 over a compiled zone (referrals at zone cuts, CNAME chains in
// the zone, RFC 4592 wildcards from the closest encloser), RFC 2308 negative answers, EDNS0
// (RFC 6891) and truncation. Pure and on the hot path: the common query is parsed with
// parse_question, records are collected as views into the snapshot in per-thread buffers,
// and `out` is reused.
//
// Choices (docs/dns.md):
//  - ANY is answered with one set at the name (RFC 8482 §4.2, as NSD 4.6 does: the first in
//    type order that has data, an ALIAS flattened to A, else AAAA), with no NS in authority;
//  - positive answers carry the zone's NS set in authority and its glue in additional, as
//    NSD 4.6 does by default (minimal-responses: no); both are extra data, dropped first
//    when the reply is too big (kApexNsInPositiveAnswers turns it off);
//  - a CNAME is followed only within the zone the query fell in (at most 8 steps); a chain
//    that leaves the zone or loops gets no NS in authority (as NSD 4.6);
//  - an address already in the answer is not repeated in additional (as NSD 4.6).
#include "dns/answer.h"

#include <algorithm>
#include <cctype>

#include "dns/answer_impl.h"
#include "dns/name.h"
#include "dns/rdata.h"

namespace berth::dns {

namespace {

using detail::choose;
using detail::Chosen;
using detail::Collected;
using detail::flatten_alias;
using detail::sets_of;

constexpr bool kApexNsInPositiveAnswers = true;  // NSD 4.6 default; false = minimal responses
constexpr int kMaxCnameSteps = 8;
constexpr size_t kTcpLimit = 65535;
constexpr size_t kOptBytes = 11;  // root name, type, class, TTL, RDLENGTH 0
constexpr uint16_t kTypeDs = 43;

uint16_t be16(std::span<const uint8_t> p, size_t at) {
  return static_cast<uint16_t>((p[at] << 8) | p[at + 1]);
}

void lower_into(std::string& dst, std::string_view src) {
  dst.assign(src);
  for (char& c : dst) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
}

/// Where the target name of an MX/SRV/NS record starts in its rdata (npos: none).
size_t target_offset(uint16_t t) {
  switch (t) {
    case type::NS:
      return 0;
    case type::MX:
      return 2;
    case type::SRV:
      return 6;
    default:
      return std::string_view::npos;
  }
}

/// Per-thread scratch reused by every query (no heap traffic once warm).
struct Scratch {
  Message msg;
  Collected rec;
  std::string lname;   // the lower-cased name being looked up
  std::string wild;    // "*." + closest encloser
  std::string target;  // lower-cased additional-section target
  std::vector<std::string_view> done_targets;
  std::vector<uint8_t> skip;  // per PendingSet, while writing
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

enum class Outcome { Answer, NoData, NxDomain, Referral };

struct Resolver {
  const Snapshot& snap;
  const Zone& zone;
  uint16_t qtype;
  uint32_t random;
  Scratch& s;
  int rcode = rcode::NOERROR;
  bool aa = true;
  bool positive = false;    // the answer section holds data
  bool referred = false;    // the lookup ended at a zone cut
  bool negative = false;    // the chain ended in NXDOMAIN or NODATA
  bool unresolved = false;  // the chain ended in a CNAME left unfollowed (out of zone, loop)

  void add_chosen(const Chosen& c, std::string_view owner, uint16_t t) {
    if (c.n == 0) {
      return;
    }
    uint32_t ttl = c.ttl();
    s.rec.begin(Writer::kAnswer, false);
    for (size_t i = 0; i < c.n; ++i) {
      for (const auto& rd : c.sets[i]->rdata) {
        s.rec.add(owner, t, ttl, rd);
      }
    }
    s.rec.end();
  }

  /// The answer at a node that exists (or a wildcard standing for the name). Returns the
  /// CNAME target to follow, or an empty view.
  std::string_view at_node(const Node& node, std::string_view owner, Outcome& outcome) {
    size_t before = s.rec.rrs.size();
    if (qtype != type::CNAME && qtype != type::ANY) {
      auto [cb, ce] = sets_of(node, type::CNAME);
      if (cb != ce) {
        Chosen c = choose(snap, cb, ce, random);
        if (c.n > 0 && !c.sets[0]->rdata.empty()) {
          add_chosen(c, owner, type::CNAME);
          outcome = Outcome::Answer;
          return c.sets[0]->rdata[0];
        }
      }
    }
    if (qtype == type::ANY) {
      // RFC 8482: one set is enough; the first (in type order) that has data.
      for (const CompiledSet* b = node.sets.data();
           b != node.sets.data() + node.sets.size() && s.rec.rrs.size() == before;) {
        auto [tb, te] = sets_of(node, b->type);
        if (b->type == type::ALIAS) {
          Chosen c = choose(snap, tb, te, random);
          for (uint16_t t : {type::A, type::AAAA}) {
            if (c.n > 0 && s.rec.rrs.size() == before) {
              s.rec.begin(Writer::kAnswer, false);
              flatten_alias(snap, *c.sets[0], t, owner, random, s.rec);
              s.rec.end();
            }
          }
        } else {
          add_chosen(choose(snap, tb, te, random), owner, b->type);
        }
        b = te;
      }
    } else if (qtype != type::ALIAS) {
      auto [tb, te] = sets_of(node, qtype);
      if (tb != te) {
        add_chosen(choose(snap, tb, te, random), owner, qtype);
      } else if (qtype == type::A || qtype == type::AAAA) {
        auto [ab, ae] = sets_of(node, type::ALIAS);
        Chosen c = choose(snap, ab, ae, random);
        if (c.n > 0) {
          s.rec.begin(Writer::kAnswer, false);
          flatten_alias(snap, *c.sets[0], qtype, owner, random, s.rec);
          s.rec.end();
        }
      }
    }
    outcome = s.rec.rrs.size() > before ? Outcome::Answer : Outcome::NoData;
    return {};
  }

  void referral(const Node& cut, std::string_view cut_owner) {
    auto [b, e] = sets_of(cut, type::NS);
    Chosen c = choose(snap, b, e, random);
    s.rec.begin(Writer::kAuthority, false);
    for (size_t i = 0; i < c.n; ++i) {
      for (const auto& rd : c.sets[i]->rdata) {
        s.rec.add(cut_owner, type::NS, c.ttl(), rd);
      }
    }
    s.rec.end();
    // RFC 9471: glue for name servers below the cut is required (TC when it does not fit);
    // other addresses are extra data.
    add_glue_for(Writer::kAuthority, type::NS, cut_owner);
  }

  void negative_soa() {
    negative = true;
    auto [b, e] = sets_of(zone.apex_node(), type::SOA);
    if (b == e || b->rdata.empty()) {
      return;
    }
    s.rec.begin(Writer::kAuthority, false);
    s.rec.add(zone.apex(), type::SOA, std::min(b->ttl, zone.soa_minimum()), b->rdata[0]);
    s.rec.end();
  }

  /// True when the answer section already holds `t` records at `owner`.
  bool in_answer(std::string_view owner, uint16_t t) const {
    for (const auto& ps : s.rec.sets) {
      if (ps.section != Writer::kAnswer) {
        continue;
      }
      for (uint32_t i = ps.first; i < ps.first + ps.count; ++i) {
        if (s.rec.rrs[i].type == t && name_equal(s.rec.rrs[i].owner, owner)) {
          return true;
        }
      }
    }
    return false;
  }

  /// A and AAAA for the targets of the `t` records in `section` that lie in the zone: MX
  /// exchanges, SRV targets, name servers. Extra data, except for targets below
  /// `required_below` (a referral's in-domain glue).
  void add_glue_for(uint8_t section, uint16_t t, std::string_view required_below = {}) {
    size_t off = target_offset(t);
    size_t nsets = s.rec.sets.size();
    for (size_t si = 0; si < nsets; ++si) {
      const detail::PendingSet ps = s.rec.sets[si];
      if (ps.section != section) {
        continue;
      }
      for (uint32_t i = ps.first; i < ps.first + ps.count; ++i) {
        const detail::PendingRr rr = s.rec.rrs[i];
        if (rr.type != t || rr.rdata.size() <= off) {
          continue;
        }
        std::string_view target = rr.rdata.substr(off);
        if (!name_is_within(target, zone.apex())) {
          continue;
        }
        bool seen = std::any_of(s.done_targets.begin(), s.done_targets.end(),
                                [&](std::string_view d) { return name_equal(d, target); });
        if (seen) {
          continue;
        }
        s.done_targets.push_back(target);
        lower_into(s.target, target);
        const Node* n = zone.find(s.target);
        if (n == nullptr) {
          continue;
        }
        for (uint16_t at : {type::A, type::AAAA}) {
          auto [b, e] = sets_of(*n, at);
          Chosen c = choose(snap, b, e, random);
          if (c.n == 0 || in_answer(target, at)) {
            continue;
          }
          bool required = !required_below.empty() && name_is_within(target, required_below);
          s.rec.begin(Writer::kAdditional, !required);
          for (size_t k = 0; k < c.n; ++k) {
            for (const auto& rd : c.sets[k]->rdata) {
              s.rec.add(target, at, c.ttl(), rd);
            }
          }
          s.rec.end();
        }
      }
    }
  }

  /// RFC 1034 §4.3.2 step 3, repeated along a CNAME chain.
  void run(std::string_view qname) {
    std::string_view owner = qname;  // the case written: the query's, then the CNAME's
    lower_into(s.lname, qname);
    const int apex_labels = name_labels(zone.apex());
    for (int step = 0;; ++step) {
      // Walk down from the apex: the first missing name ends the walk (compile made every
      // ancestor a node), a delegation on the way is a referral.
      std::array<uint16_t, 128> offs{};
      int nl = 0;
      for (size_t i = 0; i < s.lname.size() && s.lname[i] != 0 && nl < 128;) {
        offs[nl++] = static_cast<uint16_t>(i);
        i += 1 + static_cast<unsigned char>(s.lname[i]);
      }
      const Node* node = &zone.apex_node();
      size_t encloser = s.lname.size() - zone.apex().size();  // offset of the closest encloser
      bool found = true;
      for (int k = nl - apex_labels - 1; k >= 0; --k) {
        const Node* n = zone.find(std::string_view(s.lname).substr(offs[k]));
        if (n == nullptr) {
          found = false;
          break;
        }
        node = n;
        encloser = offs[k];
        if (n->is_delegation && !(k == 0 && qtype == kTypeDs)) {
          if (step == 0) {
            aa = false;
          }
          referred = true;
          referral(*n, owner.substr(offs[k]));
          return;
        }
      }
      Outcome outcome = Outcome::NoData;
      std::string_view next;
      if (found) {
        next = at_node(*node, owner, outcome);
      } else {
        // RFC 4592: the wildcard child of the closest encloser, if any, stands for the name.
        s.wild.assign("\1*");
        s.wild.append(std::string_view(s.lname).substr(encloser));
        const Node* w = zone.find(s.wild);
        if (w == nullptr) {
          outcome = Outcome::NxDomain;
        } else {
          next = at_node(*w, owner, outcome);
        }
      }
      switch (outcome) {
        case Outcome::NxDomain:
          rcode = rcode::NXDOMAIN;
          negative_soa();
          return;
        case Outcome::NoData:
          negative_soa();
          return;
        case Outcome::Answer:
        case Outcome::Referral:
          positive = true;
          break;
      }
      if (next.empty()) {
        return;
      }
      if (step + 1 >= kMaxCnameSteps || !name_is_within(next, zone.apex()) ||
          in_answer(next, type::CNAME)) {
        unresolved = true;
        return;
      }
      owner = next;
      lower_into(s.lname, next);
    }
  }

  void extras() {
    if (!positive) {
      return;
    }
    add_glue_for(Writer::kAnswer, type::MX);
    add_glue_for(Writer::kAnswer, type::SRV);
    add_glue_for(Writer::kAnswer, type::NS);
    if (!kApexNsInPositiveAnswers || referred || negative || unresolved || qtype == type::ANY) {
      return;
    }
    // Not when the answer already is the apex NS set.
    for (const auto& rr : s.rec.rrs) {
      if (rr.type == type::NS && name_equal(rr.owner, zone.apex())) {
        return;
      }
    }
    auto [b, e] = sets_of(zone.apex_node(), type::NS);
    if (b == e) {
      return;
    }
    s.rec.begin(Writer::kAuthority, true);
    for (const auto& rd : b->rdata) {
      s.rec.add(zone.apex(), type::NS, b->ttl, rd);
    }
    s.rec.end();
    add_glue_for(Writer::kAuthority, type::NS);
  }
};

/// Writes header, question, the collected sets that fit, and the OPT. Sets that do not fit
/// are cut whole: extra data silently, answer/authority data with TC and everything after.
void write_reply(std::string& out, size_t limit, uint16_t id, uint16_t flags, const Question& q,
                 const Edns* edns, uint8_t ext_rcode, Scratch& s) {
  const auto& sets = s.rec.sets;
  s.skip.assign(sets.size(), 0);
  bool tc = false;
  for (int attempt = 0; attempt < 4; ++attempt) {
    out.clear();
    Writer w(out, limit);
    w.header(id, flags);
    w.question(q);
    if (edns != nullptr) {
      w.reserve_tail(kOptBytes);
    }
    size_t failed = sets.size();
    for (uint8_t section = 0; section < 3 && failed == sets.size(); ++section) {
      for (size_t i = 0; i < sets.size(); ++i) {
        if (sets[i].section != section || s.skip[i] != 0) {
          continue;
        }
        bool fits = true;
        for (uint32_t r = sets[i].first; r < sets[i].first + sets[i].count; ++r) {
          const auto& rr = s.rec.rrs[r];
          if (!w.add(static_cast<Writer::Section>(section), rr.owner, rr.type, kClassIN, rr.ttl,
                     rr.rdata)) {
            fits = false;
            break;
          }
        }
        if (!fits) {
          failed = i;
          break;
        }
      }
    }
    if (failed == sets.size()) {
      if (tc) {
        w.set_flags(static_cast<uint16_t>(w.flags() | flag::TC));
      }
      if (edns != nullptr) {
        Edns reply;
        reply.udp_payload = kEdnsUdpPayload;
        reply.dnssec_ok = edns->dnssec_ok;
        reply.extended_rcode = ext_rcode;
        w.reserve_tail(0);
        w.opt(reply, ext_rcode);
      }
      return;
    }
    // Drop the set that did not fit and what follows it: every later set when it carried
    // answer or authority data (TC), only the later extra data when it was extra itself.
    bool optional = sets[failed].optional;
    tc |= !optional;
    for (size_t i = 0; i < sets.size(); ++i) {
      bool later = sets[i].section > sets[failed].section ||
                   (sets[i].section == sets[failed].section && i >= failed);
      if (later && (!optional || sets[i].optional)) {
        s.skip[i] = 1;
      }
    }
  }
  // Unreachable in practice (each attempt drops sets); fall back to an empty TC reply.
  out.clear();
  Writer w(out, limit);
  w.header(id, static_cast<uint16_t>(flags | flag::TC));
  w.question(q);
}

/// The OPT of the query, read in place when it is the only record after the question (the
/// common case); nullopt with ok=true when there is none. Anything else: parse_message.
std::optional<Edns> fast_edns(std::span<const uint8_t> p, size_t off, bool& ok) {
  ok = false;
  if (be16(p, 6) != 0 || be16(p, 8) != 0 || be16(p, 10) > 1) {
    return std::nullopt;
  }
  if (be16(p, 10) == 0) {
    ok = off == p.size();
    return std::nullopt;
  }
  if (p.size() < off + kOptBytes || p[off] != 0 || be16(p, off + 1) != type::OPT) {
    return std::nullopt;
  }
  size_t rdlen = be16(p, off + 9);
  if (off + kOptBytes + rdlen != p.size()) {
    return std::nullopt;
  }
  Edns e;
  e.udp_payload = be16(p, off + 3);
  e.extended_rcode = p[off + 5];
  e.version = p[off + 6];
  e.dnssec_ok = (p[off + 7] & 0x80) != 0;
  ok = true;
  return e;
}

}  // namespace

void answer_query(const Snapshot& snap, std::span<const uint8_t> query, const QueryContext& ctx,
                  std::string& out) {
  out.clear();
  if (query.size() < kHeaderBytes) {
    return;  // not even a header: drop
  }
  const uint16_t qflags = be16(query, 2);
  if ((qflags & flag::QR) != 0) {
    return;  // a response: never answer one (reflection loops)
  }
  if (((qflags >> 11) & 0xF) != opcode::QUERY) {
    out = error_reply(query, rcode::NOTIMP);
    return;
  }
  if (be16(query, 4) != 1) {
    out = error_reply(query, rcode::FORMERR);
    return;
  }
  Scratch& s = scratch();
  s.msg.questions.clear();
  s.msg.edns.reset();
  auto off = parse_question(query, s.msg);
  if (!off || s.msg.questions.size() != 1) {
    out = error_reply(query, rcode::FORMERR);
    return;
  }
  bool fast = false;
  std::optional<Edns> edns = fast_edns(query, *off, fast);
  if (!fast) {
    auto full = parse_message(query);
    if (!full || full->questions.size() != 1) {
      out = error_reply(query, rcode::FORMERR);
      return;
    }
    edns = full->edns;
  }
  const Question& q = s.msg.questions[0];
  const uint16_t id = be16(query, 0);
  uint16_t flags = static_cast<uint16_t>(flag::QR | (qflags & (flag::RD | flag::CD)));
  size_t limit = kTcpLimit;
  if (!ctx.tcp) {
    size_t client = edns ? edns->udp_payload : kDefaultUdpPayload;
    limit = std::max<size_t>(kDefaultUdpPayload, std::min<size_t>(client, kEdnsUdpPayload));
  }
  s.rec.clear();
  s.done_targets.clear();
  const Edns* e = edns ? &*edns : nullptr;
  if (edns && edns->version > 0) {
    // RFC 6891 §6.1.3: BADVERS is 16, the upper 8 bits (1) go in the OPT, the header gets 0.
    write_reply(out, limit, id, flags, q, e, static_cast<uint8_t>(rcode::BADVERS >> 4), s);
    return;
  }
  auto refuse = [&] {
    write_reply(out, limit, id, static_cast<uint16_t>(flags | rcode::REFUSED), q, e, 0, s);
  };
  if ((q.klass != kClassIN && q.klass != kClassANY) || q.type == type::AXFR ||
      q.type == type::IXFR) {
    refuse();  // CH/HS are not served; zone transfers only on TCP (server.cc)
    return;
  }
  lower_into(s.lname, q.name);
  const Zone* zone = snap.zone_for(s.lname);
  if (zone == nullptr) {
    refuse();
    return;
  }
  Resolver r{snap, *zone, q.type, ctx.random, s};
  r.run(q.name);
  r.extras();
  if (r.aa) {
    flags |= flag::AA;
  }
  flags = static_cast<uint16_t>(flags | r.rcode);
  write_reply(out, limit, id, flags, q, e, 0, s);
}

}  // namespace berth::dns
