// SPDX-License-Identifier: Apache-2.0
// The stored documents of domains and certificates, and the name rules link applies.
#include <algorithm>
#include <chrono>

#include "common/ascii.h"
#include "domains/internal.h"

namespace berth::domains {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string unlinkable(std::string_view name) {
  if (name.find('_') != std::string_view::npos) {
    return "'_' cannot appear in a name served over HTTPS (certificates carry only letters, "
           "digits and '-')";
  }
  std::string_view last = name.substr(name.rfind('.') + 1);
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "an IP address is not a domain name: link a name, and point it at the address";
  }
  if (last == "localhost") {
    return "names under localhost always mean this machine (RFC 6761), and berth serves them "
           "over plain HTTP as the apps domain";
  }
  return "";
}

Result<std::string> normalize_domain(std::string_view in) {
  std::string n(in);
  if (!n.empty() && n.back() == '.') {
    n.pop_back();
  }
  for (auto& c : n) {
    c = ascii::lower(c);
  }
  auto bad = [&](const std::string& why) {
    return Error(Errc::InvalidArgument, "domain name '" + std::string(in) + "': " + why);
  };
  if (n.empty() || n.size() > 253) {
    return bad("must be 1 to 253 characters");
  }
  std::string_view rest = n;
  if (rest.starts_with("*.")) {
    rest.remove_prefix(2);
  }
  if (rest.find('.') == std::string_view::npos) {
    return bad("needs at least two labels (example.com)");
  }
  size_t start = 0;
  while (start <= rest.size()) {
    size_t dot = rest.find('.', start);
    std::string_view label =
        rest.substr(start, dot == std::string_view::npos ? rest.npos : dot - start);
    if (label.empty() || label.size() > 63) {
      return bad("each label must be 1 to 63 characters");
    }
    if (label.front() == '-' || label.back() == '-') {
      return bad("a label may not start or end with '-'");
    }
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
        return bad(c == '*' ? "a wildcard is allowed only as the whole first label"
                            : "only letters, digits, '-' and '_' may appear in a label");
      }
    }
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  return n;
}

std::string hosted_zone_for(const std::vector<std::string>& zones, std::string_view name) {
  if (name.starts_with("*.")) {
    name.remove_prefix(2);
  }
  std::string best;
  for (const auto& z : zones) {
    bool inside = name == z || (name.size() > z.size() && name.ends_with(z) &&
                                name[name.size() - z.size() - 1] == '.');
    if (inside && z.size() > best.size()) {
      best = z;
    }
  }
  return best;
}

void set_step(Domain& d, const std::string& step, const std::string& status,
              const std::string& detail) {
  for (auto& s : d.steps) {
    if (s.step == step) {
      s.status = status;
      s.detail = detail;
      s.at = unix_now();
      return;
    }
  }
  d.steps.push_back(Step{step, status, detail, unix_now()});
}

Json domain_to_json(const Domain& d) {
  Json steps = Json::array();
  for (const auto& s : d.steps) {
    steps.push_back(
        Json{{"step", s.step}, {"status", s.status}, {"detail", s.detail}, {"at", s.at}});
  }
  Json records = Json::array();
  for (const auto& r : d.records) {
    records.push_back(
        Json{{"zone", r.zone}, {"name", r.name}, {"type", r.type}, {"content", r.content}});
  }
  return Json{{"name", d.name},
              {"service", d.service},
              {"registry", d.registry},
              {"status", d.status},
              {"issuer", d.issuer},
              {"group", d.group},
              {"steps", steps},
              {"records", records},
              {"required_records", d.required_records},
              {"certificate", d.certificate},
              {"expires_at", d.expires_at},
              {"serial", d.serial},
              {"renew_at", d.renew_at},
              {"retry_at", d.retry_at},
              {"last_error", d.last_error},
              {"created_at", d.created_at},
              {"updated_at", d.updated_at}};
}

namespace {

template <class T>
T field(const Json& j, const char* k, T dflt) {
  auto it = j.find(k);
  return it == j.end() || it->is_null() ? dflt : it->get<T>();
}

}  // namespace

Result<Domain> domain_from_json(const std::string& text) {
  auto j = Json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return Error(Errc::DataLoss, "stored domain is not a JSON object");
  }
  try {
    Domain d;
    d.name = field<std::string>(j, "name", "");
    d.service = field<std::string>(j, "service", "");
    d.registry = field<bool>(j, "registry", false);
    d.status = field<std::string>(j, "status", "");
    d.issuer = field<std::string>(j, "issuer", "");
    d.group = field<std::string>(j, "group", d.name);
    for (const auto& s : j.value("steps", Json::array())) {
      d.steps.push_back(Step{field<std::string>(s, "step", ""), field<std::string>(s, "status", ""),
                             field<std::string>(s, "detail", ""), field<int64_t>(s, "at", 0)});
    }
    for (const auto& r : j.value("records", Json::array())) {
      d.records.push_back(CreatedRecord{
          field<std::string>(r, "zone", ""), field<std::string>(r, "name", ""),
          field<std::string>(r, "type", ""), field<std::vector<std::string>>(r, "content", {})});
    }
    d.required_records = field<std::vector<std::string>>(j, "required_records", {});
    d.certificate = field<std::string>(j, "certificate", "");
    d.expires_at = field<int64_t>(j, "expires_at", 0);
    d.serial = field<std::string>(j, "serial", "");
    d.renew_at = field<int64_t>(j, "renew_at", 0);
    d.retry_at = field<int64_t>(j, "retry_at", 0);
    d.last_error = field<std::string>(j, "last_error", "");
    d.created_at = field<int64_t>(j, "created_at", 0);
    d.updated_at = field<int64_t>(j, "updated_at", 0);
    return d;
  } catch (const Json::exception& e) {
    return Error(Errc::DataLoss, std::string("stored domain: ") + e.what());
  }
}

Json cert_to_json(const CertDoc& c) {
  return Json{{"id", c.id},
              {"names", c.names},
              {"issuer", c.issuer},
              {"chain_pem", c.chain_pem},
              {"key_sealed", c.key_sealed},
              {"not_before", c.not_before},
              {"not_after", c.not_after},
              {"serial", c.serial},
              {"renew_at", c.renew_at},
              {"failures", c.failures},
              {"next_attempt", c.next_attempt},
              {"last_error", c.last_error}};
}

Result<CertDoc> cert_from_json(const std::string& text) {
  auto j = Json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return Error(Errc::DataLoss, "stored certificate is not a JSON object");
  }
  try {
    CertDoc c;
    c.id = field<std::string>(j, "id", "");
    c.names = field<std::vector<std::string>>(j, "names", {});
    c.issuer = field<std::string>(j, "issuer", "");
    c.chain_pem = field<std::string>(j, "chain_pem", "");
    c.key_sealed = field<std::string>(j, "key_sealed", "");
    c.not_before = field<int64_t>(j, "not_before", 0);
    c.not_after = field<int64_t>(j, "not_after", 0);
    c.serial = field<std::string>(j, "serial", "");
    c.renew_at = field<int64_t>(j, "renew_at", 0);
    c.failures = field<int>(j, "failures", 0);
    c.next_attempt = field<int64_t>(j, "next_attempt", 0);
    c.last_error = field<std::string>(j, "last_error", "");
    return c;
  } catch (const Json::exception& e) {
    return Error(Errc::DataLoss, std::string("stored certificate: ") + e.what());
  }
}

}  // namespace berth::domains
