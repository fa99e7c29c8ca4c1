// SPDX-License-Identifier: Apache-2.0
// DNS messages off the wire: parse_message on arbitrary bytes; whatever parses is written
// again with the compressing Writer and must parse back to the same sections, and each
// record of a type berth stores must survive rdata_to_text → rdata_from_text unchanged.
// parse_question must agree with parse_message on the header and the question.
#include <span>
#include <string>
#include <vector>

#include "dns/message.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "fuzz.h"

namespace {

using namespace berth::dns;

std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The Writer compresses case-insensitively, so a name may come back spelt as an earlier,
// equal name: names (and rdata of the types whose names are compressed) compare ignoring case.
bool same_rr(const ResourceRecord& a, const ResourceRecord& b) {
  if (!name_equal(a.name, b.name) || a.type != b.type || a.klass != b.klass || a.ttl != b.ttl) {
    return false;
  }
  if (type_compresses(a.type)) {
    return name_lower(a.rdata) == name_lower(b.rdata);
  }
  return a.rdata == b.rdata;
}

bool same_section(const std::vector<ResourceRecord>& a, const std::vector<ResourceRecord>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!same_rr(a[i], b[i])) {
      return false;
    }
  }
  return true;
}

// Writes `m` again; false when it does not fit (a packet whose pointers reached into opaque
// rdata can grow when re-encoded).
bool rewrite(const Message& m, std::string& out) {
  Writer w(out, 65535);
  w.header(m.id, m.flags);
  for (const auto& q : m.questions) {
    if (!w.question(q)) {
      return false;
    }
  }
  const std::vector<ResourceRecord>* sections[] = {&m.answers, &m.authority, &m.additional};
  for (int s = 0; s < 3; ++s) {
    const auto& rrs = *sections[s];
    for (size_t i = 0; i < rrs.size(); ++i) {
      const auto& rr = rrs[i];
      // The OPT goes before a TSIG, which must stay last.
      if (s == 2 && rr.type == type::TSIG && m.edns && !w.opt(*m.edns)) {
        return false;
      }
      if (!w.add(static_cast<Writer::Section>(s), rr.name, rr.type, rr.klass, rr.ttl, rr.rdata)) {
        return false;
      }
    }
  }
  if (m.edns && !m.tsig_offset && !w.opt(*m.edns)) {
    return false;
  }
  return true;
}

}  // namespace

BERTH_FUZZ_TARGET(dns_message) {
  berth::fuzz::quiet_logs();
  std::span<const uint8_t> packet(data, size);
  auto m = parse_message(packet);

  Message q;
  auto qend = parse_question(packet, q);
  if (m) {
    // Whatever parses whole has a well-formed header and question section.
    BERTH_FUZZ_CHECK(qend.has_value());
    BERTH_FUZZ_CHECK(q.id == m->id && q.flags == m->flags);
    BERTH_FUZZ_CHECK(q.questions.size() == m->questions.size());
  }
  // error_reply must never crash and, given a header, always builds a parseable reply.
  std::string err = error_reply(packet, rcode::FORMERR);
  BERTH_FUZZ_CHECK(err.empty() == (size < kHeaderBytes));
  if (!err.empty()) {
    BERTH_FUZZ_CHECK(parse_message(as_span(err)).has_value());
  }
  if (!m) {
    return 0;
  }

  std::string out;
  if (rewrite(*m, out)) {
    auto again = parse_message(as_span(out));
    BERTH_FUZZ_CHECK(again.has_value());
    BERTH_FUZZ_CHECK(again->id == m->id && again->flags == m->flags);
    BERTH_FUZZ_CHECK(again->questions.size() == m->questions.size());
    for (size_t i = 0; i < m->questions.size(); ++i) {
      const auto& a = m->questions[i];
      const auto& b = again->questions[i];
      BERTH_FUZZ_CHECK(name_equal(a.name, b.name) && a.type == b.type && a.klass == b.klass);
    }
    BERTH_FUZZ_CHECK(same_section(m->answers, again->answers));
    BERTH_FUZZ_CHECK(same_section(m->authority, again->authority));
    BERTH_FUZZ_CHECK(same_section(m->additional, again->additional));
    BERTH_FUZZ_CHECK(m->edns.has_value() == again->edns.has_value());
    if (m->edns) {
      BERTH_FUZZ_CHECK(m->edns->udp_payload == again->edns->udp_payload);
      BERTH_FUZZ_CHECK(m->edns->extended_rcode == again->edns->extended_rcode);
      BERTH_FUZZ_CHECK(m->edns->version == again->edns->version);
      BERTH_FUZZ_CHECK(m->edns->dnssec_ok == again->edns->dnssec_ok);
      BERTH_FUZZ_CHECK(m->edns->options == again->edns->options);
    }
    BERTH_FUZZ_CHECK(m->tsig_offset.has_value() == again->tsig_offset.has_value());
  }

  for (const auto* sec : {&m->answers, &m->authority, &m->additional}) {
    for (const auto& rr : *sec) {
      if (!type_supported(rr.type)) {
        continue;
      }
      auto text = rdata_to_text(rr.type, rr.rdata);
      if (!text) {
        continue;  // empty rdata of an UPDATE class (ANY/NONE) is not presentable
      }
      auto back = rdata_from_text(rr.type, *text);
      BERTH_FUZZ_CHECK(back.has_value());
      BERTH_FUZZ_CHECK(*back == rr.rdata);
    }
  }
  return 0;
}
