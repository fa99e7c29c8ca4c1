// SPDX-License-Identifier: Apache-2.0
// Placeholder: the DNS work fills this target in.
#include "fuzz.h"

BERTH_FUZZ_TARGET(dns_changes) {
  (void)data;
  (void)size;
  return 0;
}
