// SPDX-License-Identifier: Apache-2.0
// Change batches (POST /api/v1/dns/zones/{zone}/changes): parse_change_batch against
// "example.com", then apply_changes to a new zone. Whatever applies must be a zone the rules
// accept and that compiles, so no batch the API takes can publish a snapshot that fails.
#include "dns/dns.h"
#include "dns/zone.h"
#include "fuzz.h"

BERTH_FUZZ_TARGET(dns_changes) {
  using namespace berth;
  fuzz::quiet_logs();
  auto batch = dns::parse_change_batch(fuzz::as_view(data, size), "example.com");
  if (!batch) {
    return 0;
  }
  dns::ZoneData base = dns::new_zone("example.com", {"ns1.example.com", "ns2.example.net"}, 1);
  BERTH_FUZZ_CHECK(dns::validate_zone(base));
  auto applied = dns::apply_changes(base, *batch);
  if (!applied) {
    return 0;
  }
  BERTH_FUZZ_CHECK(applied->serial == base.serial + 1);
  BERTH_FUZZ_CHECK(dns::validate_zone(*applied));
  auto compiled = dns::Zone::compile(*applied);
  BERTH_FUZZ_CHECK(compiled.has_value());
  // Applying the same batch again to its own result either fails or validates too.
  auto again = dns::apply_changes(*applied, *batch);
  if (again) {
    BERTH_FUZZ_CHECK(dns::validate_zone(*again));
  }
  return 0;
}
