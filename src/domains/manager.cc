// SPDX-License-Identifier: Apache-2.0
// The domain manager: link/unlink/list as the API calls them, the stored rows, the worker
// thread, and publishing routes and certificates to the router. The link steps themselves
// live in steps.cc.
#include <algorithm>

#include "common/duration.h"
#include "common/secret_box.h"
#include "dns/dns.h"
#include "domains/internal.h"
#include "store/store.h"

namespace berth::domains {

// ---- Store helpers --------------------------------------------------------------------------

Result<std::vector<Domain>> Manager::Impl::load_all() const {
  BERTH_ASSIGN_OR_RETURN(auto rows, store.list_objects(kDomainKind));
  std::vector<Domain> out;
  for (const auto& r : rows) {
    BERTH_ASSIGN_OR_RETURN(auto d, domain_from_json(r.document));
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<Domain>> Manager::Impl::load_group(const std::string& group) const {
  BERTH_ASSIGN_OR_RETURN(auto all, load_all());
  std::vector<Domain> out;
  for (auto& d : all) {
    if (d.group == group) {
      out.push_back(std::move(d));
    }
  }
  return out;
}

Status Manager::Impl::save(Domain& d, bool create) {
  d.updated_at = unix_now();
  if (create) {
    d.created_at = d.updated_at;
  }
  store::ObjectRow row{kDomainKind, d.name, domain_to_json(d).dump(), d.created_at, d.updated_at};
  return store.put_object(row, create);
}

Result<Domain> Manager::Impl::load_domain(const std::string& name) const {
  auto row = store.get_object(kDomainKind, name);
  if (!row) {
    return row.error().code() == Errc::NotFound
               ? Error(Errc::NotFound, name + " is not linked to any service")
               : row.error();
  }
  return domain_from_json(row->document);
}

Result<CertDoc> Manager::Impl::load_cert(const std::string& id) const {
  BERTH_ASSIGN_OR_RETURN(auto row, store.get_object(kCertificateKind, id));
  return cert_from_json(row.document);
}

Status Manager::Impl::save_cert(const CertDoc& c) {
  int64_t now = unix_now();
  return store.put_object(
      store::ObjectRow{kCertificateKind, c.id, cert_to_json(c).dump(), now, now}, false);
}

// ---- Worker ---------------------------------------------------------------------------------

void Manager::Impl::enqueue(const std::string& group) {
  {
    std::lock_guard lock(mu);
    if (std::find(queue.begin(), queue.end(), group) == queue.end()) {
      queue.push_back(group);
    }
  }
  cv.notify_all();
}

void Manager::Impl::run_worker() {
  using std::chrono::steady_clock;
  // Two clocks: renewals wake when the earliest certificate is due (so short-lived ones are
  // renewed on time), names still waiting are retried every check_interval.
  auto next_renew = steady_clock::now();
  auto next_pending = steady_clock::now() + settings.check_interval;
  for (;;) {
    std::string group;
    bool woken = false;
    {
      std::unique_lock lock(mu);
      cv.wait_until(lock, std::min(next_renew, next_pending),
                    [&] { return stopping || wake_now || !queue.empty(); });
      if (stopping) {
        return;
      }
      if (!queue.empty()) {
        group = queue.front();
        queue.pop_front();
      }
      woken = wake_now;
      wake_now = false;
    }
    if (!group.empty()) {
      work_group(group);
      next_renew = steady_clock::now();  // a new certificate: learn when it is due
      continue;
    }
    auto now = steady_clock::now();
    if (woken || now >= next_renew) {
      next_renew = now + settings.check_interval;
      for (int64_t due : {renew_due(), refresh_staples()}) {
        if (due != 0) {
          auto in = std::chrono::seconds(std::max<int64_t>(0, due - unix_now()) + 1);
          next_renew = std::min(next_renew, now + in);
        }
      }
    }
    if (woken || now >= next_pending) {
      next_pending = now + settings.check_interval;
      // Names still waiting (for the user's DNS records, or after an ACME server was away)
      // get another try.
      if (auto all = load_all(); all) {
        for (const auto& d : *all) {
          if (d.status == kPendingDns || d.status == kPendingCertificate) {
            enqueue(d.group);
          }
        }
      }
    }
  }
}

void Manager::Impl::publish() {
  auto all = load_all();
  if (!all) {
    log->error("domains: cannot read domains to publish: {}", all.error().message());
    return;
  }
  std::map<std::string, HostRoute> routes;
  std::vector<std::string> cert_ids[2];  // the router's, the registry listener's
  for (const auto& d : *all) {
    if (d.status != kActive) {
      continue;
    }
    if (!d.registry) {
      routes[d.name] = HostRoute{d.service, settings.redirect_http, settings.hsts};
    }
    auto& ids = cert_ids[d.registry ? 1 : 0];
    if (!d.certificate.empty() && std::find(ids.begin(), ids.end(), d.certificate) == ids.end()) {
      ids.push_back(d.certificate);
    }
  }
  std::vector<tls::Certificate> served[2];
  for (int i = 0; i < 2; ++i) {
    for (const auto& id : cert_ids[i]) {
      auto c = load_cert(id);
      if (!c) {
        log->error("domains: certificate {}: {}", id, c.error().message());
        continue;
      }
      auto key = box->open(c->key_sealed);
      if (!key) {
        log->error("domains: certificate {}: key: {}", id, key.error().message());
        continue;
      }
      served[i].push_back(
          tls::Certificate{c->names, c->chain_pem, std::move(*key), staple_for(id, c->chain_pem)});
    }
  }
  if (hooks.publish_certificates) {
    hooks.publish_certificates(std::move(served[0]), std::move(served[1]));
  }
  if (hooks.publish_routes) {
    hooks.publish_routes(std::move(routes));
  }
}

void Manager::Impl::publish_challenges() {
  std::shared_ptr<const std::unordered_map<std::string, std::string>> m;
  {
    std::lock_guard lock(mu);
    m = std::make_shared<const std::unordered_map<std::string, std::string>>(challenges);
  }
  if (hooks.publish_challenges) {
    hooks.publish_challenges(std::move(m));
  }
}

// ---- Manager --------------------------------------------------------------------------------

Manager::Manager(store::MetadataStore& store, dns::Service* dns, std::shared_ptr<SecretBox> box,
                 Settings settings, Hooks hooks)
    : impl_(std::make_unique<Impl>(store, dns, std::move(box), std::move(settings),
                                   std::move(hooks))) {}

Manager::~Manager() { stop(); }

Status Manager::start() {
  auto& m = *impl_;
  // berth's CA: created on first start, its key sealed like every other secret.
  auto row = m.store.get_object(kTlsKind, "ca");
  if (row) {
    auto j = Json::parse(row->document, nullptr, false);
    if (!j.is_object() || !j.contains("root_pem") || !j.contains("key_sealed")) {
      return Error(Errc::DataLoss, "berth's CA as stored is unreadable");
    }
    BERTH_ASSIGN_OR_RETURN(auto key, m.box->open(j["key_sealed"].get<std::string>()));
    BERTH_ASSIGN_OR_RETURN(auto ca, certs::Authority::load(j["root_pem"].get<std::string>(), key));
    m.ca = std::move(ca);
  } else if (row.error().code() == Errc::NotFound) {
    BERTH_ASSIGN_OR_RETURN(auto ca, certs::Authority::create());
    Json j{{"root_pem", ca.root_pem()}, {"key_sealed", m.box->seal(ca.key_pem())}};
    int64_t now = unix_now();
    BERTH_TRY(m.store.put_object(store::ObjectRow{kTlsKind, "ca", j.dump(), now, now}, true));
    m.ca = std::move(ca);
    m.log->info("domains: created berth's CA (berth ca export prints its root)");
  } else {
    return row.error();
  }
  m.publish();
  BERTH_ASSIGN_OR_RETURN(auto all, m.load_all());
  for (const auto& d : all) {
    if (d.status == kLinking || d.status == kPendingDns || d.status == kPendingCertificate) {
      m.enqueue(d.group);
    }
  }
  m.worker = std::thread([&m] { m.run_worker(); });
  return ok();
}

void Manager::stop() {
  if (!impl_) {
    return;
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) {
    impl_->worker.join();
  }
}

// What a domain is linked to, as messages name it.
static std::string target_of(const Domain& d) {
  return d.registry ? std::string("the registry") : "service " + d.service;
}

Result<std::vector<Domain>> Manager::link(const std::string& service, const std::string& name,
                                          bool www) {
  auto& m = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto apex, normalize_domain(name));
  if (service.empty()) {
    return Error(Errc::InvalidArgument, "link needs a service name");
  }
  if (m.hooks.service_exists && !m.hooks.service_exists(service)) {
    return Error(Errc::NotFound, "service " + service + " does not exist");
  }
  std::vector<std::string> names{apex};
  if (www) {
    if (apex.starts_with("*.")) {
      return Error(Errc::InvalidArgument, "--www cannot be combined with a wildcard name");
    }
    names.push_back("www." + apex);
  }
  Domain proto;
  proto.service = service;
  return m.link_names(proto, names);
}

Result<std::vector<Domain>> Manager::link_registry(const std::string& name) {
  auto& m = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto n, normalize_domain(name));
  if (n.starts_with("*.")) {
    return Error(Errc::InvalidArgument,
                 "the registry is linked to one name (docker login NAME), not a wildcard");
  }
  Domain proto;
  proto.registry = true;
  return m.link_names(proto, {n});
}

Result<std::vector<Domain>> Manager::Impl::link_names(const Domain& proto,
                                                      const std::vector<std::string>& names) {
  if (settings.issuer == "acme" && settings.acme_directory_url.empty()) {
    return Error(Errc::FailedPrecondition, "tls.issuer is acme but acme.directory_url is not set");
  }
  // An ACME CA proves control of a wildcard only through DNS-01, which berth answers only in a
  // zone it hosts: refuse now rather than after the user made the records.
  const std::string& first = names.front();
  if (settings.issuer == "acme" && first.starts_with("*.") &&
      (dns == nullptr || hosted_zone_for(dns->zone_names(), first.substr(2)).empty())) {
    return Error(Errc::FailedPrecondition,
                 first + " is a wildcard, which an ACME CA validates only through DNS-01, and " +
                     "berth hosts no zone for " + first.substr(2) +
                     ": create the zone in berth (berth dns zone create) or link names one by one");
  }
  for (const auto& n : names) {
    if (auto why = unlinkable(n); !why.empty()) {
      return Error(Errc::InvalidArgument, "domain name '" + n + "': " + why);
    }
  }
  std::lock_guard lock(rows_mu);
  std::vector<std::string> retried;  // groups of FAILED links to the same target, replaced
  for (const auto& n : names) {
    auto existing = store.get_object(kDomainKind, n);
    if (existing) {
      auto d = domain_from_json(existing->document);
      if (!d) {
        return Error(Errc::AlreadyExists, n + " is already linked");
      }
      if (d->registry == proto.registry && d->service == proto.service) {
        if (d->status == kFailed) {
          retried.push_back(d->group);  // linking it again is the retry
          continue;
        }
        return Error(Errc::AlreadyExists, n + " is already linked to " + target_of(*d));
      }
      std::string owner =
          !d->registry && !proto.registry ? "another service (" + d->service + ")" : target_of(*d);
      return Error(Errc::AlreadyExists,
                   n + " is already linked to " + owner + ": unlink it there first");
    }
    if (existing.error().code() != Errc::NotFound) {
      return existing.error();
    }
  }
  // The FAILED link's rows, with those of the names linked with it, make way for this one.
  // Its records were taken back when it failed, unless taking them back failed too: then now,
  // and while they cannot be, the retry waits (no record is left that no row remembers).
  bool reissue = false;
  for (const auto& g : retried) {
    BERTH_ASSIGN_OR_RETURN(auto group, load_group(g));
    for (const auto& old : group) {
      if (old.status != kFailed) {
        continue;
      }
      BERTH_ASSIGN_OR_RETURN(auto kept, remove_records(old));
      (void)kept;  // records the user changed since are theirs
      BERTH_TRY(store.delete_object(kDomainKind, old.name));
      if (!old.certificate.empty()) {
        BERTH_ASSIGN_OR_RETURN(bool again, release_cert(old.certificate));
        reissue = reissue || again;
      }
    }
  }
  if (reissue) {
    wake_worker();  // the names still on that certificate get one without these
  }
  std::vector<Domain> created;
  for (const auto& n : names) {
    Domain d = proto;
    d.name = n;
    d.status = kLinking;
    d.issuer = settings.issuer;
    d.group = names.front();
    set_step(d, "dns", "pending", "");
    set_step(d, "certificate", "pending", "");
    set_step(d, "route", "pending", "");
    BERTH_TRY(save(d, true));
    created.push_back(std::move(d));
  }
  log->info("domains: link {} -> {}", names.front(), target_of(proto));
  enqueue(names.front());
  return created;
}

Result<std::vector<std::string>> Manager::unlink(const std::string& service,
                                                 const std::string& name) {
  auto& m = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto n, normalize_domain(name));
  std::string cert_id;
  bool reissue = false;
  std::vector<std::string> kept;
  {
    std::lock_guard lock(m.rows_mu);
    BERTH_ASSIGN_OR_RETURN(auto d, m.load_domain(n));
    if (d.service != service) {
      return Error(Errc::Conflict, n + " is linked to " + target_of(d) + ", not " +
                                       (service.empty() ? std::string("the registry") : service));
    }
    // Records first: when removing one fails, the domain stays linked and can be unlinked
    // again, rather than leaving records nobody remembers.
    BERTH_ASSIGN_OR_RETURN(kept, m.remove_records(d));
    BERTH_TRY(m.store.delete_object(kDomainKind, n));
    cert_id = d.certificate;
    if (!cert_id.empty()) {
      BERTH_ASSIGN_OR_RETURN(reissue, m.release_cert(cert_id));
    }
  }
  m.log->info("domains: unlink {} from {}", n,
              service.empty() ? std::string("the registry") : "service " + service);
  for (const auto& k : kept) {
    m.log->info("domains: unlink {}: left {}, changed since link", n, k);
  }
  m.publish();
  if (reissue) {
    wake();  // the other names get a certificate without this one
  }
  return kept;
}

Result<bool> Manager::Impl::release_cert(const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(auto all, load_all());
  std::vector<std::string> users;
  for (const auto& o : all) {
    if (o.certificate == id) {
      users.push_back(o.name);
    }
  }
  if (users.empty()) {
    auto del = store.delete_object(kCertificateKind, id);
    if (!del && del.error().code() != Errc::NotFound) {
      return del.error();
    }
    return false;
  }
  auto c = load_cert(id);
  if (!c) {
    return c.error().code() == Errc::NotFound ? Result<bool>(false) : Result<bool>(c.error());
  }
  bool extra = std::any_of(c->names.begin(), c->names.end(), [&](const std::string& n) {
    return std::find(users.begin(), users.end(), n) == users.end();
  });
  if (!extra) {
    return false;
  }
  // It keeps serving the names that remain until the new one is issued.
  std::erase_if(c->names, [&](const std::string& n) {
    return std::find(users.begin(), users.end(), n) == users.end();
  });
  c->renew_at = unix_now();
  c->next_attempt = 0;
  BERTH_TRY(save_cert(*c));
  log->info("domains: certificate {} is issued again for {} name(s)", id, c->names.size());
  return true;
}

Result<Domain> Manager::get(const std::string& name) const {
  BERTH_ASSIGN_OR_RETURN(auto n, normalize_domain(name));
  return impl_->load_domain(n);
}

Result<std::vector<Domain>> Manager::list(const std::string& service) const {
  BERTH_ASSIGN_OR_RETURN(auto all, impl_->load_all());
  if (!service.empty()) {
    std::erase_if(all, [&](const Domain& d) { return d.service != service; });
    // A typo must not read as "no domains" (names of a deleted service are still listed).
    if (all.empty() && impl_->hooks.service_exists && !impl_->hooks.service_exists(service)) {
      return Error(Errc::NotFound, "service " + service + " does not exist");
    }
  }
  return all;
}

std::string Manager::ca_root_pem() const { return impl_->ca ? impl_->ca->root_pem() : ""; }

Result<Domain> Manager::renew(const std::string& name, bool force) {
  auto& m = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto n, normalize_domain(name));
  bool queue = false;
  bool wake_worker = false;
  Domain d;
  {
    // Decided and changed under the rows' lock, so that the worker sees one or the other.
    std::lock_guard lock(m.rows_mu);
    BERTH_ASSIGN_OR_RETURN(d, m.load_domain(n));
    if (d.status == kFailed) {
      return Error(Errc::FailedPrecondition,
                   d.name + " FAILED: " + d.last_error +
                       " (renew does not retry a failed link: link it again once that is fixed)");
    }
    if (d.status == kPendingDns || d.status == kPendingCertificate) {
      // Its steps, now. The group shows LINKING without the old error until the worker has
      // the new outcome, so nobody reads the last one as this one's.
      BERTH_ASSIGN_OR_RETURN(auto group, m.load_group(d.group));
      for (auto& g : group) {
        if (g.status == kPendingDns || g.status == kPendingCertificate) {
          g.status = kLinking;
          g.last_error.clear();
          for (auto& step : g.steps) {
            if (step.status == "pending") {
              step.detail = "trying again now";  // not the last attempt's error
            }
          }
          BERTH_TRY(m.save(g, false));
        }
        if (g.name == d.name) {
          d = g;
        }
      }
      queue = true;
    } else if (d.status == kActive) {
      if (d.certificate.empty()) {
        return Error(Errc::FailedPrecondition,
                     d.name + " is ACTIVE but has no certificate to renew");
      }
      BERTH_ASSIGN_OR_RETURN(auto c, m.load_cert(d.certificate));
      int64_t now = unix_now();
      // An ACME CA counts every certificate against its rate limits: a certificate that is
      // fresh and fine is renewed again only when asked with force.
      int64_t age = now - c.not_before;
      int64_t young = std::min<int64_t>(24 * 3600, (c.not_after - c.not_before) / 3);
      if (!force && c.issuer == "acme" && c.last_error.empty() && age < young) {
        return Error(Errc::FailedPrecondition,
                     d.name + "'s certificate was issued " + format_age(std::max<int64_t>(age, 0)) +
                         " ago: renewing it this soon counts against the ACME CA's rate limits "
                         "(Let's Encrypt: 5 certificates a week for the same names); pass "
                         "--force to renew it anyway");
      }
      c.renew_at = std::min(c.renew_at, now);
      c.next_attempt = 0;
      c.failures = 0;  // asked for: the back-off starts again from its first step
      BERTH_TRY(m.save_cert(c));
      // Every name the certificate covers shows that no retry is pending any more: the attempt
      // starting now sets retry_at again if it fails.
      BERTH_ASSIGN_OR_RETURN(auto all, m.load_all());
      for (auto& other : all) {
        if (other.certificate == d.certificate && other.retry_at != 0) {
          other.retry_at = 0;
          BERTH_TRY(m.save(other, false));
        }
        if (other.name == d.name) {
          d = other;
        }
      }
      wake_worker = true;
    }
    // LINKING: its link is running now; the caller follows it.
  }
  if (queue) {
    m.enqueue(d.group);
  }
  if (wake_worker) {
    m.log->info("domains: renewal of certificate {} asked for ({})", d.certificate, d.name);
    wake();
  }
  return d;
}

void Manager::wake() { impl_->wake_worker(); }

void Manager::Impl::wake_worker() {
  {
    std::lock_guard lock(mu);
    wake_now = true;
  }
  cv.notify_all();
}

}  // namespace berth::domains
