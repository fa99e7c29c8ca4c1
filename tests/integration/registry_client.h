// SPDX-License-Identifier: Apache-2.0
// A tiny blocking HTTP/1.1 client for the registry integration tests (one connection per
// request, Connection: close), plus helpers that push blobs and manifests and build manifest
// JSON. Raw sockets rather than curl so tests control every header and byte, including bodies
// cut short on purpose.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/sha256.h"
#include "support/harness.h"

namespace berth::test {

/// Appends ?digest= (or &digest=) to an upload Location.
inline std::string with_digest(const std::string& location, const std::string& digest) {
  return location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + digest;
}

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;                              // 0: no response (connection failed or closed early)
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;

  std::string header(const std::string& name) const {
    std::string k = name;
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
  bool has_header(const std::string& name) const {
    std::string k = name;
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
    return headers.count(k) > 0;
  }
  /// errors[0].code of an OCI error body, "" when the body is not one.
  std::string oci_code() const {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array() ||
        j["errors"].empty()) {
      return "";
    }
    return j["errors"][0].value("code", "");
  }
  std::string oci_message() const {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array() ||
        j["errors"].empty()) {
      return "";
    }
    return j["errors"][0].value("message", "");
  }
  Json json() const { return Json::parse(body, nullptr, false); }
  std::string describe() const {
    std::string s = "HTTP " + std::to_string(status) + "\n";
    for (const auto& [k, v] : headers) {
      s += k + ": " + v + "\n";
    }
    return s + "\n" + body.substr(0, 2000);
  }
};

inline std::string sha256_digest(const std::string& bytes) {
  return "sha256:" + Sha256::hex_of(bytes);
}

class RegistryClient {
 public:
  /// authorization: the Authorization header sent with every request that does not set its
  /// own (e.g. admin().basic_header()); "" sends none (anonymous).
  explicit RegistryClient(uint16_t port, std::string authorization = "")
      : port_(port), authorization_(std::move(authorization)) {}

  /// The same server without credentials.
  RegistryClient anonymous() const { return RegistryClient(port_); }

  /// Sends one request. If declared_length is set, it is sent as Content-Length whatever the
  /// body's size, and the write side is shut down after the body (a client that lies and
  /// goes away); the response, if any, is still read.
  HttpResponse request(const std::string& method, const std::string& target,
                       const std::string& body = "", const Headers& headers = {},
                       std::optional<uint64_t> declared_length = std::nullopt) const {
    HttpResponse res;
    int fd = test::connect_loopback(port_, std::chrono::seconds(30));
    if (fd < 0) {
      return res;
    }
    std::string req = method + " " + target +
                      " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                      "\r\nConnection: close\r\n";
    bool has_cl = false, has_auth = false;
    for (const auto& [k, v] : headers) {
      req += k + ": " + v + "\r\n";
      std::string lk = k;
      std::transform(lk.begin(), lk.end(), lk.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      has_cl = has_cl || lk == "content-length";
      has_auth = has_auth || lk == "authorization";
    }
    if (!has_auth && !authorization_.empty()) {
      req += "Authorization: " + authorization_ + "\r\n";
    }
    if (declared_length) {
      req += "Content-Length: " + std::to_string(*declared_length) + "\r\n";
    } else if (!has_cl &&
               (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")) {
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "\r\n";
    req += body;
    // A server may answer (and close) before reading the whole body: stop sending then.
    send_all(fd, req);
    if (declared_length) {
      ::shutdown(fd, SHUT_WR);
    }
    std::string raw;
    char buf[65536];
    while (true) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) {
        continue;  // a signal, not the end of the response
      }
      if (n <= 0) {
        break;
      }
      raw.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    parse(raw, method == "HEAD", res);
    return res;
  }

  HttpResponse get(const std::string& target, const Headers& h = {}) const {
    return request("GET", target, "", h);
  }
  HttpResponse head(const std::string& target, const Headers& h = {}) const {
    return request("HEAD", target, "", h);
  }
  HttpResponse del(const std::string& target) const { return request("DELETE", target); }

  /// Monolithic upload; returns the response (201 expected).
  HttpResponse push_blob(const std::string& repo, const std::string& content) const {
    return request("POST", "/v2/" + repo + "/blobs/uploads/?digest=" + sha256_digest(content),
                   content, {{"Content-Type", "application/octet-stream"}});
  }

  HttpResponse put_manifest(const std::string& repo, const std::string& ref,
                            const std::string& body, const std::string& media_type) const {
    return request("PUT", "/v2/" + repo + "/manifests/" + ref, body,
                   {{"Content-Type", media_type}});
  }

 private:
  static bool send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      pollfd p{fd, POLLOUT | POLLIN, 0};
      int ready = ::poll(&p, 1, 30000);
      if (ready < 0 && errno == EINTR) {
        continue;
      }
      if (ready <= 0 || (p.revents & (POLLIN | POLLERR | POLLHUP))) {
        return false;
      }
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        continue;
      }
      if (n <= 0) {
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }

  static void parse(const std::string& raw, bool head, HttpResponse& res) {
    size_t pos = 0;
    // Skip interim 1xx responses.
    while (true) {
      size_t end = raw.find("\r\n\r\n", pos);
      if (end == std::string::npos || raw.compare(pos, 5, "HTTP/") != 0) {
        return;
      }
      size_t sp = raw.find(' ', pos);
      int status = std::atoi(raw.c_str() + sp + 1);
      if (status >= 100 && status < 200) {
        pos = end + 4;
        continue;
      }
      res.status = status;
      size_t line = raw.find("\r\n", pos) + 2;
      while (line < end) {
        size_t eol = raw.find("\r\n", line);
        std::string h = raw.substr(line, eol - line);
        size_t colon = h.find(':');
        if (colon != std::string::npos) {
          std::string k = h.substr(0, colon);
          std::transform(k.begin(), k.end(), k.begin(),
                         [](unsigned char c) { return std::tolower(c); });
          std::string v = h.substr(colon + 1);
          v.erase(0, v.find_first_not_of(" \t"));
          v.erase(v.find_last_not_of(" \t") + 1);
          res.headers[k] = v;
        }
        line = eol + 2;
      }
      pos = end + 4;
      break;
    }
    if (head || res.status == 204 || res.status == 304) {
      return;
    }
    auto te = res.headers.find("transfer-encoding");
    if (te != res.headers.end() && te->second.find("chunked") != std::string::npos) {
      while (pos < raw.size()) {
        size_t eol = raw.find("\r\n", pos);
        if (eol == std::string::npos) {
          break;
        }
        size_t n = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
        if (n == 0) {
          break;
        }
        res.body += raw.substr(eol + 2, n);
        pos = eol + 2 + n + 2;
      }
      return;
    }
    auto cl = res.headers.find("content-length");
    if (cl != res.headers.end()) {
      res.body = raw.substr(pos, std::stoul(cl->second));
    } else {
      res.body = raw.substr(pos);
    }
  }

  uint16_t port_;
  std::string authorization_;
};

inline constexpr const char* kOciManifestType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kOciIndexType = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kDockerManifestType =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kOciConfigType = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kOciLayerType = "application/vnd.oci.image.layer.v1.tar+gzip";

inline Json descriptor(const std::string& media_type, const std::string& content) {
  Json d = Json::object();
  d["mediaType"] = media_type;
  d["digest"] = sha256_digest(content);
  d["size"] = content.size();
  return d;
}

/// An image config for os/arch; `salt` makes distinct configs.
inline std::string image_config(const std::string& arch = "amd64", const std::string& salt = "") {
  Json c = Json::object();
  c["architecture"] = arch;
  c["os"] = "linux";
  c["rootfs"] = Json{{"type", "layers"}, {"diff_ids", Json::array()}};
  if (!salt.empty()) {
    c["config"] = Json{{"Labels", Json{{"salt", salt}}}};
  }
  return c.dump();
}

/// An image manifest (OCI or Docker media type) over a config and layers.
inline std::string image_manifest(const std::string& config, const std::vector<std::string>& layers,
                                  const std::string& media_type = kOciManifestType) {
  bool docker = media_type == kDockerManifestType;
  Json m = Json::object();
  m["schemaVersion"] = 2;
  m["mediaType"] = media_type;
  m["config"] = descriptor(
      docker ? "application/vnd.docker.container.image.v1+json" : kOciConfigType, config);
  Json ls = Json::array();
  for (const auto& l : layers) {
    ls.push_back(descriptor(
        docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : kOciLayerType, l));
  }
  m["layers"] = ls;
  return m.dump();
}

/// Pushes config + layers as blobs, then the OCI manifest under ref. Returns the manifest
/// body; fails the current test on any error.
inline std::string push_image(const RegistryClient& c, const std::string& repo,
                              const std::string& ref, const std::string& config,
                              const std::vector<std::string>& layers) {
  auto r = c.push_blob(repo, config);
  EXPECT_EQ(r.status, 201) << r.describe();
  for (const auto& l : layers) {
    r = c.push_blob(repo, l);
    EXPECT_EQ(r.status, 201) << r.describe();
  }
  std::string m = image_manifest(config, layers);
  r = c.put_manifest(repo, ref, m, kOciManifestType);
  EXPECT_EQ(r.status, 201) << r.describe();
  return m;
}

}  // namespace berth::test
