// SPDX-License-Identifier: Apache-2.0
// OCSP stapling for the certificates berth serves: when the issuer offers OCSP (the leaf names
// a responder), the worker asks it for the certificate's status, keeps the signed answer and
// hands it to the router, which staples it to every TLS handshake that asks (RFC 6066), so
// clients need not ask the CA themselves. Fetched again at half its validity; a failure keeps
// the answer it has until that expires and is retried with back-off. berth's own CA offers no
// OCSP, so its certificates staple nothing.
#include <algorithm>

#include "domains/internal.h"

namespace berth::domains {

namespace {

constexpr int64_t kRetryAfterFailure = 300;     // seconds
constexpr int64_t kRefreshWithoutNext = 43200;  // a response without nextUpdate: every 12 h
constexpr std::chrono::seconds kFetchTimeout{10};

bool current(const certs::OcspStaple& o, int64_t now) {
  return !o.der.empty() && (o.next_update == 0 || now < o.next_update);
}

// When a response should be replaced: half-way through its validity.
int64_t refresh_at(const certs::OcspStaple& o) {
  if (o.next_update == 0) {
    return o.this_update + kRefreshWithoutNext;
  }
  return o.this_update + (o.next_update - o.this_update) / 2;
}

}  // namespace

std::string Manager::Impl::staple_for(const std::string& cert_id, const std::string& chain_pem) {
  std::lock_guard lock(staples_mu);
  auto it = staples.find(cert_id);
  if (it == staples.end() || it->second.chain_pem != chain_pem ||
      !current(it->second.ocsp, unix_now())) {
    return "";
  }
  return it->second.ocsp.der;
}

int64_t Manager::Impl::refresh_staples() {
  auto all = load_all();
  if (!all) {
    return 0;
  }
  std::vector<std::string> ids;
  for (const auto& d : *all) {
    if (d.status == kActive && !d.certificate.empty() &&
        std::find(ids.begin(), ids.end(), d.certificate) == ids.end()) {
      ids.push_back(d.certificate);
    }
  }
  int64_t next = 0;
  auto later = [&](int64_t t) { next = next == 0 ? t : std::min(next, t); };
  bool changed = false;
  for (const auto& id : ids) {
    auto c = load_cert(id);
    if (!c || certs::ocsp_url(c->chain_pem).empty()) {
      continue;
    }
    int64_t now = unix_now();
    Staple have;
    {
      std::lock_guard lock(staples_mu);
      if (auto it = staples.find(id); it != staples.end()) {
        have = it->second;
      }
    }
    bool fresh = have.chain_pem == c->chain_pem && current(have.ocsp, now);
    if (fresh && now < refresh_at(have.ocsp)) {
      later(refresh_at(have.ocsp));
      continue;
    }
    if (have.chain_pem == c->chain_pem && now < have.next_try) {
      later(have.next_try);
      continue;
    }
    auto got = certs::fetch_ocsp(c->chain_pem, kFetchTimeout);
    std::lock_guard lock(staples_mu);
    Staple& s = staples[id];
    if (got) {
      s = Staple{c->chain_pem, std::move(*got), 0};
      log->info("domains: certificate {}: OCSP response stapled (valid until {})", id,
                s.ocsp.next_update != 0 ? format_time(s.ocsp.next_update) : "unstated");
      changed = true;
      later(refresh_at(s.ocsp));
    } else {
      if (s.chain_pem != c->chain_pem) {
        s = Staple{c->chain_pem, {}, 0};  // the old chain's answer says nothing of this one
        changed = true;
      }
      s.next_try = now + kRetryAfterFailure;
      log->warn("domains: certificate {}: no OCSP response to staple{}: {}", id,
                current(s.ocsp, now) ? " (the last one is kept until it expires)" : "",
                got.error().message());
      later(s.next_try);
    }
  }
  {
    // Forget certificates no longer served.
    std::lock_guard lock(staples_mu);
    std::erase_if(staples, [&](const auto& kv) {
      return std::find(ids.begin(), ids.end(), kv.first) == ids.end();
    });
  }
  if (changed) {
    publish();
  }
  return next;
}

}  // namespace berth::domains
