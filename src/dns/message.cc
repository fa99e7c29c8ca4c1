// SPDX-License-Identifier: Apache-2.0
// The DNS message codec: parse_message / parse_question read a packet into values with every
// name decompressed; Writer builds a reply with case-insensitive name compression and refuses
// an RR that would overflow the size limit, so the caller can set TC at an RRset boundary.
#include "dns/message.h"

#include <algorithm>

#include "dns/name.h"
#include "dns/rdata.h"

namespace berth::dns {

namespace {

Error formerr(const std::string& why) { return make_error(Errc::InvalidArgument, why); }

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> p) : p_(p) {}

  size_t pos() const { return pos_; }
  size_t left() const { return p_.size() - pos_; }

  Result<uint16_t> u16(const char* what) {
    if (left() < 2) {
      return formerr(std::string("truncated ") + what);
    }
    uint16_t v = static_cast<uint16_t>((p_[pos_] << 8) | p_[pos_ + 1]);
    pos_ += 2;
    return v;
  }

  Result<uint32_t> u32(const char* what) {
    BERTH_ASSIGN_OR_RETURN(uint32_t hi, u16(what));
    BERTH_ASSIGN_OR_RETURN(uint32_t lo, u16(what));
    return (hi << 16) | lo;
  }

  // Reads a possibly compressed name at the cursor and moves past it (past the first
  // pointer, when there is one).
  Result<std::string> name() {
    BERTH_ASSIGN_OR_RETURN(auto r, name_at(pos_, p_.size()));
    pos_ = r.second;
    return std::move(r.first);
  }

  // Decompresses the name at `at`, whose own bytes (up to the first pointer) must end by
  // `end`. Each pointer must point before the lowest offset reached so far, so the walk
  // always moves backwards: forward pointers and loops are refused. Returns the name and the
  // offset just past its in-place bytes.
  Result<std::pair<std::string, size_t>> name_at(size_t at, size_t end) const {
    std::string out;
    size_t i = at;
    size_t lowest = at;
    size_t after = 0;
    bool jumped = false;
    while (true) {
      size_t bound = jumped ? p_.size() : end;
      if (i >= bound) {
        return formerr("truncated name");
      }
      uint8_t len = p_[i];
      if ((len & 0xC0) == 0xC0) {
        if (i + 1 >= bound) {
          return formerr("truncated compression pointer");
        }
        size_t target = (static_cast<size_t>(len & 0x3F) << 8) | p_[i + 1];
        if (target >= lowest) {
          return formerr("compression pointer does not point backwards");
        }
        if (!jumped) {
          after = i + 2;
          jumped = true;
        }
        lowest = target;
        i = target;
        continue;
      }
      if ((len & 0xC0) != 0) {
        return formerr("bad label type");
      }
      if (i + 1 + len > bound) {
        return formerr("truncated label");
      }
      out.append(reinterpret_cast<const char*>(&p_[i]), 1 + len);
      if (out.size() > kMaxNameBytes) {
        return formerr("name over 255 bytes");
      }
      i += 1 + len;
      if (len == 0) {
        break;
      }
    }
    return std::make_pair(std::move(out), jumped ? after : i);
  }

  Result<std::string_view> bytes(size_t n, const char* what) {
    if (left() < n) {
      return formerr(std::string("truncated ") + what);
    }
    std::string_view v(reinterpret_cast<const char*>(p_.data()) + pos_, n);
    pos_ += n;
    return v;
  }

 private:
  std::span<const uint8_t> p_;
  size_t pos_ = 0;
};

struct Header {
  uint16_t id = 0, flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
};

Result<Header> read_header(Reader& r) {
  if (r.left() < kHeaderBytes) {
    return formerr("message shorter than its 12-byte header");
  }
  Header h;
  h.id = *r.u16("header");
  h.flags = *r.u16("header");
  h.qd = *r.u16("header");
  h.an = *r.u16("header");
  h.ns = *r.u16("header");
  h.ar = *r.u16("header");
  return h;
}

Status read_questions(Reader& r, uint16_t count, std::vector<Question>& out) {
  out.reserve(std::min<size_t>(count, r.left() / 5));
  for (uint16_t i = 0; i < count; ++i) {
    Question q;
    BERTH_ASSIGN_OR_RETURN(q.name, r.name());
    BERTH_ASSIGN_OR_RETURN(q.type, r.u16("question"));
    BERTH_ASSIGN_OR_RETURN(q.klass, r.u16("question"));
    out.push_back(std::move(q));
  }
  return ok();
}

// The rdata of one RR, names decompressed for the types that may carry compressed names.
Result<std::string> read_rdata(const Reader& r, size_t start, size_t len, uint16_t t,
                               std::string_view raw) {
  size_t end = start + len;
  size_t fixed_before = 0;  // bytes before the name(s)
  int names = 0;
  size_t fixed_after = 0;  // bytes after
  switch (t) {
    case type::NS:
    case type::CNAME:
    case type::PTR:
      names = 1;
      break;
    case type::MX:
      fixed_before = 2;
      names = 1;
      break;
    case type::SRV:
      fixed_before = 6;
      names = 1;
      break;
    case type::SOA:
      names = 2;
      fixed_after = 20;
      break;
    default: {
      auto st = rdata_check(t, raw);
      if (!st) {
        return std::move(st).error();
      }
      return std::string(raw);
    }
  }
  if (len < fixed_before) {
    return formerr(type_to_text(t) + " rdata: truncated");
  }
  std::string out(raw.substr(0, fixed_before));
  size_t at = start + fixed_before;
  for (int k = 0; k < names; ++k) {
    auto n = r.name_at(at, end);
    if (!n) {
      return formerr(type_to_text(t) + " rdata: " + n.error().message());
    }
    out += n->first;
    at = n->second;
  }
  if (end - at != fixed_after) {
    return formerr(type_to_text(t) + " rdata: wrong length");
  }
  out += raw.substr(at - start);
  return out;
}

Status read_records(Reader& r, uint16_t count, int section, Message& m) {
  auto& out = section == 0 ? m.answers : section == 1 ? m.authority : m.additional;
  out.reserve(std::min<size_t>(count, r.left() / 11));
  for (uint16_t i = 0; i < count; ++i) {
    size_t rr_start = r.pos();
    ResourceRecord rr;
    BERTH_ASSIGN_OR_RETURN(rr.name, r.name());
    BERTH_ASSIGN_OR_RETURN(rr.type, r.u16("record"));
    BERTH_ASSIGN_OR_RETURN(rr.klass, r.u16("record"));
    BERTH_ASSIGN_OR_RETURN(rr.ttl, r.u32("record"));
    BERTH_ASSIGN_OR_RETURN(uint16_t len, r.u16("record"));
    size_t rdata_start = r.pos();
    BERTH_ASSIGN_OR_RETURN(std::string_view raw, r.bytes(len, "rdata"));
    if (rr.type == type::OPT) {
      if (section != 2) {
        return formerr("OPT outside the additional section");
      }
      if (m.edns) {
        return formerr("more than one OPT record");
      }
      if (rr.name != std::string_view("\0", 1)) {
        return formerr("OPT owner is not the root");
      }
      for (size_t o = 0; o < raw.size();) {
        if (raw.size() - o < 4) {
          return formerr("truncated EDNS option");
        }
        size_t olen = (static_cast<size_t>(static_cast<uint8_t>(raw[o + 2])) << 8) |
                      static_cast<uint8_t>(raw[o + 3]);
        if (raw.size() - o - 4 < olen) {
          return formerr("truncated EDNS option");
        }
        o += 4 + olen;
      }
      Edns e;
      e.udp_payload = rr.klass;
      e.extended_rcode = static_cast<uint8_t>(rr.ttl >> 24);
      e.version = static_cast<uint8_t>(rr.ttl >> 16);
      e.dnssec_ok = (rr.ttl & 0x8000) != 0;
      e.options = std::string(raw);
      m.edns = std::move(e);
      continue;
    }
    if (rr.type == type::TSIG) {
      if (section != 2 || i + 1 != count) {
        return formerr("TSIG is not the last additional record");
      }
      m.tsig_offset = rr_start;
      rr.rdata = std::string(raw);  // RFC 8945: its algorithm name is never compressed
    } else if (len == 0 && (rr.klass == kClassANY || rr.klass == kClassNONE)) {
      // UPDATE prerequisites and RRset deletions (RFC 2136) carry no rdata.
    } else {
      auto rd = read_rdata(r, rdata_start, len, rr.type, raw);
      if (!rd) {
        return std::move(rd).error();
      }
      rr.rdata = std::move(*rd);
    }
    out.push_back(std::move(rr));
  }
  return ok();
}

}  // namespace

Result<Message> parse_message(std::span<const uint8_t> packet) {
  Reader r(packet);
  BERTH_ASSIGN_OR_RETURN(Header h, read_header(r));
  Message m;
  m.id = h.id;
  m.flags = h.flags;
  BERTH_TRY(read_questions(r, h.qd, m.questions));
  BERTH_TRY(read_records(r, h.an, 0, m));
  BERTH_TRY(read_records(r, h.ns, 1, m));
  BERTH_TRY(read_records(r, h.ar, 2, m));
  if (r.left() != 0) {
    return formerr("trailing bytes after the last record");
  }
  return m;
}

Result<size_t> parse_question(std::span<const uint8_t> packet, Message& out) {
  Reader r(packet);
  BERTH_ASSIGN_OR_RETURN(Header h, read_header(r));
  out.id = h.id;
  out.flags = h.flags;
  out.questions.clear();
  BERTH_TRY(read_questions(r, h.qd, out.questions));
  return r.pos();
}

// ---- Writer ---------------------------------------------------------------------------------

Writer::Writer(std::string& out, size_t limit) : out_(out), limit_(std::min<size_t>(limit, 65535)) {
  out_.assign(kHeaderBytes, '\0');  // the header is filled in place as the message grows
}

void Writer::header(uint16_t id, uint16_t flags) {
  out_[0] = static_cast<char>(id >> 8);
  out_[1] = static_cast<char>(id & 0xFF);
  set_flags(flags);
}

void Writer::set_flags(uint16_t flags) {
  out_[2] = static_cast<char>(flags >> 8);
  out_[3] = static_cast<char>(flags & 0xFF);
}

uint16_t Writer::flags() const {
  return static_cast<uint16_t>((static_cast<uint8_t>(out_[2]) << 8) |
                               static_cast<uint8_t>(out_[3]));
}

void Writer::bump(int idx) {
  ++counts_[idx];
  out_[4 + 2 * idx] = static_cast<char>(counts_[idx] >> 8);
  out_[5 + 2 * idx] = static_cast<char>(counts_[idx] & 0xFF);
}

void Writer::put_name(std::string_view wire, bool compress) {
  size_t i = 0;
  while (i < wire.size() && wire[i] != '\0') {
    std::string key = name_lower(wire.substr(i));
    if (compress) {
      for (const auto& [suffix, off] : seen_) {
        if (suffix == key) {
          out_ += static_cast<char>(0xC0 | (off >> 8));
          out_ += static_cast<char>(off & 0xFF);
          return;
        }
      }
    }
    if (out_.size() < 0x4000) {
      seen_.emplace_back(std::move(key), static_cast<uint16_t>(out_.size()));
    }
    size_t len = 1 + static_cast<uint8_t>(wire[i]);
    out_ += wire.substr(i, len);
    i += len;
  }
  out_ += '\0';
}

bool Writer::question(const Question& q) {
  if (!name_check(q.name) || *name_check(q.name) != q.name.size()) {
    return false;  // not a wire name: refuse rather than write garbage
  }
  size_t mark = out_.size();
  size_t seen_mark = seen_.size();
  put_name(q.name, true);
  put16(out_, q.type);
  put16(out_, q.klass);
  if (out_.size() + reserve_ > limit_) {
    out_.resize(mark);
    seen_.resize(seen_mark);
    return false;
  }
  bump(0);
  return true;
}

bool Writer::add(Section s, std::string_view name, uint16_t type, uint16_t klass, uint32_t ttl,
                 std::string_view rdata) {
  auto owner = name_check(name);
  if (!owner || *owner != name.size() || rdata.size() > 65535) {
    return false;  // not a wire name or oversized rdata: refuse rather than write garbage
  }
  size_t mark = out_.size();
  size_t seen_mark = seen_.size();
  put_name(name, true);
  put16(out_, type);
  put16(out_, klass);
  put16(out_, ttl >> 16);
  put16(out_, ttl & 0xFFFF);
  size_t len_at = out_.size();
  put16(out_, 0);
  // Names in NS/CNAME/PTR/MX/SOA rdata are compressed when the rdata is well-formed; any
  // other rdata (and malformed rdata) is copied as is.
  if (type_compresses(type) && rdata_check(type, rdata)) {
    size_t at = 0;
    if (type == type::MX) {
      out_ += rdata.substr(0, 2);
      at = 2;
    }
    int names = type == type::SOA ? 2 : 1;
    for (int k = 0; k < names; ++k) {
      size_t n = *name_check(rdata.substr(at));
      put_name(rdata.substr(at, n), true);
      at += n;
    }
    out_ += rdata.substr(at);
  } else {
    out_ += rdata;
  }
  size_t rdlen = out_.size() - len_at - 2;
  if (out_.size() + reserve_ > limit_ || rdlen > 65535) {
    out_.resize(mark);
    seen_.resize(seen_mark);
    return false;
  }
  out_[len_at] = static_cast<char>(rdlen >> 8);
  out_[len_at + 1] = static_cast<char>(rdlen & 0xFF);
  bump(1 + static_cast<int>(s));
  return true;
}

bool Writer::opt(const Edns& e, uint8_t extended_rcode) {
  // The OPT goes into the tail reserved for it: only the hard limit applies.
  size_t need = 11 + e.options.size();
  if (out_.size() + need > limit_ || e.options.size() > 65535) {
    return false;
  }
  // A non-zero argument (the reply's upper rcode bits, e.g. BADVERS) wins over e's field.
  uint8_t ext = extended_rcode != 0 ? extended_rcode : e.extended_rcode;
  out_ += '\0';
  put16(out_, type::OPT);
  put16(out_, e.udp_payload);
  out_ += static_cast<char>(ext);
  out_ += static_cast<char>(e.version);
  put16(out_, e.dnssec_ok ? 0x8000 : 0);
  put16(out_, static_cast<uint32_t>(e.options.size()));
  out_ += e.options;
  bump(3);
  return true;
}

std::string error_reply(std::span<const uint8_t> query, int rcode) {
  std::string out;
  if (query.size() < kHeaderBytes) {
    return out;  // not even a header: nothing to answer
  }
  Message q;
  bool have_question = parse_question(query, q).has_value();
  if (!have_question) {
    q.id = static_cast<uint16_t>((query[0] << 8) | query[1]);
    q.flags = static_cast<uint16_t>((query[2] << 8) | query[3]);
  }
  Writer w(out, kDefaultUdpPayload);
  uint16_t flags = static_cast<uint16_t>(flag::QR | (q.flags & (0xF << 11)) | (q.flags & flag::RD) |
                                         (rcode & 0xF));
  w.header(q.id, flags);
  if (rcode > 0xF) {
    w.reserve_tail(11);  // the upper rcode bits need an OPT
  }
  if (have_question && q.questions.size() == 1) {
    (void)w.question(q.questions[0]);
  }
  if (rcode > 0xF) {
    Edns e;
    e.udp_payload = kEdnsUdpPayload;
    (void)w.opt(e, static_cast<uint8_t>(rcode >> 4));
  }
  return out;
}

}  // namespace berth::dns
