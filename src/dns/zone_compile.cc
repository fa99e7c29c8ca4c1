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
  zone->data_.sets.sort();  // compile_changed finds a name's sets by binary search
  const auto& sets = zone->data_.sets;
  zone->node_at(zone->apex_);
  for (size_t i = 0; i < sets.size();) {
    // One name: [i, j).
    std::string wire = zone_detail::set_wire(sets[i]);
    size_t j = i + 1;
    while (j < sets.size() && zone_detail::set_wire(sets[j]) == wire) {
      ++j;
    }
    BERTH_TRY(
        fill_node(zone->node_at(wire), zone->data_, i, j, wire == zone->apex_, zone->soa_minimum_));
    // Empty non-terminals between the apex and the name.
    std::string_view p = wire;
    while (p.size() > zone->apex_.size()) {
      p = name_parent(p);
      zone->node_at(p);
    }
    i = j;
  }
  std::vector<std::string_view> below_apex;
  zone->nodes_.for_each([&](const Node& n) {
    if (n.name != zone->apex_) {
      below_apex.push_back(n.name);
    }
  });
  for (std::string_view name : below_apex) {
    ++(*zone->nodes_.find(name_parent(name)))->children;
  }
  return std::shared_ptr<const Zone>(std::move(zone));
}

Node& Zone::node_at(std::string_view wire) {
  if (auto* slot = nodes_.find(wire)) {
    return **slot;
  }
  auto n = std::make_shared<Node>();
  n->name = std::string(wire);
  Node& ref = *n;
  nodes_.insert(std::move(n));
  return ref;
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
  std::shared_ptr<Node>* at = nodes_.find(wire);
  if (first == last) {
    // Nothing left at the name: an empty non-terminal while names lie below it, else gone,
    // and so, up the tree, are parents that were kept only for it.
    if (at == nullptr) {
      return ok();
    }
    if (wire == apex_ || (*at)->children > 0) {
      Node& n = own(*at);
      n.sets.clear();
      n.is_delegation = false;
      return ok();
    }
    nodes_.erase(wire);
    std::string_view p = wire;
    while (p.size() > apex_.size()) {
      p = name_parent(p);
      std::shared_ptr<Node>* parent = nodes_.find(p);
      if (parent == nullptr) {
        break;
      }
      Node& n = own(*parent);
      --n.children;
      if (n.children > 0 || !n.sets.empty() || p == apex_) {
        break;
      }
      nodes_.erase(p);
    }
    return ok();
  }
  auto node = std::make_shared<Node>();
  node->name = wire;
  BERTH_TRY(fill_node(*node, data_, first, last, wire == apex_, soa_minimum_));
  fresh.insert(node.get());
  if (at != nullptr) {
    node->children = (*at)->children;
    *at = std::move(node);
    return ok();
  }
  nodes_.insert(std::move(node));
  // A new name: its parent gains a child; missing parents become empty non-terminals.
  std::string_view p = wire;
  while (p.size() > apex_.size()) {
    p = name_parent(p);
    if (std::shared_ptr<Node>* parent = nodes_.find(p)) {
      ++own(*parent).children;
      break;
    }
    auto ent = std::make_shared<Node>();
    ent->name = std::string(p);
    ent->children = 1;
    fresh.insert(ent.get());
    nodes_.insert(std::move(ent));
  }
  return ok();
}

bool Zone::same_nodes_for_test(const Zone& other) const {
  if (nodes_.size() != other.nodes_.size() || apex_ != other.apex_ ||
      soa_minimum_ != other.soa_minimum_) {
    return false;
  }
  bool same = true;
  nodes_.for_each([&](const Node& n) {
    const Node* o = other.nodes_.find(n.name);
    same = same && o != nullptr && n == *o;
  });
  return same;
}

const Node* Zone::find(std::string_view lower_wire) const { return nodes_.find(lower_wire); }

const Node& Zone::apex_node() const {
  static const Node kEmpty;
  const Node* n = find(apex_);
  return n != nullptr ? *n : kEmpty;
}

// ---- NodeIndex ------------------------------------------------------------------------------

size_t NodeIndex::home(std::string_view name) const {
  return std::hash<std::string_view>{}(name) & (slots_.size() - 1);
}

size_t NodeIndex::find_slot(std::string_view name) const {
  size_t mask = slots_.size() - 1;
  size_t i = home(name);
  while (slots_[i] && slots_[i]->name != name) {
    i = (i + 1) & mask;
  }
  return i;
}

std::shared_ptr<Node>* NodeIndex::find(std::string_view lower_wire) {
  if (size_ == 0) {
    return nullptr;
  }
  auto& slot = slots_[find_slot(lower_wire)];
  return slot ? &slot : nullptr;
}

const Node* NodeIndex::find(std::string_view lower_wire) const {
  if (size_ == 0) {
    return nullptr;
  }
  return slots_[find_slot(lower_wire)].get();
}

void NodeIndex::insert(std::shared_ptr<Node> node) {
  if ((size_ + 1) * 2 > slots_.size()) {
    grow();
  }
  slots_[find_slot(node->name)] = std::move(node);
  ++size_;
}

void NodeIndex::erase(std::string_view lower_wire) {
  if (size_ == 0) {
    return;
  }
  size_t mask = slots_.size() - 1;
  size_t hole = find_slot(lower_wire);
  if (!slots_[hole]) {
    return;
  }
  slots_[hole].reset();
  --size_;
  // Backward shift: move up each following entry whose probe run passes over the hole, so
  // every entry stays reachable from its home slot without tombstones.
  for (size_t j = (hole + 1) & mask; slots_[j]; j = (j + 1) & mask) {
    size_t k = home(slots_[j]->name);
    bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
    if (!stays) {
      slots_[hole] = std::move(slots_[j]);
      hole = j;
    }
  }
}

void NodeIndex::grow() {
  std::vector<std::shared_ptr<Node>> old = std::move(slots_);
  slots_.assign(old.empty() ? 16 : old.size() * 2, nullptr);
  for (auto& s : old) {
    if (s) {
      slots_[find_slot(s->name)] = std::move(s);
    }
  }
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
