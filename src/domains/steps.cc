// SPDX-License-Identifier: Apache-2.0
// The link steps (DNS, certificate, route) for one group of names, the ACME challenge
// responder, the CAA check, and renewals.
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>

#include "common/secret_box.h"
#include "dns/dns.h"
#include "domains/internal.h"
#include "store/store.h"

namespace berth::domains {

std::string format_time(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M UTC", &tm);
  return buf.data();
}

namespace {

constexpr uint32_t kRecordTtl = 300;
constexpr uint32_t kChallengeTtl = 60;
constexpr int64_t kMaxBackoff = 6 * 3600;

const dns::RecordSet* find_set(const dns::ZoneData& z, const std::string& name,
                               const std::string& type) {
  for (const auto& s : z.sets) {
    if (s.name == name && s.type == type && s.set_identifier.empty()) {
      return &s;
    }
  }
  return nullptr;
}

// What a record set holds, as unlink compares it with what link wrote: an ALIAS's target, or
// the values in order.
std::vector<std::string> record_content(const dns::RecordSet& s) {
  if (s.type == "ALIAS") {
    return {s.alias_service.empty() ? "name " + s.alias_name : "service " + s.alias_service};
  }
  std::vector<std::string> v = s.values;
  std::sort(v.begin(), v.end());
  return v;
}

// Two thirds of the way from now (issuance) to notAfter: berth's CA backdates notBefore by an
// hour, which must not pull a short lifetime's renewal into the past.
int64_t renew_time(int64_t not_after) {
  int64_t now = unix_now();
  return now + std::max<int64_t>(1, (not_after - now) * 2 / 3);
}

// The addresses name resolves to through the system resolver ("" on failure).
std::vector<std::string> resolve(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::vector<std::string> out;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &res) != 0) {
    return out;
  }
  for (auto* p = res; p != nullptr; p = p->ai_next) {
    std::array<char, NI_MAXHOST> host{};
    if (getnameinfo(p->ai_addr, p->ai_addrlen, host.data(), host.size(), nullptr, 0,
                    NI_NUMERICHOST) == 0) {
      out.emplace_back(host.data());
    }
  }
  freeaddrinfo(res);
  return out;
}

// Answers ACME challenges: DNS-01 with a TXT record in berth's zone, HTTP-01 through the
// router's challenge map.
class Responder final : public certs::ChallengeResponder {
 public:
  explicit Responder(Manager::Impl& m) : m_(m) {}

  std::optional<certs::Challenge::Type> choose(std::string_view domain, bool wildcard) override {
    const std::string& want = m_.settings.acme_challenge;
    bool hosted = m_.dns != nullptr && !hosted_zone_for(m_.dns->zone_names(), domain).empty();
    if (hosted && (want != "http-01" || wildcard)) {
      return certs::Challenge::Type::dns01;
    }
    if (wildcard || want == "dns-01") {
      return std::nullopt;  // DNS-01 needs a zone berth hosts; only it proves a wildcard
    }
    return certs::Challenge::Type::http01;
  }

  Status present(const certs::Challenge& c) override {
    if (c.type == certs::Challenge::Type::http01) {
      {
        std::lock_guard lock(m_.mu);
        m_.challenges[c.token] = c.key_authorization;
      }
      m_.publish_challenges();
      return ok();
    }
    return edit_txt(c, true);
  }

  void cleanup(const certs::Challenge& c) override {
    if (c.type == certs::Challenge::Type::http01) {
      {
        std::lock_guard lock(m_.mu);
        m_.challenges.erase(c.token);
      }
      m_.publish_challenges();
      return;
    }
    if (auto s = edit_txt(c, false); !s) {
      m_.log->warn("domains: removing {} TXT: {}", c.dns_name(), s.error().message());
    }
  }

 private:
  // Adds or removes one value of the TXT set at _acme-challenge.<domain> (an apex and its
  // wildcard share the name and need both values at once).
  Status edit_txt(const certs::Challenge& c, bool add) {
    std::string name = c.dns_name();
    std::string zone = hosted_zone_for(m_.dns->zone_names(), name);
    if (zone.empty()) {
      return Error(Errc::FailedPrecondition, "no zone berth hosts holds " + name);
    }
    BERTH_ASSIGN_OR_RETURN(auto z, m_.dns->get_zone(zone));
    std::string value = "\"" + c.dns_value() + "\"";
    dns::RecordSet set;
    set.name = name;
    set.type = "TXT";
    set.ttl = kChallengeTtl;
    if (const auto* old = find_set(z, name, "TXT")) {
      set = *old;
    }
    auto& v = set.values;
    std::erase(v, value);
    if (add) {
      v.push_back(value);
    }
    std::vector<dns::Change> changes;
    if (v.empty()) {
      if (const auto* old = find_set(z, name, "TXT")) {
        changes.push_back(dns::Change{dns::Change::Action::Delete, *old});
      }
    } else {
      changes.push_back(dns::Change{dns::Change::Action::Upsert, set});
    }
    if (changes.empty()) {
      return ok();
    }
    auto r = m_.dns->change(zone, changes);
    return r ? ok() : Status(r.error());
  }

  Manager::Impl& m_;
};

}  // namespace

// ---- DNS ------------------------------------------------------------------------------------

bool Manager::Impl::step_dns(Domain& d) {
  // A service's name points at the router, the registry's at berthd's own listener.
  const auto& targets = d.registry ? settings.registry_addresses : settings.service_addresses;
  auto fail = [&](std::string why) {
    d.status = kFailed;
    d.last_error = std::move(why);
    set_step(d, "dns", "failed", d.last_error);
    return false;
  };
  if (targets.empty()) {
    return fail(d.registry ? "berthd's registry listens on a wildcard address, so berth does not "
                             "know where " +
                                 d.name +
                                 " should point: set dns.registry_addresses to the addresses "
                                 "clients reach it at"
                           : "the router listens on a wildcard address, so berth does not know "
                             "where " +
                                 d.name +
                                 " should point: set dns.service_addresses to the addresses "
                                 "clients reach the router at");
  }
  std::string zone = dns != nullptr ? hosted_zone_for(dns->zone_names(), d.name) : "";
  if (zone.empty()) {
    // Not berth's zone: the user creates the records at their DNS host; berth checks them.
    d.required_records.clear();
    for (const auto& a : targets) {
      bool v6 = a.find(':') != std::string::npos;
      d.required_records.push_back(d.name + ". " + std::to_string(kRecordTtl) +
                                   (v6 ? " IN AAAA " : " IN A ") + a);
    }
    std::string seen;
    if (settings.dns_check) {
      // At the zone's own name servers (no resolver cache in the way); through the system
      // resolver when they cannot be asked (a network that allows only its resolver).
      auto at = dns::authoritative_addresses(d.name, settings.dns_check_resolver,
                                             std::chrono::seconds(3));
      std::string where = "at its zone's name servers";
      if (!at && at.error().code() != Errc::Unavailable) {
        // The records answer, but wrongly (a CNAME loop, too long a chain): say so.
        d.status = kPendingDns;
        set_step(d, "dns", "pending", d.name + ": " + at.error().message());
        return false;
      }
      std::vector<std::string> got;
      std::string chain;  // the CNAMEs followed: "a.example.net -> b.example.com"
      if (at) {
        got = std::move(at->addresses);
        for (const auto& c : at->cnames) {
          chain += (chain.empty() ? "" : " -> ") + c;
        }
      } else {
        log->info("domains: {}: {}; asking the system resolver", d.name, at.error().message());
        got = resolve(d.name);
        where = "through the system resolver";
      }
      bool pointed = std::any_of(got.begin(), got.end(), [&](const std::string& a) {
        return std::find(targets.begin(), targets.end(), a) != targets.end();
      });
      if (pointed) {
        std::string via = chain.empty() ? "" : " through CNAME " + chain;
        set_step(d, "dns", "done", d.name + " points at this berth " + where + via);
        return true;
      }
      if (!got.empty()) {
        std::string list;
        for (const auto& a : got) {
          list += (list.empty() ? "" : ", ") + a;
        }
        seen = " (" + where + " it points at " + (chain.empty() ? "" : chain + " -> ") + list + ")";
      }
    }
    d.status = kPendingDns;
    set_step(d, "dns", "pending",
             "berth does not host a zone for " + d.name +
                 ": create the records listed for it at your DNS host" + seen);
    return false;
  }
  auto z = dns->get_zone(zone);
  if (!z) {
    return fail(z.error().message());
  }
  for (const char* type : {"ALIAS", "A", "AAAA", "CNAME"}) {
    const auto* s = find_set(*z, d.name, type);
    if (s == nullptr) {
      continue;
    }
    if (!d.registry && std::string(type) == "ALIAS" && s->alias_service == d.service) {
      set_step(
          d, "dns", "done",
          "ALIAS " + d.name + " -> service " + d.service + " (zone " + zone + ", already there)");
      return true;
    }
    return fail(d.name + " already has " + type + " records in zone " + zone +
                " that berth did not create: delete them, then link again");
  }
  std::vector<dns::Change> changes;
  std::string what;
  if (d.registry) {
    // A and AAAA sets with the listener's addresses (an ALIAS answers with the router's).
    for (const char* type : {"A", "AAAA"}) {
      dns::RecordSet set;
      set.name = d.name;
      set.type = type;
      set.ttl = kRecordTtl;
      for (const auto& a : targets) {
        if ((a.find(':') != std::string::npos) == (std::string(type) == "AAAA")) {
          set.values.push_back(a);
        }
      }
      if (!set.values.empty()) {
        what += (what.empty() ? "" : ", ") + std::string(type) + " " + d.name;
        changes.push_back(dns::Change{dns::Change::Action::Create, std::move(set)});
      }
    }
    what += " -> the registry";
  } else {
    dns::RecordSet set;
    set.name = d.name;
    set.type = "ALIAS";
    set.ttl = kRecordTtl;
    set.alias_service = d.service;
    changes.push_back(dns::Change{dns::Change::Action::Create, std::move(set)});
    what = "ALIAS " + d.name + " -> service " + d.service;
  }
  if (auto r = dns->change(zone, changes); !r) {
    return fail("writing " + what + " in zone " + zone + ": " + r.error().message());
  }
  for (const auto& c : changes) {
    d.records.push_back(CreatedRecord{zone, d.name, c.set.type, record_content(c.set)});
  }
  d.required_records.clear();
  set_step(d, "dns", "done", what + " (zone " + zone + ")");
  return true;
}

Result<std::vector<std::string>> Manager::Impl::remove_records(const Domain& d) {
  std::vector<std::string> kept;
  for (const auto& r : d.records) {
    if (dns == nullptr) {
      break;
    }
    auto z = dns->get_zone(r.zone);
    if (!z) {
      if (z.error().code() == Errc::NotFound) {
        continue;  // the zone is gone, and its records with it
      }
      return z.error();
    }
    const auto* s = find_set(*z, r.name, r.type);
    if (s == nullptr) {
      continue;  // the user removed it already
    }
    if (!r.content.empty() && record_content(*s) != r.content) {
      kept.push_back(r.type + " " + r.name + " in zone " + r.zone);
      continue;  // the user has changed it since: theirs now
    }
    std::vector<dns::Change> changes{dns::Change{dns::Change::Action::Delete, *s}};
    if (auto c = dns->change(r.zone, changes); !c) {
      return std::move(c).error().with_context("removing " + r.type + " " + r.name + " from zone " +
                                               r.zone);
    }
  }
  return kept;
}

// ---- Certificate ----------------------------------------------------------------------------

Status Manager::Impl::check_caa(const std::string& name) {
  if (dns == nullptr || settings.issuer != "internal") {
    return ok();  // an ACME server checks CAA itself, against its own identity
  }
  bool wildcard = name.starts_with("*.");
  std::string base = wildcard ? name.substr(2) : name;
  std::string zone = hosted_zone_for(dns->zone_names(), base);
  if (zone.empty()) {
    return ok();
  }
  BERTH_ASSIGN_OR_RETURN(auto z, dns->get_zone(zone));
  // RFC 8659: the closest name (climbing to the apex) with a CAA set is the relevant one.
  for (std::string at = base;;) {
    if (const auto* s = find_set(z, at, "CAA")) {
      std::vector<std::string> issue, issuewild;
      for (const auto& v : s->values) {
        // "0 issue \"letsencrypt.org\""
        auto q1 = v.find('"');
        auto q2 = v.rfind('"');
        std::string value = q1 != std::string::npos && q2 > q1 ? v.substr(q1 + 1, q2 - q1 - 1) : "";
        value = value.substr(0, value.find(';'));
        std::erase(value, ' ');
        if (v.find(" issuewild ") != std::string::npos) {
          issuewild.push_back(value);
        } else if (v.find(" issue ") != std::string::npos) {
          issue.push_back(value);
        }
      }
      const auto& tags = wildcard && !issuewild.empty() ? issuewild : issue;
      if (tags.empty()) {
        return ok();  // only iodef or other tags: no restriction on issuance
      }
      if (std::find(tags.begin(), tags.end(), "berth") != tags.end()) {
        return ok();
      }
      std::string allowed;
      for (const auto& t : tags) {
        allowed += (allowed.empty() ? "" : ", ") + (t.empty() ? std::string("nobody") : t);
      }
      return Error(Errc::FailedPrecondition,
                   "CAA records at " + at + " allow only " + allowed + " to issue for " + name +
                       "; berth's own CA identifies as \"berth\" (add 0 issue \"berth\")");
    }
    if (at == zone) {
      return ok();
    }
    at = at.substr(at.find('.') + 1);
  }
}

Result<certs::Issued> Manager::Impl::issue(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    BERTH_TRY(check_caa(n));
  }
  if (settings.issuer != "acme") {
    return ca->issue(names, settings.internal_lifetime);
  }
  std::string account_key;
  if (auto row = store.get_object(kTlsKind, "acme-account"); row) {
    auto j = Json::parse(row->document, nullptr, false);
    if (j.is_object() && j.value("directory_url", "") == settings.acme_directory_url) {
      BERTH_ASSIGN_OR_RETURN(account_key, box->open(j.value("key_sealed", "")));
    }
  }
  certs::AcmeOptions opts;
  opts.directory_url = settings.acme_directory_url;
  opts.email = settings.acme_email;
  opts.ca_bundle = settings.acme_ca_bundle;
  BERTH_ASSIGN_OR_RETURN(auto client, certs::AcmeClient::create(opts, account_key));
  if (account_key.empty()) {
    Json j{{"directory_url", settings.acme_directory_url},
           {"key_sealed", box->seal(client.account_key_pem())}};
    int64_t now = unix_now();
    BERTH_TRY(
        store.put_object(store::ObjectRow{kTlsKind, "acme-account", j.dump(), now, now}, false));
  }
  Responder responder(*this);
  return client.obtain(names, responder,
                       [&](std::string_view line) { log->info("domains: acme: {}", line); });
}

Status Manager::Impl::step_certificate(std::vector<Domain>& group) {
  std::vector<std::string> names;
  for (const auto& d : group) {
    names.push_back(d.name);
  }
  const std::string& id = group.front().group;
  // A certificate issued for this group before (a link resumed after a restart) is reused
  // while it still covers every name.
  if (auto old = load_cert(id); old && old->not_after > unix_now()) {
    bool covers = std::all_of(names.begin(), names.end(), [&](const std::string& n) {
      return std::find(old->names.begin(), old->names.end(), n) != old->names.end();
    });
    if (covers) {
      for (auto& d : group) {
        d.certificate = id;
        d.expires_at = old->not_after;
        d.serial = old->serial;
        d.renew_at = old->renew_at;
      }
      return ok();
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto issued, issue(names));
  CertDoc c;
  c.id = id;
  c.names = names;
  c.issuer = settings.issuer;
  c.chain_pem = issued.chain_pem;
  c.key_sealed = box->seal(issued.key_pem);
  c.not_before = issued.info.not_before;
  c.not_after = issued.info.not_after;
  c.serial = issued.info.serial;
  c.renew_at = renew_time(c.not_after);
  BERTH_TRY(save_cert(c));
  for (auto& d : group) {
    d.certificate = id;
    d.expires_at = c.not_after;
    d.serial = c.serial;
    d.renew_at = c.renew_at;
    set_step(d, "certificate", "done",
             "issued by " + issued.info.issuer + ", expires " + format_time(c.not_after));
  }
  return ok();
}

// ---- One group's link -----------------------------------------------------------------------

void Manager::Impl::work_group(const std::string& group_name) {
  std::unique_lock lock(rows_mu);
  auto loaded = load_group(group_name);
  if (!loaded || loaded->empty()) {
    return;  // unlinked meanwhile
  }
  auto& group = *loaded;
  // Queued twice (a retry asked for while its link was running): nothing is left to do.
  if (std::all_of(group.begin(), group.end(),
                  [](const Domain& d) { return d.status == kActive || d.status == kFailed; })) {
    return;
  }
  // A CAA record that forbids the issuer fails the link before any record is written.
  for (auto& d : group) {
    if (d.status == kActive || d.status == kFailed || !d.records.empty()) {
      continue;
    }
    if (auto caa = check_caa(d.name); !caa) {
      for (auto& g : group) {
        g.status = kFailed;
        g.last_error = caa.error().message();
        set_step(g, "certificate", "failed", g.last_error);
      }
      break;
    }
  }
  bool dns_done = true;
  for (auto& d : group) {
    if (d.status == kActive || d.status == kFailed) {
      continue;
    }
    auto dns_step =
        std::find_if(d.steps.begin(), d.steps.end(), [](const Step& s) { return s.step == "dns"; });
    if (dns_step == d.steps.end() || dns_step->status != "done") {
      dns_done = step_dns(d) && dns_done;
    }
    if (d.status == kFailed) {
      dns_done = false;
    }
  }
  bool failed =
      std::any_of(group.begin(), group.end(), [](const Domain& d) { return d.status == kFailed; });
  if (dns_done && !failed) {
    for (auto& d : group) {
      d.status = kPendingCertificate;
      d.required_records.clear();
    }
    for (auto& d : group) {
      (void)save(d, false);  // `domain show` sees PENDING_CERTIFICATE while ACME runs
    }
    lock.unlock();
    auto s = step_certificate(group);
    lock.lock();
    // Unlinked while the certificate was being obtained: the certificate just saved is for
    // names that are gone (a name left of the group gets its own on the next pass).
    auto still = load_group(group_name);
    if (!still || still->size() != group.size()) {
      if (s) {
        if (auto r = release_cert(group_name); !r) {
          log->warn("domains: certificate {}: {}", group_name, r.error().message());
        }
      }
      return;
    }
    for (auto& d : group) {
      if (s) {
        d.status = kActive;
        d.last_error.clear();
        set_step(d, "route", "done",
                 d.registry ? "served over HTTPS on the registry listener"
                 : settings.https
                     ? "served over HTTPS"
                     : "served over plain HTTP only: the router's HTTPS listener is off "
                       "(router_tls_listen), so the certificate waits for it");
      } else if (s.error().code() == Errc::Unavailable) {
        // The ACME server is away: keep waiting, try again on the next check.
        d.last_error = s.error().message();
        set_step(d, "certificate", "pending", d.last_error);
      } else {
        // The certificate cannot be had: take back the records too (never half linked).
        d.status = kFailed;
        d.last_error = s.error().message();
        set_step(d, "certificate", "failed", d.last_error);
        if (auto r = remove_records(d); r) {
          d.records.clear();
        }
      }
    }
  } else if (failed) {
    // One name of the group failed: the whole group fails and its records are taken back,
    // so a link is never half done.
    std::string why;
    for (const auto& d : group) {
      if (d.status == kFailed) {
        why = d.last_error;
      }
    }
    for (auto& d : group) {
      (void)remove_records(d);
      d.records.clear();
      if (d.status != kFailed) {
        d.status = kFailed;
        d.last_error = why;
      }
    }
  }
  for (auto& d : group) {
    if (auto st = save(d, false); !st) {
      log->error("domains: saving {}: {}", d.name, st.error().message());
    }
    log->info("domains: {} status={}{}{}", d.name, d.status,
              d.last_error.empty() ? "" : " error=", d.last_error);
  }
  lock.unlock();
  publish();
}

// ---- Renewal --------------------------------------------------------------------------------

int64_t Manager::Impl::renew_due() {
  auto rows = store.list_objects(kCertificateKind);
  if (!rows) {
    return 0;
  }
  int64_t now = unix_now();
  int64_t next = 0;
  auto later = [&](int64_t t) { next = next == 0 ? t : std::min(next, t); };
  for (const auto& row : *rows) {
    auto c = cert_from_json(row.document);
    if (!c) {
      continue;
    }
    if (now < c->renew_at || now < c->next_attempt) {
      later(std::max(c->renew_at, c->next_attempt));
      continue;
    }
    log->info("domains: renewing certificate {} (expires {})", c->id, format_time(c->not_after));
    auto issued = issue(c->names);
    std::lock_guard lock(rows_mu);
    // The row as it is now: unlinked meanwhile, or asked to renew again (`domain renew` resets
    // the back-off), while the order ran.
    auto fresh = load_cert(c->id);
    if (!fresh) {
      continue;
    }
    c = std::move(fresh);
    if (issued) {
      c->chain_pem = issued->chain_pem;
      c->key_sealed = box->seal(issued->key_pem);
      c->not_before = issued->info.not_before;
      c->not_after = issued->info.not_after;
      c->serial = issued->info.serial;
      c->renew_at = renew_time(c->not_after);
      c->failures = 0;
      c->next_attempt = 0;
      c->last_error.clear();
    } else {
      // The old certificate keeps serving; try again later, backing off: 2 minutes, doubling
      // to kMaxBackoff (60 << 9 is past it).
      c->failures++;
      c->next_attempt =
          now + std::min<int64_t>(kMaxBackoff, int64_t{60} << std::min(c->failures, 9));
      c->last_error = "renewal failed: " + issued.error().message();
      log->warn("domains: certificate {}: {}", c->id, c->last_error);
    }
    (void)save_cert(*c);
    later(std::max(c->renew_at, c->next_attempt));
    if (issued) {
      // The router serves it before any domain says so (domain show, domain renew).
      publish();
    }
    if (auto all = load_all(); all) {
      for (auto& d : *all) {
        if (d.certificate != c->id) {
          continue;
        }
        d.expires_at = c->not_after;
        d.serial = c->serial;
        d.renew_at = c->renew_at;
        d.retry_at = c->next_attempt;
        d.last_error = c->last_error;
        if (issued) {
          set_step(d, "certificate", "done",
                   "renewed by " + issued->info.issuer + ", expires " + format_time(c->not_after));
        }
        (void)save(d, false);
      }
    }
  }
  return next;
}

}  // namespace berth::domains
