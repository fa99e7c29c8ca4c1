// SPDX-License-Identifier: Apache-2.0
// Zone transfers out (AXFR, RFC 5936), sans-IO: the messages a TCP connection sends for one
// transfer request.
#pragma once

#include <string>
#include <vector>

#include "dns/message.h"
#include "dns/zone.h"

namespace berth::dns {

/// The replies to an AXFR (or IXFR, answered with a full transfer: RFC 1995 §4 allows it)
/// for `zone`: SOA first, every RRset, SOA last, packed into messages of at most 16 KiB.
std::vector<std::string> axfr_replies(const Zone& zone, const Message& query);

/// True when `peer` (an address, "127.0.0.1") may transfer the zone: it is listed in
/// allow_transfer (entries "ADDR" or "ADDR:PORT"; the port is for NOTIFY and ignored here).
bool transfer_allowed(const ZoneData& zone, const std::string& peer);

}  // namespace berth::dns
