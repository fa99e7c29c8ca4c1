// SPDX-License-Identifier: Apache-2.0
// SigV4 query-string signing for presigned GET URLs (AWS "Authenticating Requests: Using Query
// Parameters"). Requests themselves are signed by libcurl; a URL handed to someone else must
// carry its signature in the query, which libcurl does not do. Also header signing for the
// requests libcurl 7.88 signs wrong (s3_sigv4.h).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

#include "common/sha256.h"
#include "storage/s3.h"
#include "storage/s3_sigv4.h"

namespace berth::storage {

namespace {

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// "20130524T000000Z" (SigV4's X-Amz-Date); its first 8 characters are the scope's date.
std::string amz_date(int64_t unix_time) {
  std::time_t t = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// The signing key of a date's scope.
std::string signing_key(const S3Options& o, const std::string& date) {
  std::string k = hmac("AWS4" + o.secret_access_key, date);
  k = hmac(k, o.region);
  k = hmac(k, "s3");
  return hmac(k, "aws4_request");
}

}  // namespace

namespace detail {

std::string sigv4_date(int64_t unix_time) { return amz_date(unix_time); }

std::string sigv4_authorization(const S3Options& o, const std::string& method,
                                const std::string& path, const std::string& query,
                                std::vector<std::pair<std::string, std::string>> headers,
                                const std::string& payload_hash, const std::string& amz_date) {
  // By name alone: the point of signing here (s3_sigv4.h).
  std::sort(headers.begin(), headers.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  std::string date = amz_date.substr(0, 8);
  std::string scope = date + "/" + o.region + "/s3/aws4_request";
  std::string canonical = method + "\n" + path + "\n" + query + "\n" + canonical_headers + "\n" +
                          signed_headers + "\n" + payload_hash;
  std::string to_sign =
      "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + Sha256::hex_of(canonical);
  return "AWS4-HMAC-SHA256 Credential=" + o.access_key_id + "/" + scope +
         ", SignedHeaders=" + signed_headers +
         ", Signature=" + hex(hmac(signing_key(o, date), to_sign));
}

}  // namespace detail

std::string s3_uri_encode(std::string_view in, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string S3Client::presign_get(const std::string& key, std::chrono::seconds expires,
                                  int64_t now_unix) const {
  const int64_t kMaxExpires = 7 * 24 * 3600;  // SigV4's limit
  int64_t secs = std::clamp<int64_t>(expires.count(), 1, kMaxExpires);
  std::string stamp = amz_date(now_unix);
  std::string date = stamp.substr(0, 8);
  std::string scope = date + "/" + opts_.region + "/s3/aws4_request";
  std::string url = url_for(key);
  // The path as sent, already encoded by url_for(): everything after the authority.
  auto authority_end = url.find('/', url.find("://") + 3);
  std::string path = authority_end == std::string::npos ? "/" : url.substr(authority_end);
  // Already in the byte order SigV4 asks for.
  std::string query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
                      s3_uri_encode(opts_.access_key_id + "/" + scope, false) +
                      "&X-Amz-Date=" + stamp + "&X-Amz-Expires=" + std::to_string(secs) +
                      "&X-Amz-SignedHeaders=host";
  std::string canonical =
      "GET\n" + path + "\n" + query + "\nhost:" + host() + "\n\nhost\nUNSIGNED-PAYLOAD";
  std::string to_sign =
      "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + Sha256::hex_of(canonical);
  return url + "?" + query + "&X-Amz-Signature=" + hex(hmac(signing_key(opts_, date), to_sign));
}

}  // namespace berth::storage
