// SPDX-License-Identifier: Apache-2.0
// A batch on a valid zone, done in O(batch): apply_changes_to_valid gives what apply_changes
// gives (the same zone, the same errors) and the delta of what it wrote, and
// Zone::compile_changed gives the nodes Zone::compile would (empty non-terminals appearing and
// going, wildcards, delegations and glue, names whose only change is a neighbour's deletion).
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "dns/name.h"
#include "dns/zone.h"
#include "unit/dns/dns_test_util.h"

namespace berth::dns {
namespace {

using namespace test_util;

using Act = Change::Action;

std::shared_ptr<const Zone> compiled(std::vector<RecordSet> extra) {
  ZoneData z = new_zone("example.com", {"ns1.example.com", "ns2.example.net."}, 7);
  for (auto& s : extra) {
    z.sets.push_back(std::move(s));
  }
  auto c = Zone::compile(z);
  EXPECT_TRUE(c) << c.error().message();
  return c ? *c : nullptr;
}

// Applies the batch both ways and checks they agree; returns the incremental zone (or null
// when the batch is refused, with the message in *error). same_message: a batch that breaks
// several rules may be refused for another of them (the checks run in another order).
std::shared_ptr<const Zone> apply_both(const Zone& old, const std::vector<Change>& changes,
                                       std::string* error = nullptr, bool same_message = true) {
  auto full = apply_changes(old.data(), changes);
  ZoneDelta delta;
  auto fast = apply_changes_to_valid(old.data(), changes, delta);
  EXPECT_EQ(full.has_value(), fast.has_value())
      << (full ? fast.error().message() : full.error().message());
  if (!full || !fast) {
    if (!full && !fast) {
      if (same_message) {
        EXPECT_EQ(full.error().message(), fast.error().message());
      }
      if (error != nullptr) {
        *error = fast.error().message();
      }
    }
    EXPECT_TRUE(delta.put.empty() && delta.removed.empty());
    return nullptr;
  }
  EXPECT_EQ(*full, *fast);
  auto whole = Zone::compile_validated(*full);
  auto changed = Zone::compile_changed(old, *fast, delta);
  EXPECT_TRUE(whole && changed);
  if (!whole || !changed) {
    return nullptr;
  }
  EXPECT_TRUE((*changed)->same_nodes_for_test(**whole));
  EXPECT_EQ((*changed)->data(), (*whole)->data());
  return *changed;
}

TEST(DnsZoneChange, DeltaHoldsTheWrittenAndRemovedSetsAndTheSoa) {
  auto z =
      compiled({rs("a.example.com", "A", {"192.0.2.1"}), rs("b.example.com", "TXT", {"\"x\""})});
  ZoneDelta delta;
  auto out = apply_changes_to_valid(
      z->data(),
      {change(Act::Upsert, rs("c.example.com", "A", {"192.0.2.3"})),
       change(Act::Delete, rs("b.example.com", "TXT", {"\"x\""})),
       change(Act::Create, rs("d.example.com", "A", {"192.0.2.4"})),
       change(Act::Delete, rs("d.example.com", "A", {"192.0.2.4"}))},  // created and gone again
      delta);
  ASSERT_TRUE(out) << out.error().message();
  std::vector<std::string> put, removed;
  for (const auto& s : delta.put) {
    put.push_back(s.name + "/" + s.type);
  }
  for (const auto& s : delta.removed) {
    removed.push_back(s.name + "/" + s.type);
  }
  EXPECT_EQ(put, (std::vector<std::string>{"example.com/SOA", "c.example.com/A"}));
  EXPECT_EQ(removed, (std::vector<std::string>{"b.example.com/TXT"}));
  EXPECT_EQ(delta.put[0].values[0],
            "ns1.example.com. hostmaster.example.com. 8 3600 900 1209600 300");
}

TEST(DnsZoneChange, EmptyNonTerminalsComeAndGoWithTheNamesBelowThem) {
  auto z = compiled(
      {rs("x.a.b.example.com", "A", {"192.0.2.1"}), rs("y.a.b.example.com", "A", {"192.0.2.2"})});
  ASSERT_NE(z->find(wire_lower("a.b.example.com")), nullptr);
  // One of two names below a.b goes: a.b and b stay, though nothing at them changed.
  auto one = apply_both(*z, {change(Act::Delete, rs("x.a.b.example.com", "A", {"192.0.2.1"}))});
  ASSERT_TRUE(one);
  EXPECT_NE(one->find(wire_lower("a.b.example.com")), nullptr);
  EXPECT_EQ(one->find(wire_lower("x.a.b.example.com")), nullptr);
  // The last goes: so do both empty non-terminals above it.
  auto none = apply_both(*one, {change(Act::Delete, rs("y.a.b.example.com", "A", {"192.0.2.2"}))});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->find(wire_lower("a.b.example.com")), nullptr);
  EXPECT_EQ(none->find(wire_lower("b.example.com")), nullptr);
  // Data at an empty non-terminal makes it a node with sets; deleting it leaves the ENT.
  auto at = apply_both(*one, {change(Act::Upsert, rs("a.b.example.com", "TXT", {"\"t\""}))});
  ASSERT_TRUE(at);
  auto back = apply_both(*at, {change(Act::Delete, rs("a.b.example.com", "TXT", {"\"t\""}))});
  ASSERT_TRUE(back);
  ASSERT_NE(back->find(wire_lower("a.b.example.com")), nullptr);
  EXPECT_TRUE(back->find(wire_lower("a.b.example.com"))->sets.empty());
  // The zone the batch started from is untouched (a query may still be reading it).
  EXPECT_NE(z->find(wire_lower("x.a.b.example.com")), nullptr);
  EXPECT_TRUE(z->same_nodes_for_test(**Zone::compile(z->data())));
}

TEST(DnsZoneChange, DelegationsWildcardsAndGlue) {
  auto z = compiled(
      {rs("*.w.example.com", "A", {"192.0.2.9"}), rs("ns.sub.example.com", "A", {"192.0.2.53"})});
  auto cut =
      apply_both(*z, {change(Act::Upsert, rs("sub.example.com", "NS", {"ns.sub.example.com."}))});
  ASSERT_TRUE(cut);
  EXPECT_TRUE(cut->find(wire_lower("sub.example.com"))->is_delegation);
  // Below the new cut only glue: a TXT there is refused, as is a cut above a TXT.
  std::string error;
  EXPECT_FALSE(
      apply_both(*cut, {change(Act::Upsert, rs("t.sub.example.com", "TXT", {"\"t\""}))}, &error));
  EXPECT_NE(error.find("only A/AAAA glue may lie below the delegation at sub.example.com"),
            std::string::npos)
      << error;
  auto txt = apply_both(*z, {change(Act::Upsert, rs("t.sub.example.com", "TXT", {"\"t\""}))});
  ASSERT_TRUE(txt);
  EXPECT_FALSE(apply_both(
      *txt, {change(Act::Upsert, rs("sub.example.com", "NS", {"ns.sub.example.com."}))}, &error));
  EXPECT_NE(error.find("t.sub.example.com TXT: only A/AAAA glue"), std::string::npos) << error;
  // The wildcard goes and comes back.
  auto nowild = apply_both(*cut, {change(Act::Delete, rs("*.w.example.com", "A", {"192.0.2.9"}))});
  ASSERT_TRUE(nowild);
  EXPECT_EQ(nowild->find(wire_lower("w.example.com")), nullptr);
  auto uncut =
      apply_both(*cut, {change(Act::Delete, rs("sub.example.com", "NS", {"ns.sub.example.com."}))});
  ASSERT_TRUE(uncut);
  EXPECT_FALSE(uncut->find(wire_lower("sub.example.com"))->is_delegation);
}

TEST(DnsZoneChange, SameErrorsAsAWholeCheck) {
  auto z = compiled({rs("www.example.com", "A", {"192.0.2.1"}, 60)});
  const std::vector<std::vector<Change>> batches = {
      {change(Act::Upsert, rs("x.example.com", "A", {"192.0.2.5"})),
       change(Act::Upsert, rs("www.example.com", "CNAME", {"x.example.com."}))},
      {change(Act::Create, rs("www.example.com", "A", {"192.0.2.9"}))},
      {change(Act::Delete, rs("nope.example.com", "A", {"192.0.2.1"}))},
      {change(Act::Upsert, rs("a.example.net", "A", {"192.0.2.1"}))},
      {change(Act::Upsert, rs("example.com", "CNAME", {"x.org."}))},
      {change(Act::Upsert, rs("www.example.com", "ALIAS", {}))},
      {},
  };
  for (const auto& b : batches) {
    std::string error;
    EXPECT_FALSE(apply_both(*z, b, &error));
    EXPECT_FALSE(error.empty());
  }
}

// Random batches over a small name space, so names are created, deleted, and emptied under
// one another often; every step is checked against a whole apply and compile.
TEST(DnsZoneChange, RandomBatchesMatchAWholeCompile) {
  std::mt19937 rng(11);
  const std::vector<std::string> names = {"a", "b.a", "c.b.a", "d", "e.d", "*.d", "f.e.d", "g"};
  const std::vector<std::string> types = {"A", "TXT", "AAAA", "NS", "CNAME"};
  auto value = [](const std::string& type, int i) -> std::string {
    const std::vector<std::string> a = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
    const std::vector<std::string> aaaa = {"2001:db8::1", "2001:db8::2", "2001:db8::3"};
    const std::vector<std::string> txt = {"\"v1\"", "\"v2\"", "\"v3\""};
    const std::vector<std::string> target = {"t1.example.net.", "t2.example.net.",
                                             "t3.example.net."};  // NS, CNAME
    auto at = static_cast<size_t>(i);
    return type == "A" ? a[at] : type == "AAAA" ? aaaa[at] : type == "TXT" ? txt[at] : target[at];
  };
  auto z = compiled({});
  int applied = 0;
  for (int step = 0; step < 400; ++step) {
    std::vector<Change> batch;
    size_t n = 1 + rng() % 4;
    for (size_t i = 0; i < n; ++i) {
      std::string name = names[rng() % names.size()];
      name.append(".example.com");
      const std::string& type = types[rng() % types.size()];
      int v = static_cast<int>(rng() % 3);
      RecordSet s = rs(name, type, {value(type, v)});
      Act action = rng() % 3 == 0 ? Act::Delete : Act::Upsert;
      if (action == Act::Delete) {
        // Delete what is there when there is something, so deletes mostly succeed.
        for (const auto& have : z->data().sets) {
          if (have.name == name && have.type == type) {
            s = have;
          }
        }
      }
      batch.push_back(change(action, s));
    }
    if (auto next = apply_both(*z, batch, nullptr, false)) {
      z = next;
      ++applied;
    }
  }
  EXPECT_GT(applied, 100);  // the walk did go somewhere
}

// The node table keeps every name reachable through inserts, erases (backward shift, no
// tombstones) and growth, and a copy is independent of the table it came from.
TEST(DnsNodeIndex, FindsWhatItHoldsThroughErasesAndGrowth) {
  std::mt19937 rng(5);
  NodeIndex index;
  std::set<std::string> held;
  auto node = [](const std::string& name) {
    auto n = std::make_shared<Node>();
    n->name = name;
    return n;
  };
  for (int step = 0; step < 20000; ++step) {
    std::string name = std::to_string(rng() % 3000) + "n";
    if (rng() % 3 == 0) {
      index.erase(name);
      held.erase(name);
    } else if (held.insert(name).second) {
      index.insert(node(name));
    }
  }
  ASSERT_EQ(index.size(), held.size());
  for (int i = 0; i < 3000; ++i) {
    std::string name = std::to_string(i) + "n";
    const NodeIndex& ci = index;
    const Node* n = ci.find(name);
    ASSERT_EQ(n != nullptr, held.count(name) == 1) << name;
    if (n != nullptr) {
      EXPECT_EQ(n->name, name);
    }
  }
  NodeIndex copy = index;
  for (const auto& name : held) {
    copy.erase(name);
  }
  EXPECT_EQ(copy.size(), 0u);
  EXPECT_EQ(index.size(), held.size());
  EXPECT_NE(static_cast<const NodeIndex&>(index).find(*held.begin()), nullptr);
}

}  // namespace
}  // namespace berth::dns
