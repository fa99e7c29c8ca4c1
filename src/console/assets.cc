// SPDX-License-Identifier: Apache-2.0
// Serving the console's files: embedded, or from BERTH_CONSOLE_DIR while working on them.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "common/sha256.h"
#include "console/console.h"
#include "console/embedded.h"

namespace berth::console {

namespace {

struct Asset {
  std::string_view data;
  std::string etag;
};

std::string_view content_type(std::string_view path) {
  auto ends = [&](std::string_view s) {
    return path.size() >= s.size() && path.substr(path.size() - s.size()) == s;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  if (ends(".ico")) return "image/x-icon";
  return "application/octet-stream";
}

std::string quoted_etag(std::string_view data) {
  std::string tag(1, '"');
  tag.append(Sha256::hex_of(data), 0, 20);
  tag.push_back('"');
  return tag;
}

// The embedded files by path, with their ETags (hashed once).
const std::unordered_map<std::string_view, Asset>& embedded_assets() {
  static const auto* table = [] {
    auto* m = new std::unordered_map<std::string_view, Asset>();
    for (size_t i = 0; i < embedded::kFileCount; ++i) {
      const auto& f = embedded::kFiles[i];
      std::string_view data(reinterpret_cast<const char*>(f.data), f.size);
      (*m)[f.path] = Asset{data, quoted_etag(data)};
    }
    return m;
  }();
  return *table;
}

// A relative path of the console: no empty, "." or ".." segments, no backslashes.
bool safe_relative(std::string_view rel) {
  if (rel.empty() || rel.find('\\') != std::string_view::npos ||
      rel.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t pos = 0;
  while (pos <= rel.size()) {
    size_t end = rel.find('/', pos);
    if (end == std::string_view::npos) {
      end = rel.size();
    }
    std::string_view seg = rel.substr(pos, end - pos);
    if (seg.empty() || seg == "." || seg == "..") {
      return false;
    }
    pos = end + 1;
  }
  return true;
}

std::optional<std::string> read_dev_file(const std::string& dir, std::string_view rel) {
  std::string file = dir;
  file.push_back('/');
  file.append(rel);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void security_headers(http::Response& r) {
  r.header("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.header("X-Content-Type-Options", "nosniff");
  r.header("X-Frame-Options", "DENY");
  r.header("Referrer-Policy", "no-referrer");
}

}  // namespace

http::Response serve(const std::string& path, bhttp::verb method,
                     const std::string& if_none_match) {
  http::Response r;
  security_headers(r);
  if (method != bhttp::verb::get && method != bhttp::verb::head) {
    r.status = 405;
    r.header("Allow", "GET, HEAD");
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.body = "the console's files are read with GET\n";
    return r;
  }
  const std::string prefix = "/console/";
  std::string rel = path.size() > prefix.size() ? path.substr(prefix.size()) : "index.html";
  if (!rel.empty() && rel.back() == '/') {
    rel += "index.html";
  }
  // A path that does not end in a file type of the console's is one of its pages (which may
  // name a zone, "dns/example.com"): the browser routes it, from index.html.
  if (content_type(rel) == "application/octet-stream") {
    rel = "index.html";
  }

  std::string owned;  // the file's bytes when read from BERTH_CONSOLE_DIR
  std::string_view data;
  std::string etag;
  bool found = false;
  if (const char* dir = std::getenv("BERTH_CONSOLE_DIR"); dir != nullptr && *dir != '\0') {
    if (safe_relative(rel)) {
      if (auto f = read_dev_file(dir, rel)) {
        owned = std::move(*f);
        data = owned;
        etag = quoted_etag(data);
        found = true;
      }
    }
  } else {
    const auto& table = embedded_assets();
    auto it = table.find(rel);
    if (it != table.end()) {
      data = it->second.data;
      etag = it->second.etag;
      found = true;
    }
  }
  if (!found) {
    r.status = 404;
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.body = "the console has no file " + path + "\n";
    return r;
  }
  r.header("ETag", etag);
  // Revalidated on every load (cheap: 304), so a new berthd's console is never mixed with an
  // old one's cached modules.
  r.header("Cache-Control", "no-cache");
  if (!if_none_match.empty() && if_none_match == etag) {
    r.status = 304;
    return r;
  }
  r.header("Content-Type", std::string(content_type(rel)));
  if (method == bhttp::verb::head) {
    r.head_only = true;
    r.content_length = data.size();
    return r;
  }
  r.body.assign(data);
  return r;
}

}  // namespace berth::console
