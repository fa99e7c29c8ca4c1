// SPDX-License-Identifier: Apache-2.0
// Record types and record data: presentation text ⇄ uncompressed wire form, per type.
// Pure; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace berth::dns {

namespace type {
inline constexpr uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28,
                          SRV = 33, OPT = 41, TSIG = 250, IXFR = 251, AXFR = 252, ANY = 255,
                          CAA = 257;
/// berth's ALIAS pseudo-type (private-use range, RFC 6895). Never sent on the wire: answered
/// as the target's A/AAAA. Its rdata is the target name (wire form), or for a service target
/// the name "<service>.service.berth." (see kAliasServiceSuffix).
inline constexpr uint16_t ALIAS = 65401;
}  // namespace type

inline constexpr uint16_t kClassIN = 1, kClassCH = 3, kClassNONE = 254, kClassANY = 255;

/// "A", "AAAA", ..., "ALIAS", and "TYPE123" (RFC 3597) for others.
std::string type_to_text(uint16_t t);
/// Case-insensitive; "TYPE123" accepted. InvalidArgument for an unknown mnemonic.
Result<uint16_t> type_from_text(std::string_view text);
/// The types berth stores (SOA NS A AAAA CNAME MX TXT SRV CAA PTR ALIAS).
bool type_supported(uint16_t t);
/// Types whose rdata holds names that may be compressed on output (RFC 3597 §4: NS, CNAME,
/// SOA, MX, PTR). Other rdata is written as is.
bool type_compresses(uint16_t t);

/// One record's presentation rdata ("10 mail", "\"v=spf1 -all\"", "192.0.2.1") to wire form.
/// Relative names in it are completed with origin (wire form). TXT: one or more quoted or
/// bare strings, each at most 255 bytes (InvalidArgument "TXT string over 255 bytes" when
/// one is longer; callers that want auto-splitting use txt_split). Errors name the type and
/// the value.
Result<std::string> rdata_from_text(uint16_t t, std::string_view text,
                                    std::string_view origin = {});
/// Wire rdata to presentation text, names absolute with a trailing dot, as dig prints it.
/// InvalidArgument when the rdata is malformed for its type.
Result<std::string> rdata_to_text(uint16_t t, std::string_view rdata);
/// Checks wire rdata for its type (lengths, embedded names). Used on input from the wire.
Status rdata_check(uint16_t t, std::string_view rdata);

/// Appends v's low 16 bits in network order, as every 16-bit field of the wire format.
inline void put16(std::string& out, uint64_t v) {
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

}  // namespace berth::dns
