// SPDX-License-Identifier: Apache-2.0
// The compiled, immutable form of the zones that queries are answered from: every name a
// node (empty non-terminals included), keyed by lower-cased wire name, rdata in wire form.
// Built per change (only the names a batch touched are compiled again, the other nodes shared
// with the zone before) and swapped in whole (a query never sees half a batch).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dns/dns.h"

namespace berth::dns {

struct CompiledSet {
  uint16_t type = 0;  // ALIAS stays type::ALIAS here; answer.cc flattens it
  uint32_t ttl = 0;
  std::vector<std::string> rdata;  // wire form, one per record
  // Routing policy
  std::string set_identifier;
  uint32_t weight = 0;
  enum class Policy : uint8_t { Simple, Weighted, Failover, Multivalue } policy = Policy::Simple;
  bool primary = false;  // failover: PRIMARY (else SECONDARY)
  std::string health_check;
  // ALIAS targets
  std::string alias_service;
  std::string alias_name;  // wire form, lower-case

  bool operator==(const CompiledSet&) const = default;
};

struct Node {
  std::string name;               // lower-cased wire form
  std::vector<CompiledSet> sets;  // sets sharing a type are adjacent
  bool is_delegation = false;     // NS here and not the apex: a zone cut
  /// Nodes one label below (an empty non-terminal is kept exactly while it has any).
  uint32_t children = 0;

  bool operator==(const Node&) const = default;
};

/// A zone's nodes by name: an open-addressing hash table (linear probing, at most half full)
/// of shared nodes, each holding its own name. The next version of a zone starts as a copy,
/// which copies pointers only; lookups touch one array and the node.
class NodeIndex {
 public:
  /// The slot holding the node named `lower_wire`, or null.
  std::shared_ptr<Node>* find(std::string_view lower_wire);
  const Node* find(std::string_view lower_wire) const;
  /// Adds a node whose name is not in the index yet.
  void insert(std::shared_ptr<Node> node);
  void erase(std::string_view lower_wire);
  size_t size() const { return size_; }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& s : slots_) {
      if (s) {
        f(*s);
      }
    }
  }

 private:
  size_t home(std::string_view name) const;
  size_t find_slot(std::string_view name) const;  // the node's slot, or the empty one it needs
  void grow();

  std::vector<std::shared_ptr<Node>> slots_;  // a power of two long (or empty)
  size_t size_ = 0;
};

class Zone {
 public:
  /// Compiles validated zone data. InvalidArgument only if the data breaks a rule.
  static Result<std::shared_ptr<const Zone>> compile(const ZoneData& z);
  /// The same for data apply_changes returned (already validated whole): skips validation.
  static Result<std::shared_ptr<const Zone>> compile_validated(const ZoneData& z);
  /// The zone after a batch, from the zone before it: z and delta are what
  /// apply_changes_to_valid returned for old.data() (delta.names index z.sets). Only the names the
  /// batch touched are compiled again (and their parents' empty non-terminals kept or dropped);
  /// every other node is shared with `old`, which is not changed.
  static Result<std::shared_ptr<const Zone>> compile_changed(const Zone& old, ZoneData z,
                                                             const ZoneDelta& delta);

  const std::string& apex() const { return apex_; }  // wire form, lower-case
  /// The zone's data, sets in canonical order.
  const ZoneData& data() const { return data_; }
  uint32_t serial() const { return data_.serial; }
  /// The node for a lower-cased wire name inside the zone, or null.
  const Node* find(std::string_view lower_wire) const;
  const Node& apex_node() const;
  uint32_t soa_minimum() const { return soa_minimum_; }
  /// True when both zones have the same nodes, node for node (compile_changed's tests).
  bool same_nodes_for_test(const Zone& other) const;

 private:
  Status rebuild_node(const ZoneDelta::Name& name, std::unordered_set<const Node*>& fresh);
  // The node named `wire`, added empty when missing.
  Node& node_at(std::string_view wire);

  std::string apex_;
  ZoneData data_;
  uint32_t soa_minimum_ = 300;
  // Nodes are shared between a zone and the next one compile_changed makes from it; a node is
  // replaced (never changed) once its zone is published.
  NodeIndex nodes_;
};

/// Everything an answer depends on, immutable: the zones, the health of checks, and the
/// addresses an ALIAS to a service resolves to.
struct Snapshot {
  /// Keyed by the apex's lower-cased wire name.
  std::unordered_map<std::string, std::shared_ptr<const Zone>> zones;
  std::unordered_set<std::string> unhealthy_checks;
  std::vector<std::string> service_a;        // 4-byte rdata each
  std::vector<std::string> service_aaaa;     // 16-byte rdata each
  std::unordered_set<std::string> services;  // known services (others: ALIAS answers NODATA)

  /// The zone holding a lower-cased wire name: the deepest apex it lies within, or null.
  const Zone* zone_for(std::string_view lower_wire) const;
};

}  // namespace berth::dns
