// SPDX-License-Identifier: Apache-2.0
// Private to answer*.cc: the records an answer collects before it is written (views into the
// query and the snapshot, so nothing is copied), and the routing-policy choice among the sets
// that share a name and type (answer_policy.cc).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "dns/zone.h"

namespace berth::dns::detail {

/// One record to write. Views stay valid for one answer_query call.
struct PendingRr {
  std::string_view owner;  // wire
  uint16_t type = 0;
  uint32_t ttl = 0;
  std::string_view rdata;
};

/// A run of records written together: cut whole, never in part.
struct PendingSet {
  uint8_t section = 0;    // Writer::Section
  bool optional = false;  // extra data: dropped without TC when it does not fit
  uint32_t first = 0;     // into Collected::rrs
  uint32_t count = 0;
};

struct Collected {
  std::vector<PendingRr> rrs;
  std::vector<PendingSet> sets;
  void clear() {
    rrs.clear();
    sets.clear();
  }
  void begin(uint8_t section, bool optional) {
    sets.push_back({section, optional, static_cast<uint32_t>(rrs.size()), 0});
  }
  void add(std::string_view owner, uint16_t type, uint32_t ttl, std::string_view rdata) {
    rrs.push_back({owner, type, ttl, rdata});
    ++sets.back().count;
  }
  /// Drops the last set when nothing went into it.
  void end() {
    if (!sets.empty() && sets.back().count == 0) {
      sets.pop_back();
    }
  }
};

/// The sets a routing policy picks: one, or up to 8 for multivalue.
struct Chosen {
  std::array<const CompiledSet*, 8> sets{};
  size_t n = 0;
  /// Multivalue answers are one RRset: it carries the smallest TTL of the sets in it
  /// (RFC 2181 §5.2: the TTLs of an RRset match).
  uint32_t ttl() const;
};

/// The sets of `type` at a node (adjacent in Node::sets): [begin, end).
std::pair<const CompiledSet*, const CompiledSet*> sets_of(const Node& n, uint16_t type);

/// Applies the routing policy to the sets of one name and type. Sets whose health check is
/// unhealthy are left out; when every set is unhealthy all count as healthy (Route 53 fails
/// open rather than answering nothing). Weighted: one set, chosen by weight with `random`
/// (all weights 0: uniform). Failover: the PRIMARY, else the SECONDARY. Multivalue: up to 8
/// sets, starting at a `random` offset.
Chosen choose(const Snapshot& snap, const CompiledSet* begin, const CompiledSet* end,
              uint32_t random);

/// An ALIAS answered as `qtype` (A or AAAA): the records of its target, added to `out` with
/// `owner` and the ALIAS's TTL. A service answers the router's addresses; a name answers the
/// A/AAAA at that name in a zone berth hosts, following one more ALIAS there. Returns the
/// number of records added (0: NODATA).
size_t flatten_alias(const Snapshot& snap, const CompiledSet& alias, uint16_t qtype,
                     std::string_view owner, uint32_t random, Collected& out);

}  // namespace berth::dns::detail
