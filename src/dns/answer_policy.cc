// SPDX-License-Identifier: Apache-2.0
// Routing policies (weighted, failover, multivalue, with health checks) and ALIAS flattening:
// the parts of an answer that pick among record sets rather than follow the DNS tree.
#include <algorithm>

#include "dns/answer_impl.h"
#include "dns/rdata.h"

namespace berth::dns::detail {

uint32_t Chosen::ttl() const {
  uint32_t t = n > 0 ? sets[0]->ttl : 0;
  for (size_t i = 1; i < n; ++i) {
    t = std::min(t, sets[i]->ttl);
  }
  return t;
}

std::pair<const CompiledSet*, const CompiledSet*> sets_of(const Node& n, uint16_t type) {
  const CompiledSet* b = n.sets.data();
  const CompiledSet* e = b + n.sets.size();
  while (b != e && b->type != type) {
    ++b;
  }
  const CompiledSet* m = b;
  while (m != e && m->type == type) {
    ++m;
  }
  return {b, m};
}

Chosen choose(const Snapshot& snap, const CompiledSet* begin, const CompiledSet* end,
              uint32_t random) {
  Chosen c;
  if (begin == end) {
    return c;
  }
  if (end - begin == 1 && begin->policy == CompiledSet::Policy::Simple) {
    c.sets[c.n++] = begin;
    return c;
  }
  // Healthy candidates; all of them when none is healthy (fail open).
  constexpr size_t kMaxCandidates = 64;
  std::array<const CompiledSet*, kMaxCandidates> cand{};
  size_t n = 0;
  for (const CompiledSet* s = begin; s != end && n < kMaxCandidates; ++s) {
    if (s->health_check.empty() || snap.unhealthy_checks.count(s->health_check) == 0) {
      cand[n++] = s;
    }
  }
  if (n == 0) {
    for (const CompiledSet* s = begin; s != end && n < kMaxCandidates; ++s) {
      cand[n++] = s;
    }
  }
  switch (begin->policy) {
    case CompiledSet::Policy::Simple:
      c.sets[c.n++] = cand[0];
      break;
    case CompiledSet::Policy::Weighted: {
      uint64_t total = 0;
      for (size_t i = 0; i < n; ++i) {
        total += cand[i]->weight;
      }
      if (total == 0) {
        c.sets[c.n++] = cand[random % n];
        break;
      }
      uint64_t r = random % total;
      for (size_t i = 0; i < n; ++i) {
        if (r < cand[i]->weight) {
          c.sets[c.n++] = cand[i];
          break;
        }
        r -= cand[i]->weight;
      }
      break;
    }
    case CompiledSet::Policy::Failover: {
      const CompiledSet* pick = cand[0];
      for (size_t i = 0; i < n; ++i) {
        if (cand[i]->primary) {
          pick = cand[i];
          break;
        }
      }
      c.sets[c.n++] = pick;
      break;
    }
    case CompiledSet::Policy::Multivalue: {
      size_t start = random % n;
      for (size_t i = 0; i < n && c.n < c.sets.size(); ++i) {
        c.sets[c.n++] = cand[(start + i) % n];
      }
      break;
    }
  }
  return c;
}

namespace {

size_t add_addresses(const Chosen& c, uint16_t qtype, std::string_view owner, uint32_t ttl,
                     Collected& out) {
  size_t added = 0;
  for (size_t i = 0; i < c.n; ++i) {
    for (const auto& rd : c.sets[i]->rdata) {
      out.add(owner, qtype, ttl, rd);
      ++added;
    }
  }
  return added;
}

size_t flatten(const Snapshot& snap, const CompiledSet& alias, uint16_t qtype,
               std::string_view owner, uint32_t ttl, uint32_t random, Collected& out, int depth) {
  if (!alias.alias_service.empty()) {
    if (snap.services.count(alias.alias_service) == 0) {
      return 0;
    }
    const auto& addrs = qtype == type::A ? snap.service_a : snap.service_aaaa;
    for (const auto& rd : addrs) {
      out.add(owner, qtype, ttl, rd);
    }
    return addrs.size();
  }
  const Zone* z = snap.zone_for(alias.alias_name);
  const Node* node = z != nullptr ? z->find(alias.alias_name) : nullptr;
  if (node == nullptr) {
    return 0;
  }
  auto [b, e] = sets_of(*node, qtype);
  if (b != e) {
    return add_addresses(choose(snap, b, e, random), qtype, owner, ttl, out);
  }
  if (depth > 0) {
    return 0;
  }
  auto [ab, ae] = sets_of(*node, type::ALIAS);
  Chosen next = choose(snap, ab, ae, random);
  return next.n == 0 ? 0 : flatten(snap, *next.sets[0], qtype, owner, ttl, random, out, 1);
}

}  // namespace

size_t flatten_alias(const Snapshot& snap, const CompiledSet& alias, uint16_t qtype,
                     std::string_view owner, uint32_t random, Collected& out) {
  return flatten(snap, alias, qtype, owner, alias.ttl, random, out, 0);
}

}  // namespace berth::dns::detail
