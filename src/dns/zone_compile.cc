// SPDX-License-Identifier: Apache-2.0
// The compiled form queries are answered from: Zone::compile (every name a node), and
// Zone::compile_changed (a batch's names only, the rest shared with the zone before), and the
// lookups (Zone::find, Snapshot::zone_for). Pure; no I/O.
#include <algorithm>

#include "dns/name.h"
#include "dns/rdata.h"
#include "dns/zone.h"
#include "dns/zone_internal.h"

namespace berth::dns {

namespace {

uint32_t read_u32(std::string_view b, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  }
  return v;
}

Result<CompiledSet> compile_set(const RecordSet& s, uint16_t t) {
  CompiledSet c;
  c.type = t;
  c.ttl = s.ttl;
  c.set_identifier = s.set_identifier;
  c.weight = s.weight.value_or(0);
  c.health_check = s.health_check;
  if (s.weight) {
    c.policy = CompiledSet::Policy::Weighted;
  } else if (!s.failover.empty()) {
    c.policy = CompiledSet::Policy::Failover;
    c.primary = s.failover == "PRIMARY";
  } else if (s.multivalue) {
    c.policy = CompiledSet::Policy::Multivalue;
  }
  if (t == type::ALIAS) {
    if (!s.alias_service.empty()) {
      c.alias_service = s.alias_service;
      BERTH_ASSIGN_OR_RETURN(std::string target,
                             name_from_text(s.alias_service + ".service.berth."));
      c.rdata.push_back(name_lower(target));
    } else {
      BERTH_ASSIGN_OR_RETURN(std::string target, name_from_text(s.alias_name));
      c.alias_name = name_lower(target);
      c.rdata.push_back(c.alias_name);
    }
  } else {
    for (const auto& v : s.values) {
      BERTH_ASSIGN_OR_RETURN(std::string rd, rdata_from_text(t, v));
      c.rdata.push_back(std::move(rd));
    }
  }
  return c;
}

// A node's sets compiled: ordered by type (then, as the data is, by set identifier).
Status fill_node(Node& node, const ZoneData& z, size_t first, size_t last, bool apex,
                 uint32_t& soa_minimum) {
  for (size_t k = first; k < last; ++k) {
    BERTH_ASSIGN_OR_RETURN(uint16_t t, type_from_text(z.sets[k].type));
    BERTH_ASSIGN_OR_RETURN(CompiledSet c, compile_set(z.sets[k], t));
    if (t == type::SOA && !c.rdata.empty() && c.rdata[0].size() >= 20) {
      soa_minimum = read_u32(c.rdata[0], c.rdata[0].size() - 4);
    }
    node.sets.push_back(std::move(c));
  }
  std::stable_sort(node.sets.begin(), node.sets.end(),
                   [](const CompiledSet& a, const CompiledSet& b) { return a.type < b.type; });
  node.is_delegation = !apex && std::any_of(node.sets.begin(), node.sets.end(),
                                            [](const auto& s) { return s.type == type::NS; });
  return ok();
}

}  // namespace

Result<std::shared_ptr<const Zone>> Zone::compile(const ZoneData& z) {
  BERTH_TRY(validate_zone(z));
  return compile_validated(z);
}

Result<std::shared_ptr<const Zone>> Zone::compile_validated(const ZoneData& z) {
  auto zone = std::make_shared<Zone>();
  BERTH_ASSIGN_OR_RETURN(std::string apex, name_from_text(z.name));
  zone->apex_ = name_lower(apex);
  zone->data_ = z;
  sort_record_sets(zone->data_.sets);  // compile_changed finds a name's sets by binary search
  const auto& sets = zone->data_.sets;
  zone->nodes_[zone->apex_] = std::make_shared<Node>();
  for (size_t i = 0; i < sets.size();) {
    // One name: [i, j).
    std::string wire = zone_detail::set_wire(sets[i]);
    size_t j = i + 1;
    while (j < sets.size() && zone_detail::set_wire(sets[j]) == wire) {
      ++j;
    }
    auto& node = zone->nodes_[wire];
    if (!node) {
      node = std::make_shared<Node>();
    }
    BERTH_TRY(fill_node(*node, zone->data_, i, j, wire == zone->apex_, zone->soa_minimum_));
    // Empty non-terminals between the apex and the name.
    std::string_view p = wire;
    while (p.size() > zone->apex_.size()) {
      p = name_parent(p);
      auto& parent = zone->nodes_[std::string(p)];
      if (!parent) {
        parent = std::make_shared<Node>();
      }
    }
    i = j;
  }
  for (const auto& [name, node] : zone->nodes_) {
    if (name != zone->apex_) {
      ++zone->nodes_[std::string(name_parent(name))]->children;
    }
  }
  return std::shared_ptr<const Zone>(std::move(zone));
}

Result<std::shared_ptr<const Zone>> Zone::compile_changed(const Zone& old, ZoneData z,
                                                          const ZoneDelta& delta) {
  auto zone = std::make_shared<Zone>();
  zone->apex_ = old.apex_;
  zone->soa_minimum_ = old.soa_minimum_;
  zone->nodes_ = old.nodes_;
  zone->data_ = std::move(z);
  std::unordered_set<const Node*> fresh;  // nodes made for this zone: changed in place
  for (const auto& name : delta.names) {
    BERTH_TRY(zone->rebuild_node(name, fresh));
  }
  return std::shared_ptr<const Zone>(std::move(zone));
}

Status Zone::rebuild_node(const ZoneDelta::Name& name, std::unordered_set<const Node*>& fresh) {
  const std::string& wire = name.wire;
  // A node of the zone before is copied before it changes: that zone may still answer.
  auto own = [&](std::shared_ptr<Node>& slot) -> Node& {
    if (fresh.count(slot.get()) == 0) {
      slot = std::make_shared<Node>(*slot);
      fresh.insert(slot.get());
    }
    return *slot;
  };
  size_t first = name.first;
  size_t last = name.last;
  auto it = nodes_.find(wire);
  if (first == last) {
    // Nothing left at the name: an empty non-terminal while names lie below it, else gone,
    // and so, up the tree, are parents that were kept only for it.
    if (it == nodes_.end()) {
      return ok();
    }
    if (wire == apex_ || it->second->children > 0) {
      Node& n = own(it->second);
      n.sets.clear();
      n.is_delegation = false;
      return ok();
    }
    nodes_.erase(it);
    std::string_view p = wire;
    while (p.size() > apex_.size()) {
      p = name_parent(p);
      auto pit = nodes_.find(std::string(p));
      if (pit == nodes_.end()) {
        break;
      }
      Node& n = own(pit->second);
      --n.children;
      if (n.children > 0 || !n.sets.empty() || p == apex_) {
        break;
      }
      nodes_.erase(pit);
    }
    return ok();
  }
  auto node = std::make_shared<Node>();
  BERTH_TRY(fill_node(*node, data_, first, last, wire == apex_, soa_minimum_));
  fresh.insert(node.get());
  if (it != nodes_.end()) {
    node->children = it->second->children;
    it->second = std::move(node);
    return ok();
  }
  nodes_.emplace(wire, std::move(node));
  // A new name: its parent gains a child; missing parents become empty non-terminals.
  std::string_view p = wire;
  while (p.size() > apex_.size()) {
    p = name_parent(p);
    auto pit = nodes_.find(std::string(p));
    if (pit != nodes_.end()) {
      ++own(pit->second).children;
      break;
    }
    auto ent = std::make_shared<Node>();
    ent->children = 1;
    fresh.insert(ent.get());
    nodes_.emplace(std::string(p), std::move(ent));
  }
  return ok();
}

bool Zone::same_nodes_for_test(const Zone& other) const {
  if (nodes_.size() != other.nodes_.size() || apex_ != other.apex_ ||
      soa_minimum_ != other.soa_minimum_) {
    return false;
  }
  for (const auto& [name, node] : nodes_) {
    auto it = other.nodes_.find(name);
    if (it == other.nodes_.end() || !(*node == *it->second)) {
      return false;
    }
  }
  return true;
}

const Node* Zone::find(std::string_view lower_wire) const {
  // The map is keyed by std::string; a per-thread key avoids an allocation per lookup.
  thread_local std::string key;
  key.assign(lower_wire);
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : it->second.get();
}

const Node& Zone::apex_node() const {
  static const Node kEmpty;
  const Node* n = find(apex_);
  return n != nullptr ? *n : kEmpty;
}

const Zone* Snapshot::zone_for(std::string_view lower_wire) const {
  if (zones.empty()) {
    return nullptr;
  }
  thread_local std::string key;
  std::string_view p = lower_wire;
  for (;;) {
    key.assign(p);
    auto it = zones.find(key);
    if (it != zones.end()) {
      return it->second.get();
    }
    if (p.size() <= 1) {
      return nullptr;
    }
    p = name_parent(p);
  }
}
}  // namespace berth::dns
