// SPDX-License-Identifier: Apache-2.0
// /api/v1/dns/tsig: the TSIG keys that may sign dynamic updates (docs/dns.md "Dynamic updates
// (RFC 2136) and TSIG"). Every call needs dns:ManageTsigKeys on tsigkey/NAME (tsigkey/* for
// the list). The secret is returned once, by POST; GET never shows it.
#include "api/api.h"
#include "api/internal.h"
#include "common/async.h"
#include "common/json.h"
#include "common/url.h"
#include "dns/tsig.h"

namespace berth::api {

namespace {

constexpr size_t kMaxTsigBody = 16 * 1024;
constexpr const char* kAction = "dns:ManageTsigKeys";

Json key_json(const dns::TsigKey& k) {
  return Json{{"name", k.name},
              {"algorithm", k.algorithm},
              {"zones", k.zones},
              {"names", k.names},
              {"created_at", k.created_at}};
}

class TsigHandler : public RestHandler {
 public:
  TsigHandler(dns::TsigKeyring& keys, iam::Service& iam) : RestHandler(iam), keys_(keys) {}

 private:
  Result<http::Response> dispatch(const ApiCall& call) override {
    using V = bhttp::verb;
    auto seg = segments(call.rest);  // dns, tsig, NAME
    size_t n = seg.size();
    auto m = call.method;
    if (n == 2 && m == V::get) {
      BERTH_TRY(allow(call, kAction, "tsigkey/*"));
      Json arr = Json::array();
      for (const auto& k : keys_.list()) {
        arr.push_back(key_json(k));
      }
      return json_response(200, Json{{"keys", arr}});
    }
    if (n == 2 && m == V::post) {
      // {"name": "acme", "zones": ["example.com"], "names": ["_acme-challenge.*"],
      //  "secret": "<base64>" (optional: berth generates 32 random bytes)}
      BERTH_ASSIGN_OR_RETURN(auto body, parse_object_body(call.body));
      if (!body.contains("name") || !body["name"].is_string()) {
        return Error(Errc::InvalidArgument, "body must be {\"name\": \"KEYNAME\", ...}");
      }
      dns::TsigKey key;
      key.name = body["name"].get<std::string>();
      BERTH_ASSIGN_OR_RETURN(auto zones, string_list_field(body, "zones"));
      BERTH_ASSIGN_OR_RETURN(auto names, string_list_field(body, "names"));
      key.zones = zones.value_or(std::vector<std::string>{});
      key.names = names.value_or(std::vector<std::string>{});
      if (body.contains("algorithm")) {
        if (!body["algorithm"].is_string()) {
          return Error(Errc::InvalidArgument, "algorithm must be a string");
        }
        key.algorithm = body["algorithm"].get<std::string>();
      }
      if (body.contains("secret")) {
        auto raw = body["secret"].is_string() ? b64::decode(body["secret"].get<std::string>())
                                              : std::nullopt;
        if (!raw) {
          return Error(Errc::InvalidArgument, "secret must be base64");
        }
        key.secret = std::move(*raw);
      }
      BERTH_TRY(dns::normalize_tsig_key(key));
      BERTH_TRY(allow(call, kAction, "tsigkey/" + key.name));
      BERTH_ASSIGN_OR_RETURN(auto created, keys_.create(std::move(key)));
      Json out = key_json(created);
      out["secret"] = b64::encode(created.secret);
      return json_response(201, out);
    }
    if (n != 3) {
      return no_endpoint(call);
    }
    std::string name = seg[2];
    for (auto& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (m == V::get) {
      BERTH_TRY(allow(call, kAction, "tsigkey/" + name));
      auto k = keys_.find(name);
      if (!k) {
        return Error(Errc::NotFound, "tsig key " + name + " does not exist");
      }
      return json_response(200, key_json(*k));
    }
    if (m == V::delete_) {
      BERTH_TRY(allow(call, kAction, "tsigkey/" + name));
      BERTH_TRY(keys_.remove(name));
      return json_response(200, Json{{"deleted", name}});
    }
    return no_endpoint(call);
  }

  dns::TsigKeyring& keys_;
};

}  // namespace

awaitable<void> Api::handle_dns_tsig(http::Exchange& ex, std::string rest) {
  if (dns_.tsig == nullptr || dns_.pool == nullptr) {
    co_return co_await ex.send(error_response(
        Error(Errc::FailedPrecondition, "DNS TSIG keys are not available on this berthd")));
  }
  std::vector<const char*> params = {};
  co_await serve_call(ex, std::move(rest), std::move(params), kMaxTsigBody, *dns_.pool,
                      [x = dns_.tsig, iam = &iam_](const ApiCall& call) {
                        return TsigHandler(*x, *iam).serve(call);
                      });
}

}  // namespace berth::api
