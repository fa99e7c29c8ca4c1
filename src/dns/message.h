// SPDX-License-Identifier: Apache-2.0
// The DNS message codec (RFC 1035 §4, EDNS0 RFC 6891), sans-IO: bytes in, values out, and a
// writer that builds a reply with name compression and truncation.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::dns {

namespace flag {
inline constexpr uint16_t QR = 0x8000, AA = 0x0400, TC = 0x0200, RD = 0x0100, RA = 0x0080,
                          AD = 0x0020, CD = 0x0010;
}
namespace opcode {
inline constexpr int QUERY = 0, NOTIFY = 4, UPDATE = 5;
}
namespace rcode {
inline constexpr int NOERROR = 0, FORMERR = 1, SERVFAIL = 2, NXDOMAIN = 3, NOTIMP = 4,
                     REFUSED = 5, YXDOMAIN = 6, YXRRSET = 7, NXRRSET = 8, NOTAUTH = 9,
                     NOTZONE = 10, BADVERS = 16, BADSIG = 16, BADKEY = 17, BADTIME = 18;
}

inline constexpr size_t kHeaderBytes = 12;
inline constexpr uint16_t kDefaultUdpPayload = 512;
/// What berth advertises and the most it sends over UDP to an EDNS client (DNS flag day 2020).
inline constexpr uint16_t kEdnsUdpPayload = 1232;

struct Question {
  std::string name;  // wire form, as received (case kept)
  uint16_t type = 0;
  uint16_t klass = 1;
};

struct ResourceRecord {
  std::string name;  // wire form
  uint16_t type = 0;
  uint16_t klass = 1;
  uint32_t ttl = 0;
  std::string rdata;  // uncompressed wire form (names in NS/CNAME/SOA/MX/PTR/SRV expanded)
};

struct Edns {
  uint16_t udp_payload = kDefaultUdpPayload;
  uint8_t extended_rcode = 0;
  uint8_t version = 0;
  bool dnssec_ok = false;
  std::string options;  // raw option bytes, kept for TSIG digests only
};

struct Message {
  uint16_t id = 0;
  uint16_t flags = 0;  // QR, opcode (bits 11-14), AA, TC, RD, RA, AD, CD, rcode (low 4 bits)
  std::vector<Question> questions;
  std::vector<ResourceRecord> answers, authority, additional;  // OPT removed into edns
  std::optional<Edns> edns;
  /// Offset of the TSIG record in the packet when the last additional RR was TSIG (it is
  /// also left in `additional`): the MAC covers the bytes before it.
  std::optional<size_t> tsig_offset;

  int opcode() const { return (flags >> 11) & 0xF; }
  int rcode() const { return flags & 0xF; }
};

/// Parses a whole message. InvalidArgument (→ FORMERR) for anything malformed: truncated
/// sections, bad or looping compression pointers, names over 255 bytes, rdata that does not
/// match its type, more than one OPT, trailing bytes.
Result<Message> parse_message(std::span<const uint8_t> packet);
/// Parses only the header and the question section (the fast path for queries). Returns the
/// offset just past the question, or an error as parse_message.
Result<size_t> parse_question(std::span<const uint8_t> packet, Message& out);

/// Builds a message into a caller-owned buffer, compressing owner names and the names in
/// NS/CNAME/SOA/MX/PTR rdata against every name already written. When an RR would not fit
/// in `limit` bytes, `add` returns false and writes nothing; the caller then sets TC (or
/// drops the additional section, which needs no TC).
class Writer {
 public:
  /// `limit`: the most bytes the message may take (UDP payload size, or 65535 for TCP).
  Writer(std::string& out, size_t limit);

  void header(uint16_t id, uint16_t flags);
  bool question(const Question& q);
  enum Section { kAnswer = 0, kAuthority = 1, kAdditional = 2 };
  /// Adds one RR; false when it does not fit (nothing written).
  bool add(Section s, std::string_view name, uint16_t type, uint16_t klass, uint32_t ttl,
           std::string_view rdata);
  /// Adds the OPT RR (counted in additional). False when it does not fit.
  bool opt(const Edns& e, uint8_t extended_rcode = 0);
  void set_flags(uint16_t flags);
  uint16_t flags() const;
  /// Bytes written so far / room left.
  size_t size() const { return out_.size(); }
  size_t room() const { return limit_ > out_.size() ? limit_ - out_.size() : 0; }
  /// Reserves bytes at the end (an OPT RR must still fit after the answers).
  void reserve_tail(size_t n) { reserve_ = n; }

 private:
  std::string& out_;
  size_t limit_;
  size_t reserve_ = 0;
  uint16_t counts_[4] = {0, 0, 0, 0};  // qd, an, ns, ar
  // Compression: offsets of names (and their suffixes) already written, keyed by the
  // lower-cased wire suffix. A small flat vector: replies hold few names.
  std::vector<std::pair<std::string, uint16_t>> seen_;
  void put_name(std::string_view wire, bool compress);
  void bump(int idx);
};

/// A minimal reply to `query` (same id, opcode, RD; the question echoed when present) with
/// the given rcode: used for FORMERR, REFUSED, NOTIMP, SERVFAIL.
std::string error_reply(std::span<const uint8_t> query, int rcode);

}  // namespace berth::dns
