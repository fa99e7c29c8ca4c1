// SPDX-License-Identifier: Apache-2.0
// The message codec: parsing (decompression, its loops and forward pointers, OPT and TSIG
// placement, trailing bytes), the Writer's compression and truncation, and error replies.
#include "dns/message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <span>
#include <string>

#include "dns/name.h"
#include "dns/rdata.h"
#include "unit/dns/dns_test_util.h"

namespace berth::dns {
namespace {

using namespace test_util;

using ::testing::HasSubstr;

using namespace std::string_literals;

std::span<const uint8_t> span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string rdata(uint16_t t, std::string_view text) { return *rdata_from_text(t, text); }

std::string u16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

std::string header(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                   uint16_t ar) {
  return u16(id) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar);
}

// An RR in wire form with the given (possibly compressed) owner and raw rdata bytes.
std::string rr_wire(const std::string& owner, uint16_t type, uint16_t klass, uint32_t ttl,
                    const std::string& rd) {
  return owner + u16(type) + u16(klass) + u16(static_cast<uint16_t>(ttl >> 16)) +
         u16(static_cast<uint16_t>(ttl)) + u16(static_cast<uint16_t>(rd.size())) + rd;
}

const std::string kQName = "\3www\7example\3com\0"s;  // at offset 12 in a one-question packet

std::string query_packet() {
  return header(0xbeef, flag::RD, 1, 0, 0, 0) + kQName + u16(1) + u16(1);
}

void expect_formerr(const std::string& pkt, const std::string& why) {
  auto m = parse_message(span(pkt));
  ASSERT_FALSE(m) << why;
  EXPECT_EQ(m.error().code(), Errc::InvalidArgument);
  EXPECT_THAT(m.error().message(), HasSubstr(why));
}

TEST(DnsMessage, ParsesQuery) {
  std::string pkt = query_packet();
  auto m = parse_message(span(pkt));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->id, 0xbeef);
  EXPECT_EQ(m->flags, flag::RD);
  EXPECT_EQ(m->opcode(), opcode::QUERY);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, kQName);
  EXPECT_EQ(m->questions[0].type, type::A);
  EXPECT_EQ(m->questions[0].klass, kClassIN);
  EXPECT_TRUE(m->answers.empty());
  EXPECT_FALSE(m->edns);
  EXPECT_FALSE(m->tsig_offset);

  Message q;
  auto end = parse_question(span(pkt), q);
  ASSERT_TRUE(end);
  EXPECT_EQ(*end, pkt.size());
  EXPECT_EQ(q.id, 0xbeef);
  ASSERT_EQ(q.questions.size(), 1u);
  EXPECT_EQ(q.questions[0].name, kQName);
}

TEST(DnsMessage, OpcodeAndRcodeFromFlags) {
  Message m;
  m.flags = static_cast<uint16_t>(flag::QR | (opcode::UPDATE << 11) | rcode::NXDOMAIN);
  EXPECT_EQ(m.opcode(), opcode::UPDATE);
  EXPECT_EQ(m.rcode(), rcode::NXDOMAIN);
}

TEST(DnsMessage, DecompressesOwnersAndRdata) {
  // Answer owner points at the question name; MX/CNAME/SOA/SRV rdata point into it too.
  const std::string ptr_q = "\xc0\x0c"s;        // www.example.com
  const std::string ptr_example = "\xc0\x10"s;  // example.com
  std::string pkt = header(1, flag::QR, 1, 4, 1, 0) + kQName + u16(type::MX) + u16(1) +
                    rr_wire(ptr_q, type::MX, 1, 60, u16(10) + "\4mail"s + ptr_example) +
                    rr_wire(ptr_q, type::CNAME, 1, 60, "\3web"s + ptr_example) +
                    rr_wire(ptr_q, type::SRV, 1, 60, u16(1) + u16(2) + u16(443) + ptr_q) +
                    rr_wire(ptr_q, type::TXT, 1, 60, "\2hi"s) +
                    rr_wire(ptr_example, type::SOA, 1, 60,
                            "\3ns1"s + ptr_example + "\1h"s + ptr_example + std::string(20, '\1'));
  auto m = parse_message(span(pkt));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_EQ(m->answers.size(), 4u);
  EXPECT_EQ(m->answers[0].name, kQName);
  EXPECT_EQ(m->answers[0].ttl, 60u);
  EXPECT_EQ(*rdata_to_text(type::MX, m->answers[0].rdata), "10 mail.example.com.");
  EXPECT_EQ(*rdata_to_text(type::CNAME, m->answers[1].rdata), "web.example.com.");
  EXPECT_EQ(*rdata_to_text(type::SRV, m->answers[2].rdata), "1 2 443 www.example.com.");
  EXPECT_EQ(m->answers[3].rdata, "\2hi"s);
  ASSERT_EQ(m->authority.size(), 1u);
  EXPECT_EQ(m->authority[0].name, "\7example\3com\0"s);
  EXPECT_EQ(*rdata_to_text(type::SOA, m->authority[0].rdata),
            "ns1.example.com. h.example.com. 16843009 16843009 16843009 16843009 16843009");
}

TEST(DnsMessage, RejectsMalformed) {
  std::string q = header(1, 0, 1, 0, 0, 0);
  struct Case {
    std::string pkt;
    std::string why;
  };
  const Case cases[] = {
      {"\1\2\3"s, "12-byte header"},
      {q + "\3www"s, "truncated"},
      {q + kQName + u16(1), "truncated question"},
      {query_packet() + "\0"s, "trailing bytes"},
      // A pointer to itself, a forward pointer, and a two-pointer loop.
      {q + "\xc0\x0c"s + u16(1) + u16(1), "does not point backwards"},
      {q + "\xc0\x20"s + u16(1) + u16(1), "does not point backwards"},
      {q + "\1a\xc0\x0c"s + u16(1) + u16(1), "does not point backwards"},
      // A loop: the TXT rdata at 24 holds a pointer to 26, the next owner points back to 24.
      {header(1, 0, 0, 2, 0, 0) + rr_wire("\0"s, type::TXT, 1, 0, "\2\xc0\x1a"s) +
           rr_wire("\xc0\x18"s, type::A, 1, 0, "\1\2\3\4"s),
       "does not point backwards"},
      {q + "\x40"s + std::string(64, 'a') + "\0"s + u16(1) + u16(1), "bad label type"},
      {q + "\xc0"s, "truncated compression pointer"},
      // Answers claimed but missing; rdata longer than the packet; rdata that does not fit
      // its type.
      {header(1, 0, 1, 1, 0, 0) + kQName + u16(1) + u16(1), "truncated"},
      {header(1, 0, 1, 1, 0, 0) + kQName + u16(1) + u16(1) + "\xc0\x0c"s + u16(1) + u16(1) +
           u16(0) + u16(0) + u16(9) + "\1\2\3\4"s,
       "truncated rdata"},
      {header(1, 0, 1, 1, 0, 0) + kQName + u16(1) + u16(1) +
           rr_wire("\xc0\x0c"s, type::A, 1, 0, "\1\2\3"s),
       "4 bytes"},
      {header(1, 0, 1, 1, 0, 0) + kQName + u16(1) + u16(1) +
           rr_wire("\xc0\x0c"s, type::MX, 1, 0, "\0\1\3abc\0\0"s),
       "wrong length"},
      {header(1, 0, 1, 1, 0, 0) + kQName + u16(1) + u16(1) +
           rr_wire("\xc0\x0c"s, type::NS, 1, 0, "\3abc"s),
       "truncated"},
      // A name in rdata may not run past the rdata, even if the packet goes on.
      {header(1, 0, 1, 2, 0, 0) + kQName + u16(1) + u16(1) +
           rr_wire("\xc0\x0c"s, type::NS, 1, 0, "\3abc"s) +
           rr_wire("\0"s, type::A, 1, 0, "\1\2\3\4"s),
       "NS rdata"},
  };
  for (const auto& c : cases) {
    expect_formerr(c.pkt, c.why);
  }
}

TEST(DnsMessage, RejectsNamesOver255BytesViaPointers) {
  // Four 63-byte labels, each following pointer adds another: the expansion passes 255.
  std::string l = "\77"s + std::string(63, 'x');
  std::string pkt = header(1, 0, 2, 0, 0, 0) + l + l + l + "\0"s + u16(1) + u16(1);  // 12
  pkt += l + "\xc0\x0c"s + u16(1) + u16(1);
  expect_formerr(pkt, "name over 255 bytes");
}

TEST(DnsMessage, EmptyRdataAllowedForUpdateClasses) {
  std::string pkt = header(1, opcode::UPDATE << 11, 1, 0, 1, 0) + "\7example\0"s + u16(6) + u16(1) +
                    rr_wire("\3www\xc0\x0c"s, type::A, kClassANY, 0, "");
  auto m = parse_message(span(pkt));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_EQ(m->authority.size(), 1u);
  EXPECT_EQ(m->authority[0].klass, kClassANY);
  EXPECT_TRUE(m->authority[0].rdata.empty());
  // The same with class IN is malformed A rdata.
  std::string bad = header(1, 0, 1, 0, 1, 0) + "\7example\0"s + u16(6) + u16(1) +
                    rr_wire("\3www\xc0\x0c"s, type::A, kClassIN, 0, "");
  expect_formerr(bad, "4 bytes");
}

TEST(DnsMessage, ParsesEdns) {
  std::string opt_rd = u16(10) + u16(8) + "cookie!!"s;  // COOKIE option
  std::string pkt = header(7, 0, 1, 0, 0, 1) + kQName + u16(1) + u16(1) +
                    rr_wire("\0"s, type::OPT, 4096, 0x01008000, opt_rd);
  auto m = parse_message(span(pkt));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE(m->edns);
  EXPECT_EQ(m->edns->udp_payload, 4096);
  EXPECT_EQ(m->edns->extended_rcode, 1);
  EXPECT_EQ(m->edns->version, 0);
  EXPECT_TRUE(m->edns->dnssec_ok);
  EXPECT_EQ(m->edns->options, opt_rd);
  EXPECT_TRUE(m->additional.empty());  // the OPT moved into edns

  std::string two = header(7, 0, 1, 0, 0, 2) + kQName + u16(1) + u16(1) +
                    rr_wire("\0"s, type::OPT, 512, 0, "") + rr_wire("\0"s, type::OPT, 512, 0, "");
  expect_formerr(two, "more than one OPT");
  expect_formerr(
      header(7, 0, 1, 1, 0, 0) + kQName + u16(1) + u16(1) + rr_wire("\0"s, type::OPT, 512, 0, ""),
      "OPT outside the additional section");
  expect_formerr(header(7, 0, 1, 0, 0, 1) + kQName + u16(1) + u16(1) +
                     rr_wire("\xc0\x0c"s, type::OPT, 512, 0, ""),
                 "OPT owner is not the root");
  expect_formerr(header(7, 0, 1, 0, 0, 1) + kQName + u16(1) + u16(1) +
                     rr_wire("\0"s, type::OPT, 512, 0, u16(10) + u16(9) + "short"s),
                 "truncated EDNS option");
}

TEST(DnsMessage, WritesEdnsAndParsesItBack) {
  std::string out;
  Writer w(out, 512);
  w.header(9, flag::QR);
  ASSERT_TRUE(w.question({kQName, type::A, kClassIN}));
  Edns e;
  e.udp_payload = kEdnsUdpPayload;
  e.version = 0;
  e.dnssec_ok = true;
  e.options = u16(3) + u16(0);  // NSID, empty
  ASSERT_TRUE(w.opt(e, 1));     // BADVERS's upper bits
  auto m = parse_message(span(out));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE(m->edns);
  EXPECT_EQ(m->edns->udp_payload, kEdnsUdpPayload);
  EXPECT_EQ(m->edns->extended_rcode, 1);
  EXPECT_TRUE(m->edns->dnssec_ok);
  EXPECT_EQ(m->edns->options, e.options);
  EXPECT_EQ(out.size(), kHeaderBytes + kQName.size() + 4 + 11 + 4);
}

TEST(DnsMessage, TsigMustBeLast) {
  std::string base = kQName + u16(1) + u16(1);
  std::string tsig = rr_wire("\3key\0"s, type::TSIG, kClassANY, 0, "\0mac"s);
  std::string a = rr_wire("\xc0\x0c"s, type::A, 1, 0, "\1\2\3\4"s);
  std::string pkt = header(1, 0, 1, 0, 0, 2) + base + a + tsig;
  auto m = parse_message(span(pkt));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE(m->tsig_offset);
  EXPECT_EQ(*m->tsig_offset, pkt.size() - tsig.size());
  ASSERT_EQ(m->additional.size(), 2u);
  EXPECT_EQ(m->additional[1].type, type::TSIG);
  EXPECT_EQ(m->additional[1].rdata, "\0mac"s);

  expect_formerr(header(1, 0, 1, 0, 0, 2) + base + tsig + a, "TSIG is not the last");
  expect_formerr(header(1, 0, 1, 1, 0, 0) + base + tsig, "TSIG is not the last");
}

// Builds the reply every test below uses: four names under example.com, rdata with names.
struct Rr {
  Writer::Section section;
  std::string owner;
  uint16_t type;
  std::string rdata;
};

std::vector<Rr> sample_rrs() {
  return {
      {Writer::kAnswer, wire("WWW.example.com."), type::CNAME,
       rdata(type::CNAME, "web.example.com.")},
      {Writer::kAnswer, wire("web.example.com."), type::A, rdata(type::A, "192.0.2.1")},
      {Writer::kAnswer, wire("web.example.com."), type::A, rdata(type::A, "192.0.2.2")},
      {Writer::kAnswer, wire("web.example.com."), type::MX,
       rdata(type::MX, "10 mail.example.com.")},
      {Writer::kAnswer, wire("web.example.com."), type::SRV,
       rdata(type::SRV, "1 1 80 web.example.com.")},
      {Writer::kAuthority, wire("example.com."), type::NS, rdata(type::NS, "ns1.example.com.")},
      {Writer::kAuthority, wire("example.com."), type::SOA,
       rdata(type::SOA, "ns1.example.com. hostmaster.example.com. 1 2 3 4 5")},
      {Writer::kAdditional, wire("ns1.example.com."), type::AAAA,
       rdata(type::AAAA, "2001:db8::53")},
  };
}

size_t uncompressed_size(const std::vector<Rr>& rrs) {
  size_t n = kHeaderBytes + kQName.size() + 4;
  for (const auto& r : rrs) {
    n += r.owner.size() + 10 + r.rdata.size();
  }
  return n;
}

TEST(DnsMessage, CompressionShrinksAndParsesBackEqual) {
  auto rrs = sample_rrs();
  std::string out;
  Writer w(out, 65535);
  w.header(0x1234, flag::QR | flag::AA);
  ASSERT_TRUE(w.question({kQName, type::CNAME, kClassIN}));
  for (const auto& r : rrs) {
    ASSERT_TRUE(w.add(r.section, r.owner, r.type, kClassIN, 300, r.rdata));
  }
  EXPECT_EQ(w.size(), out.size());
  EXPECT_LT(out.size(), uncompressed_size(rrs) - 60);
  // The SRV target is written in full (RFC 2782 forbids compressing it).
  EXPECT_NE(out.find("\0\1\0\1\0\x50\3web\7example\3com\0"s), std::string::npos);

  auto m = parse_message(span(out));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_EQ(m->flags, flag::QR | flag::AA);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, kQName);
  std::vector<ResourceRecord> got;
  for (const auto* sec : {&m->answers, &m->authority, &m->additional}) {
    got.insert(got.end(), sec->begin(), sec->end());
  }
  ASSERT_EQ(got.size(), rrs.size());
  EXPECT_EQ(m->answers.size(), 5u);
  EXPECT_EQ(m->authority.size(), 2u);
  EXPECT_EQ(m->additional.size(), 1u);
  for (size_t i = 0; i < rrs.size(); ++i) {
    EXPECT_TRUE(name_equal(got[i].name, rrs[i].owner)) << i;
    EXPECT_EQ(got[i].type, rrs[i].type) << i;
    EXPECT_EQ(got[i].ttl, 300u) << i;
    EXPECT_EQ(got[i].rdata, rrs[i].rdata) << i;
  }
}

TEST(DnsMessage, CasePreserved) {
  // The first spelling of a name is written in full and keeps its case; a later name that
  // differs only in case is compressed against it (DNS names compare case-insensitively).
  std::string mixed = wire("WwW.ExAmple.COM.");
  std::string out;
  Writer w(out, 512);
  w.header(1, flag::QR);
  ASSERT_TRUE(w.question({mixed, type::A, kClassIN}));
  ASSERT_TRUE(w.add(Writer::kAnswer, wire("www.example.com."), type::A, 1, 60, "\1\2\3\4"s));
  ASSERT_TRUE(w.add(Writer::kAnswer, wire("Mail.EXAMPLE.com."), type::A, 1, 60, "\1\2\3\4"s));
  auto m = parse_message(span(out));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->questions[0].name, mixed);
  EXPECT_EQ(m->answers[0].name, mixed);  // a pointer to the question
  EXPECT_EQ(m->answers[1].name, "\4Mail\7ExAmple\3COM\0"s);
}

TEST(DnsMessage, AddThatDoesNotFitWritesNothing) {
  std::string out;
  Writer w(out, 60);
  w.header(1, flag::QR);
  ASSERT_TRUE(w.question({kQName, type::TXT, kClassIN}));
  size_t before = w.size();
  EXPECT_EQ(before, kHeaderBytes + kQName.size() + 4);  // 33
  // 2-byte pointer + 10 + 12 bytes of rdata = 24: fits in 60 (57 bytes).
  ASSERT_TRUE(w.add(Writer::kAnswer, kQName, type::TXT, 1, 60, "\13hello world"s));
  size_t after_one = w.size();
  EXPECT_EQ(after_one, before + 24);
  EXPECT_EQ(w.room(), 60 - after_one);
  // The same again would need 81 bytes: refused, nothing written, count unchanged.
  EXPECT_FALSE(w.add(Writer::kAnswer, kQName, type::TXT, 1, 60, "\13hello world"s));
  EXPECT_EQ(w.size(), after_one);
  w.set_flags(w.flags() | flag::TC);
  auto m = parse_message(span(out));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->answers.size(), 1u);
  EXPECT_TRUE(m->flags & flag::TC);
}

TEST(DnsMessage, RefusedAddLeavesNoCompressionTarget) {
  std::string out;
  Writer w(out, 100);
  w.header(1, flag::QR);
  ASSERT_TRUE(w.question({kQName, type::A, kClassIN}));
  std::string foo = wire("foo.example.net.");
  EXPECT_FALSE(w.add(Writer::kAnswer, foo, type::TXT, 1, 60, "\77"s + std::string(63, 't')));
  // Had the refused add's names stayed known, this owner would point past the message end.
  ASSERT_TRUE(w.add(Writer::kAnswer, foo, type::A, 1, 60, "\1\2\3\4"s));
  auto m = parse_message(span(out));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_EQ(m->answers.size(), 1u);
  EXPECT_EQ(m->answers[0].name, foo);
}

TEST(DnsMessage, ReserveTailKeepsRoomForOpt) {
  std::string out;
  Writer w(out, 60);
  w.header(1, flag::QR);
  w.reserve_tail(11);
  ASSERT_TRUE(w.question({kQName, type::TXT, kClassIN}));  // 33 bytes
  // 24 more would make 57 > 60 - 11: refused because of the reservation.
  EXPECT_FALSE(w.add(Writer::kAnswer, kQName, type::TXT, 1, 60, "\13hello world"s));
  ASSERT_TRUE(w.add(Writer::kAnswer, kQName, type::A, 1, 60, "\1\2\3\4"s));  // 16: 49
  Edns e;
  EXPECT_TRUE(w.opt(e));  // 60 exactly
  EXPECT_EQ(w.size(), 60u);
  EXPECT_EQ(w.room(), 0u);
  EXPECT_FALSE(w.opt(e));  // no room for a second
  auto m = parse_message(span(out));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_TRUE(m->edns);
  EXPECT_EQ(m->answers.size(), 1u);
}

TEST(DnsMessage, RefusesNonWireNames) {
  std::string out;
  Writer w(out, 512);
  w.header(1, 0);
  EXPECT_FALSE(w.question({"\3www"s, type::A, kClassIN}));
  EXPECT_FALSE(w.add(Writer::kAnswer, "\3www\0extra"s, type::A, 1, 0, "\1\2\3\4"s));
  EXPECT_EQ(w.size(), kHeaderBytes);
}

TEST(DnsMessage, ErrorReply) {
  std::string q = query_packet();
  std::string r = error_reply(span(q), rcode::REFUSED);
  auto m = parse_message(span(r));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->id, 0xbeef);
  EXPECT_TRUE(m->flags & flag::QR);
  EXPECT_TRUE(m->flags & flag::RD);
  EXPECT_EQ(m->rcode(), rcode::REFUSED);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, kQName);

  // An UPDATE's opcode is echoed; an unreadable question is left out.
  std::string upd = header(5, opcode::UPDATE << 11, 1, 0, 0, 0) + "\7exam"s;
  auto f = parse_message(span(error_reply(span(upd), rcode::FORMERR)));
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->id, 5);
  EXPECT_EQ(f->opcode(), opcode::UPDATE);
  EXPECT_EQ(f->rcode(), rcode::FORMERR);
  EXPECT_TRUE(f->questions.empty());

  // An extended rcode travels in an OPT.
  auto b = parse_message(span(error_reply(span(q), rcode::BADVERS)));
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_TRUE(b->edns);
  EXPECT_EQ((b->edns->extended_rcode << 4) | b->rcode(), rcode::BADVERS);

  std::string tiny = "\1\2\3"s;
  EXPECT_TRUE(error_reply(span(tiny), rcode::FORMERR).empty());
}

}  // namespace
}  // namespace berth::dns
