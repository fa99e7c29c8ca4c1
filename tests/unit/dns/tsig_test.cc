// SPDX-License-Identifier: Apache-2.0
// TSIG (RFC 8945): HMAC-SHA256 against RFC 4231, a request nsupdate signed (captured from
// bind9's nsupdate 9.18) verified byte for byte, sign → verify round trips for requests and
// responses, and every way verification fails (tampering, wrong secret, unknown key, time).
#include "dns/tsig.h"

#include <gtest/gtest.h>

#include "common/url.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "unit/dns/dns_test_util.h"

namespace berth::dns {
namespace {

using namespace test_util;

std::string unhex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// `nsupdate -y hmac-sha256:test-key:c2VjcmV0LWtleS1mb3ItYmVydGgtdGVzdHMtMzItYnl0ZXM=` sending
// "update add _acme-challenge.example.com 60 TXT "tok"" to zone example.com.
constexpr std::string_view kNsupdatePacket =
    "f41428000001000000010001076578616d706c6503636f6d00000600010f5f61636d652d6368616c6c656e6765"
    "c00c001000010000003c000403746f6b08746573742d6b65790000fa00ff00000000003d0b686d61632d736861"
    "3235360000006b148763012c0020234033d7174cb0a906ad59346702e9b2a8513ee289de0b33501172b6e127a2"
    "fef41400000000";

TsigKey test_key() {
  TsigKey k;
  k.name = "test-key";
  k.secret = "secret-key-for-berth-tests-32-bytes";
  return k;
}

auto lookup_of(const TsigKey& k) {
  return [k](std::string_view name) -> std::optional<TsigKey> {
    if (name == k.name) {
      return k;
    }
    return std::nullopt;
  };
}

// A small UPDATE for example.com, as a client would build it.
std::string make_update(uint16_t id) {
  std::string out;
  Writer w(out, 65535);
  w.header(id, static_cast<uint16_t>(opcode::UPDATE << 11));
  w.question(Question{*name_from_text("example.com."), type::SOA, kClassIN});
  auto rd = rdata_from_text(type::TXT, "\"tok\"");
  EXPECT_TRUE(w.add(Writer::kAuthority, *name_from_text("_acme-challenge.example.com."), type::TXT,
                    kClassIN, 60, *rd));
  return out;
}

TEST(DnsTsigTest, HmacSha256MatchesRfc4231) {
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(DnsTsigTest, VerifiesWhatNsupdateSigned) {
  std::string pkt = unhex(kNsupdatePacket);
  auto m = parse_message(bytes(pkt));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE(m->tsig_offset);
  auto rec = parse_tsig_rdata(m->additional.back().rdata);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->fudge, 300);
  EXPECT_EQ(rec->mac.size(), 32u);
  auto c = tsig_verify(bytes(pkt), *m, lookup_of(test_key()), rec->time_signed + 10);
  EXPECT_EQ(c.error, 0);
  ASSERT_TRUE(c.key);
  EXPECT_EQ(c.key->name, "test-key");

  // The same bytes with one bit flipped in the TXT value: BADSIG.
  std::string tampered = pkt;
  tampered[tampered.find("tok")] ^= 0x20;
  auto tm = parse_message(bytes(tampered));
  ASSERT_TRUE(tm);
  EXPECT_EQ(tsig_verify(bytes(tampered), *tm, lookup_of(test_key()), rec->time_signed).error,
            rcode::BADSIG);
  // Another secret: BADSIG. An unknown key: BADKEY. Too late: BADTIME.
  TsigKey other = test_key();
  other.secret = "another-secret-another-secret-xx";
  EXPECT_EQ(tsig_verify(bytes(pkt), *m, lookup_of(other), rec->time_signed).error, rcode::BADSIG);
  TsigKey renamed = test_key();
  renamed.name = "other-key";
  EXPECT_EQ(tsig_verify(bytes(pkt), *m, lookup_of(renamed), rec->time_signed).error, rcode::BADKEY);
  EXPECT_EQ(tsig_verify(bytes(pkt), *m, lookup_of(test_key()), rec->time_signed + 301).error,
            rcode::BADTIME);
  EXPECT_EQ(tsig_verify(bytes(pkt), *m, lookup_of(test_key()), rec->time_signed - 301).error,
            rcode::BADTIME);
}

TEST(DnsTsigTest, SignedRequestRoundTripsAndOurSignatureEqualsNsupdates) {
  // Rebuild nsupdate's message body and sign it ourselves at its time: the MAC must be the
  // one nsupdate computed.
  std::string pkt = unhex(kNsupdatePacket);
  auto m = parse_message(bytes(pkt));
  ASSERT_TRUE(m);
  auto rec = parse_tsig_rdata(m->additional.back().rdata);
  ASSERT_TRUE(rec);
  std::string body = pkt.substr(0, *m->tsig_offset);
  body[11] = static_cast<char>(body[11] - 1);  // ARCOUNT without the TSIG
  std::string mac =
      tsig_append(body, test_key(), *name_from_text("test-key."), rec->time_signed, 0, {});
  EXPECT_EQ(hex(mac), hex(rec->mac));
  EXPECT_EQ(hex(body), hex(pkt));
}

TEST(DnsTsigTest, ResponseSignatureCoversTheRequestMac) {
  TsigKey k = test_key();
  std::string req = make_update(0x1234);
  std::string req_mac = tsig_append(req, k, *name_from_text("test-key."), 1000, 0, {});
  auto rm = parse_message(bytes(req));
  ASSERT_TRUE(rm);
  ASSERT_EQ(tsig_verify(bytes(req), *rm, lookup_of(k), 1000).error, 0);

  std::string resp;
  Writer w(resp, 512);
  w.header(0x1234, static_cast<uint16_t>(flag::QR | (opcode::UPDATE << 11)));
  tsig_append(resp, k, *name_from_text("test-key."), 1001, 0, req_mac);
  auto pm = parse_message(bytes(resp));
  ASSERT_TRUE(pm);
  EXPECT_EQ(tsig_verify(bytes(resp), *pm, lookup_of(k), 1001, req_mac).error, 0);
  // Verified as a request (no prior MAC), or against another request's MAC: BADSIG.
  EXPECT_EQ(tsig_verify(bytes(resp), *pm, lookup_of(k), 1001).error, rcode::BADSIG);
  std::string wrong_mac = req_mac;
  wrong_mac[0] ^= 1;
  EXPECT_EQ(tsig_verify(bytes(resp), *pm, lookup_of(k), 1001, wrong_mac).error, rcode::BADSIG);
}

TEST(DnsTsigTest, MalformedAndTruncatedMacs) {
  TsigKey k = test_key();
  std::string req = make_update(7);
  tsig_append(req, k, *name_from_text("test-key."), 1000, 0, {});
  auto m = parse_message(bytes(req));
  ASSERT_TRUE(m);
  // Rewrite the MAC length to 8 (below the RFC's minimum) by hand: FORMERR.
  std::string rd = m->additional.back().rdata;
  Message copy = *m;
  size_t alg = *name_check(rd);
  copy.additional.back().rdata = rd.substr(0, alg + 8) + std::string("\0\x08", 2) +
                                 rd.substr(alg + 10, 8) + rd.substr(alg + 10 + 32);
  EXPECT_EQ(tsig_verify(bytes(req), copy, lookup_of(k), 1000).error, rcode::FORMERR);
  EXPECT_FALSE(parse_tsig_rdata(rd.substr(0, rd.size() - 1)));
  EXPECT_FALSE(parse_tsig_rdata(""));
  // An unsigned message has nothing to verify.
  std::string plain = make_update(8);
  auto pm = parse_message(bytes(plain));
  ASSERT_TRUE(pm);
  EXPECT_EQ(tsig_verify(bytes(plain), *pm, lookup_of(k), 1000).error, rcode::FORMERR);
}

TEST(DnsTsigTest, UnsignedErrorTsigHasNoMac) {
  std::string resp;
  Writer w(resp, 512);
  w.header(1, static_cast<uint16_t>(flag::QR | (opcode::UPDATE << 11) | rcode::NOTAUTH));
  std::string mac =
      tsig_append(resp, TsigKey{}, *name_from_text("nope."), 5, rcode::BADKEY, {}, false);
  EXPECT_TRUE(mac.empty());
  auto m = parse_message(bytes(resp));
  ASSERT_TRUE(m);
  auto rec = parse_tsig_rdata(m->additional.back().rdata);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->error, rcode::BADKEY);
  EXPECT_TRUE(rec->mac.empty());
  EXPECT_EQ(rec->time_signed, 5u);
}

TEST(DnsTsigTest, GlobsAndScopes) {
  EXPECT_TRUE(glob_match("_acme-challenge.*", "_acme-challenge.example.com"));
  EXPECT_TRUE(glob_match("_acme-challenge.*", "_ACME-challenge.a.b.example.com"));
  EXPECT_FALSE(glob_match("_acme-challenge.*", "www.example.com"));
  EXPECT_FALSE(glob_match("_acme-challenge.*", "x._acme-challenge.example.com"));
  EXPECT_TRUE(glob_match("*.dyn.example.com", "home.dyn.example.com"));
  EXPECT_FALSE(glob_match("*.dyn.example.com", "dyn.example.com"));
  EXPECT_TRUE(glob_match("h?st.example.com", "host.example.com"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("", "a"));

  TsigKey k;
  k.name = "ACME.";
  k.zones = {"Example.COM."};
  k.names = {"_acme-challenge.*."};
  ASSERT_TRUE(normalize_tsig_key(k));
  EXPECT_EQ(k.name, "acme");
  EXPECT_EQ(k.zones[0], "example.com");
  EXPECT_EQ(k.names[0], "_acme-challenge.*");
  EXPECT_TRUE(k.allows_zone("example.com"));
  EXPECT_FALSE(k.allows_zone("example.org"));
  EXPECT_TRUE(k.allows_name("_acme-challenge.www.example.com"));
  EXPECT_FALSE(k.allows_name("www.example.com"));
  TsigKey any;
  any.name = "any";
  ASSERT_TRUE(normalize_tsig_key(any));
  EXPECT_TRUE(any.allows_zone("example.org"));
  EXPECT_TRUE(any.allows_name("www.example.org"));

  TsigKey bad;
  bad.name = "has space";
  EXPECT_FALSE(normalize_tsig_key(bad));
  bad.name = "ok";
  bad.algorithm = "hmac-md5";
  EXPECT_FALSE(normalize_tsig_key(bad));
  bad.algorithm = "hmac-sha256";
  bad.names = {"www example"};
  EXPECT_FALSE(normalize_tsig_key(bad));
}

}  // namespace
}  // namespace berth::dns
