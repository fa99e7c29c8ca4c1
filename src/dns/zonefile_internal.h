// SPDX-License-Identifier: Apache-2.0
// Private to src/dns/zonefile*.cc: berth's routing-policy comment on a zone file record,
// "www 60 IN A 192.0.2.1 ; berth: set=eu weight=10 health=hc1", read and written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "dns/dns.h"

namespace berth::dns::zonefile {

/// The routing policy a "; berth:" comment gives a record.
struct Policy {
  std::optional<std::string> set, failover, health;
  std::optional<uint32_t> weight;
  bool multivalue = false;
};

/// Parses the text after "; berth:": key=value pairs (set, weight, failover, health) and the
/// flag multivalue; a value may be quoted with \" \\ and \DDD escapes. InvalidArgument
/// "line N: ..." for an unknown or repeated key, a bad value, or a policy without set=.
Result<Policy> parse_berth_comment(std::string_view s, int line);
/// " ; berth: set=... weight=..." for a set with a routing policy or a health check, else "".
std::string policy_comment(const RecordSet& s);

}  // namespace berth::dns::zonefile
