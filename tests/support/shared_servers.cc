// SPDX-License-Identifier: Apache-2.0
#include "support/shared_servers.h"

#include <cstdlib>
#include <sstream>

#include "support/harness.h"

namespace berth::test {

namespace {

struct Parsed {
  std::optional<SharedRgw> rgw;
  std::optional<SharedPostgres> pg;
};

const Parsed& parsed() {
  static const Parsed p = [] {
    Parsed out;
    const char* file = std::getenv("BERTH_TEST_SERVERS");
    if (file == nullptr || *file == '\0') {
      return out;
    }
    std::istringstream in(read_file(file));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string kind;
      fields >> kind;
      if (kind == "rgw") {
        SharedRgw r;
        fields >> r.port >> r.access_key >> r.secret_key >> r.region;
        std::getline(fields >> std::ws, r.dir);
        if (r.port != 0 && !r.dir.empty()) {
          out.rgw = r;
        }
      } else if (kind == "postgres") {
        SharedPostgres pg;
        fields >> pg.port;
        std::getline(fields >> std::ws, pg.bin);
        if (pg.port != 0 && !pg.bin.empty()) {
          out.pg = pg;
        }
      }
    }
    return out;
  }();
  return p;
}

}  // namespace

const std::optional<SharedRgw>& shared_rgw() { return parsed().rgw; }
const std::optional<SharedPostgres>& shared_postgres() { return parsed().pg; }

std::string format_servers_line(const SharedRgw& r) {
  return "rgw " + std::to_string(r.port) + " " + r.access_key + " " + r.secret_key + " " +
         r.region + " " + r.dir + "\n";
}

std::string format_servers_line(const SharedPostgres& p) {
  return "postgres " + std::to_string(p.port) + " " + p.bin + "\n";
}

}  // namespace berth::test
