// SPDX-License-Identifier: Apache-2.0
// TSIG keys (sealed in the store, published as a snapshot) and RFC 8945 message signing:
// the MAC covers the message without its TSIG (ARCOUNT one less, the original ID), then the
// TSIG variables (key name, class, TTL, algorithm, time, fudge, error, other data); a
// response's MAC also covers the request's MAC first.
#include "dns/tsig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/ascii.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secret_box.h"
#include "common/url.h"
#include "dns/dns.h"
#include "dns/name.h"
#include "dns/rdata.h"
#include "store/store.h"

namespace berth::dns {

using ascii::lower;

namespace {

constexpr const char* kKind = "tsig";

char lower_char(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

void put48(std::string& out, uint64_t v) {
  for (int shift = 40; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
}

uint64_t get(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  }
  return v;
}

// The TSIG variables (RFC 8945 §4.3.3) after the message in the digest.
std::string variables(std::string_view key_wire, std::string_view alg_wire, uint64_t time_signed,
                      uint16_t fudge, uint16_t error, std::string_view other) {
  std::string v;
  v += name_lower(key_wire);
  put16(v, kClassANY);
  v.append(4, '\0');  // TTL 0
  v += name_lower(alg_wire);
  put48(v, time_signed);
  put16(v, fudge);
  put16(v, error);
  put16(v, other.size());
  v += other;
  return v;
}

std::string algorithm_wire() { return *name_from_text(std::string(kTsigAlgorithm) + "."); }

Result<TsigKey> key_from_row(const store::ObjectRow& row, const SecretBox& box) {
  auto j = parse_json(row.document, "tsig key document");
  if (!j || !j->is_object()) {
    return Error(Errc::DataLoss, "tsig key " + row.name + ": stored document is not an object");
  }
  TsigKey k;
  k.name = row.name;
  k.created_at = row.created_at;
  try {
    k.algorithm = j->value("algorithm", std::string(kTsigAlgorithm));
    auto sealed = j->at("secret").get<std::string>();
    BERTH_ASSIGN_OR_RETURN(k.secret, box.open(sealed));
    k.zones = j->value("zones", std::vector<std::string>{});
    k.names = j->value("names", std::vector<std::string>{});
  } catch (const std::exception& e) {
    return Error(Errc::DataLoss, "tsig key " + row.name + ": stored document: " + e.what());
  }
  return k;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view t) {
  // Iterative matcher with one backtrack point: linear in practice, no recursion.
  size_t pi = 0;
  size_t ti = 0;
  size_t star = std::string_view::npos;
  size_t mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || lower_char(p[pi]) == lower_char(t[ti]))) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') {
    ++pi;
  }
  return pi == p.size();
}

bool TsigKey::allows_zone(std::string_view zone) const {
  return zones.empty() || std::find(zones.begin(), zones.end(), lower(zone)) != zones.end();
}

bool TsigKey::allows_name(std::string_view full_name) const {
  if (names.empty()) {
    return true;
  }
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& g) { return glob_match(g, full_name); });
}

Status normalize_tsig_key(TsigKey& key) {
  std::string name = lower(key.name);
  while (!name.empty() && name.back() == '.') {
    name.pop_back();
  }
  bool chars_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
  if (!chars_ok || !name_from_text(name + ".")) {
    return Error(Errc::InvalidArgument,
                 "key name '" + key.name +
                     "': use a domain name of letters, digits, '-', '_' and dots "
                     "(like acme-key or acme.example.com)");
  }
  key.name = name;
  if (lower(key.algorithm) != kTsigAlgorithm) {
    return Error(Errc::InvalidArgument,
                 "algorithm '" + key.algorithm + "': only hmac-sha256 is supported");
  }
  key.algorithm = std::string(kTsigAlgorithm);
  for (auto& z : key.zones) {
    auto n = normalize_zone_name(z);
    if (!n) {
      return Error(Errc::InvalidArgument, "zones: " + n.error().message());
    }
    z = *n;
  }
  for (auto& g : key.names) {
    std::string n = lower(g);
    while (!n.empty() && n.back() == '.') {
      n.pop_back();
    }
    bool ok = !n.empty() && n.size() <= 255 && std::all_of(n.begin(), n.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' ||
             c == '*' || c == '?';
    });
    if (!ok) {
      return Error(Errc::InvalidArgument,
                   "names: '" + g + "' is not a name glob (like _acme-challenge.*)");
    }
    g = n;
  }
  if (key.secret.size() > 512) {
    return Error(Errc::InvalidArgument, "secret: at most 512 bytes");
  }
  return ok();
}

// ---- TsigKeyring ----------------------------------------------------------------------------

TsigKeyring::TsigKeyring(store::MetadataStore& store, std::shared_ptr<const SecretBox> box)
    : store_(store), box_(std::move(box)), keys_(std::make_shared<const Map>()) {}

TsigKeyring::~TsigKeyring() = default;

Status TsigKeyring::load() {
  BERTH_ASSIGN_OR_RETURN(auto rows, store_.list_objects(kKind));
  auto next = std::make_shared<Map>();
  for (const auto& row : rows) {
    auto k = key_from_row(row, *box_);
    if (!k) {
      log::get("dns")->error("tsig key {} is not loaded: {}", row.name, k.error().message());
      continue;
    }
    (*next)[k->name] = std::move(*k);
  }
  std::lock_guard lock(mu_);
  std::atomic_store(&keys_, std::shared_ptr<const Map>(std::move(next)));
  log::get("dns")->info("tsig keys loaded count={}", rows.size());
  return ok();
}

Result<TsigKey> TsigKeyring::create(TsigKey key) {
  BERTH_TRY(normalize_tsig_key(key));
  if (key.secret.empty()) {
    key.secret.resize(kTsigSecretBytes);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.secret.data()),
                   static_cast<int>(key.secret.size())) != 1) {
      return Error(Errc::Internal, "tsig key: no random bytes");
    }
  } else if (key.secret.size() < kTsigMinMacBytes) {
    return Error(Errc::InvalidArgument, "secret: at least 16 bytes (give 32 random bytes)");
  }
  key.created_at = static_cast<int64_t>(std::time(nullptr));
  Json doc = {{"algorithm", key.algorithm},
              {"secret", box_->seal(key.secret)},
              {"zones", key.zones},
              {"names", key.names}};
  std::lock_guard lock(mu_);
  BERTH_TRY(store_.put_object(
      store::ObjectRow{kKind, key.name, doc.dump(), key.created_at, key.created_at}, true));
  auto next = std::make_shared<Map>(*std::atomic_load(&keys_));
  (*next)[key.name] = key;
  std::atomic_store(&keys_, std::shared_ptr<const Map>(std::move(next)));
  log::get("dns")->info("tsig key created name={} zones={} names={}", key.name, key.zones.size(),
                        key.names.size());
  return key;
}

std::vector<TsigKey> TsigKeyring::list() const {
  auto snap = std::atomic_load(&keys_);
  std::vector<TsigKey> out;
  for (const auto& [name, k] : *snap) {
    out.push_back(k);
  }
  return out;
}

Status TsigKeyring::remove(std::string_view name_in) {
  std::string name = lower(name_in);
  while (!name.empty() && name.back() == '.') {
    name.pop_back();
  }
  std::lock_guard lock(mu_);
  auto cur = std::atomic_load(&keys_);
  if (cur->count(name) == 0) {
    return Error(Errc::NotFound, "tsig key " + name + " does not exist");
  }
  BERTH_TRY(store_.delete_object(kKind, name));
  auto next = std::make_shared<Map>(*cur);
  next->erase(name);
  std::atomic_store(&keys_, std::shared_ptr<const Map>(std::move(next)));
  log::get("dns")->info("tsig key deleted name={}", name);
  return ok();
}

std::optional<TsigKey> TsigKeyring::find(std::string_view name) const {
  auto snap = std::atomic_load(&keys_);
  auto it = snap->find(lower(name));
  if (it == snap->end()) {
    return std::nullopt;
  }
  return it->second;
}

// ---- Wire -----------------------------------------------------------------------------------

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::string out(kTsigMacBytes, '\0');
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       reinterpret_cast<unsigned char*>(out.data()), &len);
  out.resize(len);
  return out;
}

Result<TsigRecord> parse_tsig_rdata(std::string_view rd) {
  auto bad = [](const char* what) {
    return Error(Errc::InvalidArgument, std::string("TSIG rdata: ") + what);
  };
  TsigRecord t;
  auto alg_len = name_check(rd);
  if (!alg_len) {
    return bad("bad algorithm name");
  }
  t.algorithm = name_lower(rd.substr(0, *alg_len));
  size_t at = *alg_len;
  if (rd.size() - at < 10) {
    return bad("truncated");
  }
  t.time_signed = get(rd, at, 6);
  t.fudge = static_cast<uint16_t>(get(rd, at + 6, 2));
  size_t mac_len = get(rd, at + 8, 2);
  at += 10;
  if (rd.size() - at < mac_len + 6) {
    return bad("truncated MAC");
  }
  t.mac = std::string(rd.substr(at, mac_len));
  at += mac_len;
  t.original_id = static_cast<uint16_t>(get(rd, at, 2));
  t.error = static_cast<uint16_t>(get(rd, at + 2, 2));
  size_t other_len = get(rd, at + 4, 2);
  at += 6;
  if (rd.size() - at != other_len) {
    return bad("wrong other data length");
  }
  t.other = std::string(rd.substr(at));
  return t;
}

TsigCheck tsig_verify(std::span<const uint8_t> packet, const Message& m,
                      const std::function<std::optional<TsigKey>(std::string_view)>& lookup,
                      uint64_t now, std::string_view request_mac) {
  TsigCheck c;
  if (!m.tsig_offset || m.additional.empty() || m.additional.back().type != type::TSIG ||
      *m.tsig_offset < kHeaderBytes || *m.tsig_offset > packet.size()) {
    c.error = rcode::FORMERR;
    return c;
  }
  const ResourceRecord& rr = m.additional.back();
  auto rec = parse_tsig_rdata(rr.rdata);
  if (!rec || rr.klass != kClassANY || rr.ttl != 0) {
    c.error = rcode::FORMERR;
    return c;
  }
  c.record = std::move(*rec);
  c.record.key_name = name_lower(rr.name);
  // Unknown key, or a known key under another algorithm: BADKEY (RFC 8945 §5.2.1).
  auto key = lookup(name_to_api(c.record.key_name));
  if (!key || c.record.algorithm != algorithm_wire()) {
    c.error = rcode::BADKEY;
    return c;
  }
  c.key = std::move(key);
  const std::string& mac = c.record.mac;
  // A MAC longer than the hash or shorter than max(10, half of it) is malformed (§5.2.2.1).
  if (mac.size() > kTsigMacBytes || mac.size() < kTsigMinMacBytes) {
    c.error = rcode::FORMERR;
    return c;
  }
  // The message as signed: without its TSIG, ARCOUNT one less, the original ID.
  std::string digest;
  if (!request_mac.empty()) {
    put16(digest, request_mac.size());
    digest += request_mac;
  }
  size_t body_at = digest.size();
  digest.append(reinterpret_cast<const char*>(packet.data()), *m.tsig_offset);
  digest[body_at] = static_cast<char>(c.record.original_id >> 8);
  digest[body_at + 1] = static_cast<char>(c.record.original_id & 0xFF);
  uint16_t ar = static_cast<uint16_t>(get(digest, body_at + 10, 2) - 1);
  digest[body_at + 10] = static_cast<char>(ar >> 8);
  digest[body_at + 11] = static_cast<char>(ar & 0xFF);
  digest += variables(rr.name, c.record.algorithm, c.record.time_signed, c.record.fudge,
                      c.record.error, c.record.other);
  std::string want = hmac_sha256(c.key->secret, digest);
  if (CRYPTO_memcmp(want.data(), mac.data(), mac.size()) != 0) {
    c.error = rcode::BADSIG;
    return c;
  }
  uint64_t skew =
      now > c.record.time_signed ? now - c.record.time_signed : c.record.time_signed - now;
  if (skew > c.record.fudge) {
    c.error = rcode::BADTIME;
    return c;
  }
  if (mac.size() < kTsigMacBytes) {  // truncated MACs are allowed by the RFC, not by berth
    c.error = rcode::BADTRUNC;
    return c;
  }
  return c;
}

std::string tsig_append(std::string& message, const TsigKey& key, std::string_view key_wire,
                        uint64_t time_signed, uint16_t error, std::string_view request_mac,
                        bool sign, std::string_view other) {
  if (message.size() < kHeaderBytes) {
    return {};
  }
  const std::string alg = algorithm_wire();
  const std::string owner = name_lower(key_wire);
  uint16_t id = static_cast<uint16_t>(get(message, 0, 2));
  std::string mac;
  if (sign) {
    std::string digest;
    if (!request_mac.empty()) {
      put16(digest, request_mac.size());
      digest += request_mac;
    }
    digest += message;
    digest += variables(owner, alg, time_signed, kTsigFudge, error, other);
    mac = hmac_sha256(key.secret, digest);
  }
  std::string rd = alg;
  put48(rd, time_signed);
  put16(rd, kTsigFudge);
  put16(rd, mac.size());
  rd += mac;
  put16(rd, id);
  put16(rd, error);
  put16(rd, other.size());
  rd += other;
  message += owner;
  put16(message, type::TSIG);
  put16(message, kClassANY);
  message.append(4, '\0');
  put16(message, rd.size());
  message += rd;
  uint16_t ar = static_cast<uint16_t>(get(message, 10, 2) + 1);
  message[10] = static_cast<char>(ar >> 8);
  message[11] = static_cast<char>(ar & 0xFF);
  return mac;
}

}  // namespace berth::dns
