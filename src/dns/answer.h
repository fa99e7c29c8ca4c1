// SPDX-License-Identifier: Apache-2.0
// Answer logic, pure: a query packet and a snapshot in, a reply packet out (RFC 1034 §4.3.2,
// RFC 2308 negative answers with the SOA, RFC 4592 wildcards, RFC 6891 EDNS0).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "dns/message.h"
#include "dns/zone.h"

namespace berth::dns {

struct QueryContext {
  bool tcp = false;         // the reply limit is 65535 instead of the UDP payload size
  uint32_t random = 0;      // picks among weighted sets (a fresh value per query)
};

/// Answers one standard query (opcode QUERY, one question, class IN/ANY):
///  - outside every zone → REFUSED; a malformed packet → FORMERR (or nothing when even the
///    header is unreadable: `out` left empty means drop);
///  - AA set for authoritative data; a referral below a zone cut has the NS set in
///    authority, glue in additional and AA clear;
///  - NXDOMAIN / NODATA carry the zone's SOA in authority with TTL min(SOA TTL, minimum);
///  - CNAMEs followed within the zone; wildcards synthesised with the query's name;
///  - ALIAS answered as A/AAAA of its target (flattened, no CNAME), with the ALIAS's TTL;
///  - the question echoed with the query's case; names compressed; over the limit the
///    reply is cut at a whole RRset and TC set (additional data is dropped first, no TC);
///  - EDNS: an OPT in the query gets one back (payload 1232); version > 0 → BADVERS.
/// Other opcodes → NOTIMP; AXFR/IXFR over UDP → REFUSED (server.cc handles them on TCP).
void answer_query(const Snapshot& snap, std::span<const uint8_t> query, const QueryContext& ctx,
                  std::string& out);

}  // namespace berth::dns
