// SPDX-License-Identifier: Apache-2.0
// What an S3 service (or whoever answers in its place) sends the blob storage's client: the
// XML of listings, multipart answers and errors, parsed into a tree.
#include <string>

#include "fuzz.h"
#include "storage/s3_xml.h"

namespace {
size_t count(const berth::storage::XmlNode& n, int depth) {
  BERTH_FUZZ_CHECK(depth <= 32);
  size_t total = 1;
  for (const auto& c : n.children) {
    total += count(c, depth + 1);
  }
  return total;
}
}  // namespace

BERTH_FUZZ_TARGET(s3_xml) {
  using namespace berth;
  fuzz::quiet_logs();
  auto doc = storage::parse_xml(fuzz::as_view(data, size));
  if (doc) {
    BERTH_FUZZ_CHECK(!doc->name.empty());
    (void)count(*doc, 1);
    (void)doc->child_text("Code");
  }
  return 0;
}
