// SPDX-License-Identifier: Apache-2.0
// Enforcement: the in-memory policy snapshot (PolicyAuthorizer) and ES256 tokens.
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <unordered_map>

#include "common/fs.h"
#include "common/sha256.h"
#include "common/url.h"
#include "iam/iam.h"

namespace berth::iam {

// ---- PolicyAuthorizer --------------------------------------------------------------------------

struct PolicyAuthorizer::Snapshot {
  std::map<std::string, std::vector<Policy>> identity;  // "user/ci" -> policies
  std::map<std::string, Policy> repositories;           // "web/app" -> resource policy
  std::map<std::string, store::AccessKey> keys;         // key id -> key
};

PolicyAuthorizer::PolicyAuthorizer(store::MetadataStore& store)
    : store_(store), snap_(std::make_shared<const Snapshot>()) {}

PolicyAuthorizer::~PolicyAuthorizer() = default;

std::shared_ptr<const PolicyAuthorizer::Snapshot> PolicyAuthorizer::snapshot() const {
  std::lock_guard lock(mu_);
  return snap_;
}

Status PolicyAuthorizer::reload() {
  auto snap = std::make_shared<Snapshot>();
  BERTH_ASSIGN_OR_RETURN(auto policies, store_.list_policies("", ""));
  for (const auto& a : policies) {
    auto p = parse_policy(a.document, a.name, false);
    if (p) {  // documents are validated on the way in; skip (never crash on) a bad one
      snap->identity[a.kind + "/" + a.principal].push_back(std::move(*p));
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto users, store_.list_principals("user"));
  for (const auto& u : users) {
    BERTH_ASSIGN_OR_RETURN(auto keys, store_.list_keys(u.name));
    for (auto& k : keys) {
      snap->keys[k.id] = k;
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto repos, store_.list_repositories("", -1));
  for (const auto& r : repos) {
    auto doc = store_.get_repository_policy(r.name);
    if (doc && !doc->empty()) {
      auto p = parse_policy(*doc, "repository/" + r.name, true);
      if (p) {
        snap->repositories[r.name] = std::move(*p);
      }
    }
  }
  std::lock_guard lock(mu_);
  snap_ = std::move(snap);
  return ok();
}

Decision PolicyAuthorizer::decide(const Request& req) const {
  auto snap = snapshot();
  static const std::vector<Policy> kNone;
  auto it = snap->identity.find(req.principal);
  const std::vector<Policy>& identity = it == snap->identity.end() ? kNone : it->second;
  const Policy* resource = nullptr;
  const std::string prefix = "repository/";
  if (req.resource.rfind(prefix, 0) == 0) {
    auto r = snap->repositories.find(req.resource.substr(prefix.size()));
    if (r != snap->repositories.end()) {
      resource = &r->second;
    }
  }
  return evaluate(identity, resource, req);
}

Status PolicyAuthorizer::authorize(const Request& req) const {
  if (!decide(req).allowed) {
    return Error(Errc::PermissionDenied, denial_message(req));
  }
  return ok();
}

Result<std::string> PolicyAuthorizer::authenticate(const std::string& key_id,
                                                   const std::string& secret) const {
  auto snap = snapshot();
  auto it = snap->keys.find(key_id);
  std::string want = it == snap->keys.end() ? std::string(64, '0') : it->second.secret_hash;
  std::string got = hash_secret(secret);
  bool match = want.size() == got.size() &&
               CRYPTO_memcmp(want.data(), got.data(), want.size()) == 0 && it != snap->keys.end();
  if (!match || !it->second.active) {
    return Error(Errc::Unauthenticated, "invalid or inactive access key");
  }
  return "user/" + it->second.user;
}

bool PolicyAuthorizer::key_active(const std::string& key_id) const {
  auto snap = snapshot();
  auto it = snap->keys.find(key_id);
  return it != snap->keys.end() && it->second.active;
}

// ---- TokenSigner -------------------------------------------------------------------------------

struct TokenSigner::Key {
  EVP_PKEY* pkey = nullptr;
  std::string kid;
  // Tokens whose signature checked, with their payloads. A client sends the same token with
  // every request until it expires, and an ECDSA verification costs more than the rest of a
  // blob HEAD. Same bytes, same verdict, so the cache cannot change an answer; expiry stays
  // the caller's check. Bounded: emptied when full.
  static constexpr size_t kMaxVerified = 1024;
  std::mutex mu;
  std::unordered_map<std::string, std::string> verified;
  ~Key() { EVP_PKEY_free(pkey); }
};

TokenSigner::~TokenSigner() = default;

Result<std::shared_ptr<TokenSigner>> TokenSigner::load_or_create(const std::string& path) {
  std::shared_ptr<TokenSigner> t(new TokenSigner());
  t->key_ = std::make_unique<Key>();
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    t->key_->pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (t->key_->pkey == nullptr) {
      return Error(Errc::DataLoss, "token signing key " + path + " is unreadable");
    }
  } else {
    t->key_->pkey = EVP_EC_gen("P-256");
    if (t->key_->pkey == nullptr) {
      return Error(Errc::Internal, "could not generate a P-256 token signing key");
    }
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, t->key_->pkey, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(len));
    BIO_free(bio);
    BERTH_TRY(fs::write_atomic(path, pem, 0600));
    ::chmod(path.c_str(), 0600);
  }
  // A key id from the public key, so a rotated key is recognisable in tokens.
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(t->key_->pkey, &der);
  t->key_->kid = Sha256::hex_of(std::string(reinterpret_cast<char*>(der), static_cast<size_t>(n)))
                     .substr(0, 16);
  OPENSSL_free(der);
  return t;
}

std::string TokenSigner::sign(const std::string& payload_json) const {
  std::string header = R"({"alg":"ES256","typ":"JWT","kid":")" + key_->kid + "\"}";
  std::string input = b64::url_encode(header) + "." + b64::url_encode(payload_json);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t siglen = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey);
  EVP_DigestSign(ctx, nullptr, &siglen, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string der(siglen, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &siglen,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  // JWS wants the raw r||s (32 bytes each), not DER.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(siglen));
  unsigned char raw[64] = {0};
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
  ECDSA_SIG_free(sig);
  return input + "." + b64::url_encode(std::string_view(reinterpret_cast<char*>(raw), 64));
}

Result<std::string> TokenSigner::verify(const std::string& token) const {
  {
    std::lock_guard lock(key_->mu);
    if (auto it = key_->verified.find(token); it != key_->verified.end()) {
      return it->second;
    }
  }
  auto bad = [] { return Error(Errc::Unauthenticated, "invalid token"); };
  auto d1 = token.find('.');
  auto d2 = d1 == std::string::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string::npos || token.find('.', d2 + 1) != std::string::npos) {
    return bad();
  }
  auto header = b64::url_decode(std::string_view(token).substr(0, d1));
  auto payload = b64::url_decode(std::string_view(token).substr(d1 + 1, d2 - d1 - 1));
  auto raw = b64::url_decode(std::string_view(token).substr(d2 + 1));
  if (!header || !payload || !raw || raw->size() != 64 ||
      header->find("\"ES256\"") == std::string::npos) {
    return bad();
  }
  ECDSA_SIG* sig = ECDSA_SIG_new();
  const auto* r = reinterpret_cast<const unsigned char*>(raw->data());
  ECDSA_SIG_set0(sig, BN_bin2bn(r, 32, nullptr), BN_bin2bn(r + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int derlen = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  std::string input = token.substr(0, d2);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey);
  int ok_sig = EVP_DigestVerify(ctx, der, static_cast<size_t>(derlen),
                                reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  if (ok_sig != 1) {
    return bad();
  }
  std::lock_guard lock(key_->mu);
  if (key_->verified.size() >= Key::kMaxVerified) {
    key_->verified.clear();
  }
  key_->verified.emplace(token, *payload);
  return *payload;
}

}  // namespace berth::iam
