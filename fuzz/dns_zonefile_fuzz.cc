// SPDX-License-Identifier: Apache-2.0
// BIND zone files (POST /api/v1/dns/zones/{zone}/import, `berth dns import`): parse_zone_file
// on the bytes as a zone file for example.com. Whatever parses must export to a file that
// parses back to the same sets and exports byte-identically (berth's ALIAS records and
// "; berth:" routing-policy comments included): the import/export round trip users rely on.
#include <string>

#include "dns/dns.h"
#include "fuzz.h"

BERTH_FUZZ_TARGET(dns_zonefile) {
  using namespace berth;
  fuzz::quiet_logs();
  auto zone = dns::parse_zone_file(fuzz::as_view(data, size), "example.com");
  if (!zone) {
    return 0;
  }
  std::string first = dns::export_zone_file(*zone);
  auto again = dns::parse_zone_file(first, "example.com");
  BERTH_FUZZ_CHECK(again.has_value());
  BERTH_FUZZ_CHECK(again->sets == zone->sets);
  BERTH_FUZZ_CHECK(again->serial == zone->serial);
  BERTH_FUZZ_CHECK(dns::export_zone_file(*again) == first);
  return 0;
}
