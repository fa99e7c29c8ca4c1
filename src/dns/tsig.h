// SPDX-License-Identifier: Apache-2.0
// TSIG (RFC 8945, HMAC-SHA256 only): the keys that may sign dynamic updates, kept sealed in
// the metadata store (objects, kind "tsig"), and the wire-level signing and verification
// of messages. The key set is read on the DNS threads through an immutable snapshot; writers
// (the API, rare) are serialised by a mutex and block on the store.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dns/message.h"

namespace berth {
class SecretBox;
}  // namespace berth
namespace berth::store {
class MetadataStore;
}  // namespace berth::store

namespace berth::dns {

inline constexpr std::string_view kTsigAlgorithm = "hmac-sha256";
inline constexpr size_t kTsigMacBytes = 32;     // HMAC-SHA256
inline constexpr size_t kTsigMinMacBytes = 16;  // RFC 8945 §5.2.2.1: half the hash, ≥ 10
inline constexpr uint16_t kTsigFudge = 300;
inline constexpr size_t kTsigSecretBytes = 32;  // what `create` generates
namespace rcode {
inline constexpr int BADTRUNC = 22;
}

/// A TSIG key and what it may change. Names are API form: lower-case, no trailing dot.
struct TsigKey {
  std::string name;  // "acme-key" or "acme.example.com": a domain name
  std::string algorithm = std::string(kTsigAlgorithm);
  std::string secret;              // raw bytes (base64 only at the edges)
  std::vector<std::string> zones;  // zones it may update; empty: every zone
  std::vector<std::string> names;  // globs on full names ("_acme-challenge.*"); empty: any
  int64_t created_at = 0;

  /// True when the key may update `zone` (API form).
  bool allows_zone(std::string_view zone) const;
  /// True when `full_name` (API form) matches one of `names` ('*' any run, '?' one character;
  /// case-insensitive), or names is empty.
  bool allows_name(std::string_view full_name) const;
};

/// '*' matches any run of characters (dots included), '?' one; ASCII case-insensitive.
bool glob_match(std::string_view pattern, std::string_view text);

/// Checks and normalises a key's name, zones and globs (lower-cased, trailing dots dropped).
/// InvalidArgument naming the field.
Status normalize_tsig_key(TsigKey& key);

/// The TSIG keys. Thread-safe: find() is lock-free (snapshot); create/remove/load block on
/// the store (call them from the blocking pool).
class TsigKeyring {
 public:
  TsigKeyring(store::MetadataStore& store, std::shared_ptr<const SecretBox> box);
  ~TsigKeyring();

  /// Reads every key from the store. A key whose secret cannot be opened (another
  /// secrets.key) is skipped with an error in the log.
  Status load();
  /// Stores a new key; an empty secret gets 32 random bytes. Returns it with the secret.
  /// AlreadyExists, InvalidArgument.
  Result<TsigKey> create(TsigKey key);
  /// Every key, by name (with secrets: callers must not show them).
  std::vector<TsigKey> list() const;
  /// NotFound when absent.
  Status remove(std::string_view name);
  /// The key with this name (API form, any case), or nullopt.
  std::optional<TsigKey> find(std::string_view name) const;

 private:
  using Map = std::map<std::string, TsigKey>;
  store::MetadataStore& store_;
  std::shared_ptr<const SecretBox> box_;
  std::mutex mu_;                    // serialises writers
  std::shared_ptr<const Map> keys_;  // atomic_load / atomic_store
};

// ---- Wire (RFC 8945 §4) ---------------------------------------------------------------------

struct TsigRecord {
  std::string key_name;      // wire form, lower-cased
  std::string algorithm;     // wire form, lower-cased
  uint64_t time_signed = 0;  // 48 bits
  uint16_t fudge = kTsigFudge;
  std::string mac;
  uint16_t original_id = 0;
  uint16_t error = 0;
  std::string other;
};

/// Parses a TSIG RR's rdata. InvalidArgument when malformed.
Result<TsigRecord> parse_tsig_rdata(std::string_view rdata);

/// What verifying a signed message found.
struct TsigCheck {
  /// 0: verified. rcode::BADKEY / BADSIG / BADTIME / BADTRUNC: the TSIG error to answer
  /// with (header rcode NOTAUTH); rcode::FORMERR: the TSIG record is malformed.
  int error = 0;
  std::optional<TsigKey> key;  // set when the key was found
  TsigRecord record;           // the message's TSIG (valid unless error is FORMERR)
};

/// Verifies the TSIG that ends `packet` (m.tsig_offset set, m parsed from packet). `lookup`
/// finds keys by API name. `request_mac` is empty for a request, the request's MAC when
/// verifying a response (RFC 8945 §4.3.1). `now`: seconds since the epoch.
TsigCheck tsig_verify(std::span<const uint8_t> packet, const Message& m,
                      const std::function<std::optional<TsigKey>(std::string_view)>& lookup,
                      uint64_t now, std::string_view request_mac = {});

/// Appends a TSIG record to a complete message (ARCOUNT bumped). `request_mac` empty: the
/// message is a request; otherwise a response to a request with that MAC. `sign` false: an
/// unsigned error TSIG (empty MAC, for BADKEY/BADSIG). Returns the MAC written.
std::string tsig_append(std::string& message, const TsigKey& key, std::string_view key_wire,
                        uint64_t time_signed, uint16_t error, std::string_view request_mac,
                        bool sign = true, std::string_view other = {});

/// HMAC-SHA256 of data under key (32 bytes).
std::string hmac_sha256(std::string_view key, std::string_view data);

}  // namespace berth::dns
