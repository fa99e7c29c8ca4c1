// SPDX-License-Identifier: Apache-2.0
// The ACME (RFC 8555) client: account, order, authorizations answered through the caller's
// ChallengeResponder, finalize with a CSR for a new key, download the chain. Every request is
// a JWS-signed POST (POST-as-GET for reads) through HttpsClient; nonces come from each
// response's Replay-Nonce (or HEAD newNonce), and a badNonce rejection is retried with the
// nonce that came with it. Waiting on the server polls with back-off, honouring Retry-After,
// within order_timeout for the whole obtain().
#include <ctime>
#include <thread>

#include "certs/acme_http.h"
#include "certs/acme_protocol.h"
#include "certs/certs.h"
#include "certs/jws.h"
#include "certs/ossl.h"
#include "common/url.h"

namespace berth::certs {

using Clock = std::chrono::steady_clock;

namespace {

constexpr int kBadNonceRetries = 3;
constexpr auto kFirstPoll = std::chrono::milliseconds(250);
constexpr auto kMaxPoll = std::chrono::seconds(10);
constexpr auto kMinRetryAfter = std::chrono::milliseconds(200);

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

std::string rfc3339(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

// An HTTP error status without a problem document.
Error http_error(const std::string& what, const acme::HttpResponse& r) {
  std::string body = r.body.substr(0, 200);
  return Error(
      r.status >= 500 ? Errc::Unavailable : Errc::FailedPrecondition,
      "acme: " + what + ": HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body));
}

// The server's problem, verbatim, with what it was about: "acme: TYPE: DETAIL (LABEL)".
Error labelled(const acme::Problem& p, const std::string& label) {
  Error e = acme::problem_error(p, 0);
  return Error(e.code(), e.message() + " (" + label + ")");
}

}  // namespace

std::string Challenge::dns_name() const { return "_acme-challenge." + domain; }
std::string Challenge::dns_value() const { return jws::dns01_value(key_authorization); }
std::string Challenge::http_path() const { return "/.well-known/acme-challenge/" + token; }

const char* challenge_type_name(Challenge::Type t) {
  return t == Challenge::Type::dns01 ? "dns-01" : "http-01";
}

struct AcmeClient::State {
  AcmeOptions opts;
  std::string key_pem;
  detail::PkeyPtr key;
  std::string thumbprint;
  std::optional<acme::HttpsClient> http;
  std::optional<acme::Directory> dir;
  std::string account_url;
  std::string nonce;
  Clock::time_point deadline = Clock::time_point::max();

  Status load_directory() {
    if (dir) {
      return ok();
    }
    BERTH_ASSIGN_OR_RETURN(auto r, http->request("GET", opts.directory_url));
    if (r.status != 200) {
      return http_error("GET directory " + opts.directory_url, r);
    }
    BERTH_ASSIGN_OR_RETURN(dir, acme::parse_directory(r.body));
    return ok();
  }

  void keep_nonce(const acme::HttpResponse& r) {
    std::string n = r.header("replay-nonce");
    if (!n.empty()) {
      nonce = std::move(n);
    }
  }

  Result<std::string> take_nonce() {
    if (nonce.empty()) {
      BERTH_ASSIGN_OR_RETURN(auto r, http->request("HEAD", dir->new_nonce));
      keep_nonce(r);
      if (nonce.empty()) {
        return http_error("HEAD newNonce gave no Replay-Nonce", r);
      }
    }
    return std::exchange(nonce, std::string());
  }

  /// A signed POST (payload "" = POST-as-GET). With the jwk (newAccount) when kid is empty.
  Result<acme::HttpResponse> post(const std::string& url, const std::string& payload, bool with_jwk,
                                  const std::string& accept = "") {
    for (int attempt = 0;; ++attempt) {
      BERTH_ASSIGN_OR_RETURN(std::string n, take_nonce());
      BERTH_ASSIGN_OR_RETURN(std::string body,
                             jws::sign(key.get(), with_jwk ? "" : account_url, n, url, payload));
      BERTH_ASSIGN_OR_RETURN(auto r, http->request("POST", url, body, accept));
      keep_nonce(r);
      if (r.status < 400) {
        return r;
      }
      auto problem = acme::parse_problem(r.body);
      if (!problem) {
        return http_error("POST " + url, r);
      }
      if (acme::is_problem(*problem, "badNonce") && attempt < kBadNonceRetries) {
        continue;
      }
      return acme::problem_error(*problem, r.status);
    }
  }

  Status register_account() {
    BERTH_TRY(load_directory());
    if (!account_url.empty()) {
      return ok();
    }
    Json req = Json::object();
    req["termsOfServiceAgreed"] = true;
    if (!opts.email.empty()) {
      req["contact"] = Json::array();
      req["contact"].push_back("mailto:" + opts.email);
    }
    BERTH_ASSIGN_OR_RETURN(auto r, post(dir->new_account, req.dump(), true));
    account_url = r.header("location");
    if ((r.status != 200 && r.status != 201) || account_url.empty()) {
      return http_error("newAccount gave no account URL", r);
    }
    return ok();
  }

  /// Sleeps before the next poll: Retry-After when the server sent one, else back-off.
  /// DeadlineExceeded when that would pass order_timeout.
  Status wait(const acme::HttpResponse& r, std::chrono::milliseconds& backoff,
              const std::string& what) {
    std::chrono::milliseconds delay = backoff;
    if (auto ra = acme::parse_retry_after(r.header("retry-after"), unix_now())) {
      delay = std::max<std::chrono::milliseconds>(*ra, kMinRetryAfter);
    } else {
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxPoll);
    }
    if (Clock::now() + delay > deadline) {
      return Error(Errc::DeadlineExceeded,
                   "acme: " + what + " within " + std::to_string(opts.order_timeout.count()) + "s");
    }
    std::this_thread::sleep_for(delay);
    return ok();
  }

  Result<acme::Authorization> fetch_authz(const std::string& url, acme::HttpResponse& raw) {
    BERTH_ASSIGN_OR_RETURN(raw, post(url, "", false));
    return acme::parse_authorization(raw.body);
  }

  /// Posts {} to the challenge and polls the authorization until it is decided.
  Status respond_and_wait(const std::string& authz_url, const acme::ChallengeDoc& doc,
                          const std::string& label,
                          const std::function<void(std::string_view)>& say) {
    BERTH_TRY(post(doc.url, "{}", false));
    auto backoff = std::chrono::milliseconds(kFirstPoll);
    for (;;) {
      acme::HttpResponse raw;
      BERTH_ASSIGN_OR_RETURN(auto a, fetch_authz(authz_url, raw));
      if (a.status == "valid") {
        say(label + ": validated");
        return ok();
      }
      if (a.status != "pending" && a.status != "processing") {
        const acme::ChallengeDoc* bad = a.failed();
        if (bad != nullptr) {
          return labelled(*bad->error, label);
        }
        return Error(Errc::FailedPrecondition,
                     "acme: authorization " + a.status + " without an error (" + label + ")");
      }
      BERTH_TRY(wait(raw, backoff, label + ": not validated"));
    }
  }

  Status authorize(const std::string& url, ChallengeResponder& responder,
                   const std::function<void(std::string_view)>& say) {
    acme::HttpResponse raw;
    BERTH_ASSIGN_OR_RETURN(auto a, fetch_authz(url, raw));
    std::string shown = (a.wildcard ? "*." : "") + a.identifier.value;
    if (a.status == "valid") {
      say(shown + ": already authorized");
      return ok();
    }
    if (a.status != "pending") {
      std::string why = "acme: authorization for " + shown + " is " + a.status;
      if (const auto* bad = a.failed(); bad != nullptr) {
        why += ": " + acme::problem_error(*bad->error, 0).message();
      }
      return Error(Errc::FailedPrecondition, why);
    }
    auto type = responder.choose(a.identifier.value, a.wildcard);
    if (!type) {
      return Error(Errc::FailedPrecondition,
                   "acme: no way to answer a challenge for " + shown +
                       (a.wildcard ? " (a wildcard needs dns-01 through a zone berth hosts)"
                                   : " (neither http-01 nor dns-01 is possible)"));
    }
    const char* type_name = challenge_type_name(*type);
    const acme::ChallengeDoc* doc = a.find(type_name);
    if (doc == nullptr || doc->url.empty() || doc->token.empty()) {
      std::string offered;
      for (const auto& c : a.challenges) {
        offered += (offered.empty() ? "" : ", ") + c.type;
      }
      return Error(Errc::FailedPrecondition, "acme: the server offers no " +
                                                 std::string(type_name) + " challenge for " +
                                                 shown + " (it offers: " + offered + ")");
    }
    Challenge c;
    c.type = *type;
    c.domain = a.identifier.value;
    c.token = doc->token;
    c.key_authorization = jws::key_authorization(doc->token, thumbprint);
    std::string label = std::string(type_name) + " for " + shown;
    Status presented = responder.present(c);
    if (!presented) {
      responder.cleanup(c);
      return std::move(presented).error().with_context("acme: " + label + ": present");
    }
    say(label + ": presented");
    Status result = respond_and_wait(url, *doc, label, say);
    responder.cleanup(c);
    return result;
  }

  /// Polls the order while it is in one of the `waiting` states.
  Result<acme::Order> poll_order(const std::string& url, acme::Order order,
                                 std::initializer_list<std::string_view> waiting,
                                 const std::string& what) {
    auto backoff = std::chrono::milliseconds(kFirstPoll);
    acme::HttpResponse raw;
    for (;;) {
      bool wait_more = false;
      for (auto w : waiting) {
        wait_more = wait_more || order.status == w;
      }
      if (!wait_more) {
        return order;
      }
      // The first wait has no response to take a Retry-After from: plain back-off.
      BERTH_TRY(wait(raw, backoff, what + " (order " + order.status + ")"));
      BERTH_ASSIGN_OR_RETURN(raw, post(url, "", false));
      BERTH_ASSIGN_OR_RETURN(order, acme::parse_order(raw.body));
    }
  }
};

namespace {

Error order_failed(const acme::Order& o, const std::string& what) {
  if (o.error) {
    return labelled(*o.error, what);
  }
  return Error(Errc::FailedPrecondition, "acme: order is " + o.status + " (" + what + ")");
}

}  // namespace

AcmeClient::AcmeClient(std::unique_ptr<State> s) : s_(std::move(s)) {}
AcmeClient::AcmeClient(AcmeClient&&) noexcept = default;
AcmeClient& AcmeClient::operator=(AcmeClient&&) noexcept = default;
AcmeClient::~AcmeClient() = default;

Result<AcmeClient> AcmeClient::create(AcmeOptions opts, std::string account_key_pem) {
  BERTH_TRY(acme::parse_https_url(opts.directory_url));
  for (char c : opts.email) {
    if (static_cast<unsigned char>(c) <= ' ' || c == ',' || c == '<' || c == '>' || c == 0x7f) {
      return Error(Errc::InvalidArgument, "email '" + opts.email + "': not an address");
    }
  }
  if (!opts.email.empty() && opts.email.find('@') == std::string::npos) {
    return Error(Errc::InvalidArgument, "email '" + opts.email + "': not an address");
  }
  auto s = std::make_unique<State>();
  if (account_key_pem.empty()) {
    BERTH_ASSIGN_OR_RETURN(account_key_pem, generate_key());
  }
  BERTH_ASSIGN_OR_RETURN(s->key, detail::read_private_key(account_key_pem));
  BERTH_ASSIGN_OR_RETURN(auto jwk, jws::public_jwk(s->key.get()));
  BERTH_ASSIGN_OR_RETURN(s->thumbprint, jws::thumbprint(jwk));
  BERTH_ASSIGN_OR_RETURN(auto http, acme::HttpsClient::create(opts.ca_bundle, opts.timeout));
  s->http.emplace(std::move(http));
  s->key_pem = std::move(account_key_pem);
  s->opts = std::move(opts);
  return AcmeClient(std::move(s));
}

const std::string& AcmeClient::account_key_pem() const { return s_->key_pem; }
const std::string& AcmeClient::account_url() const { return s_->account_url; }

Status AcmeClient::register_account() {
  s_->deadline = Clock::now() + s_->opts.order_timeout;
  return s_->register_account();
}

Result<Issued> AcmeClient::obtain(const std::vector<std::string>& names,
                                  ChallengeResponder& responder,
                                  const std::function<void(std::string_view)>& progress) {
  State& s = *s_;
  auto say = [&progress](std::string_view line) {
    if (progress) {
      progress(line);
    }
  };
  BERTH_ASSIGN_OR_RETURN(auto sans, normalize_names(names));
  s.deadline = Clock::now() + s.opts.order_timeout;
  BERTH_TRY(s.register_account());

  Json req = Json::object();
  req["identifiers"] = Json::array();
  for (const auto& n : sans) {
    Json id = Json::object();
    id["type"] = "dns";
    id["value"] = n;
    req["identifiers"].push_back(std::move(id));
  }
  if (s.opts.requested_lifetime.count() > 0) {
    req["notAfter"] = rfc3339(unix_now() + s.opts.requested_lifetime.count());
  }
  BERTH_ASSIGN_OR_RETURN(auto r, s.post(s.dir->new_order, req.dump(), false));
  std::string order_url = r.header("location");
  if (r.status != 201 && r.status != 200) {
    return http_error("newOrder", r);
  }
  if (order_url.empty()) {
    return Error(Errc::Unavailable, "acme: newOrder gave no order URL");
  }
  BERTH_ASSIGN_OR_RETURN(auto order, acme::parse_order(r.body));
  say("order created for " + join(sans));
  if (order.status == "invalid") {
    return order_failed(order, "new order");
  }

  for (const auto& authz_url : order.authorizations) {
    BERTH_TRY(s.authorize(authz_url, responder, say));
  }
  BERTH_ASSIGN_OR_RETURN(order, s.poll_order(order_url, order, {"pending"}, "order not ready"));
  if (order.status != "ready" && order.status != "valid") {
    return order_failed(order, "after authorizations");
  }

  BERTH_ASSIGN_OR_RETURN(auto leaf_key, detail::new_p256_key());
  if (order.status == "ready") {
    BERTH_ASSIGN_OR_RETURN(std::string csr, detail::make_csr_der(sans, leaf_key.get()));
    Json fin = Json::object();
    fin["csr"] = b64::url_encode(csr);
    if (order.finalize.empty()) {
      return Error(Errc::Unavailable, "acme: the order has no finalize URL");
    }
    BERTH_ASSIGN_OR_RETURN(r, s.post(order.finalize, fin.dump(), false));
    BERTH_ASSIGN_OR_RETURN(order, acme::parse_order(r.body));
    say("finalizing");
  } else {
    // Valid before we finalized: some earlier request finished it with another key.
    return Error(Errc::FailedPrecondition, "acme: the order was already finalized");
  }
  BERTH_ASSIGN_OR_RETURN(
      order, s.poll_order(order_url, order, {"processing", "ready"}, "certificate not issued"));
  if (order.status != "valid" || order.certificate.empty()) {
    return order_failed(order, "finalize");
  }
  BERTH_ASSIGN_OR_RETURN(r,
                         s.post(order.certificate, "", false, "application/pem-certificate-chain"));
  Issued out;
  out.chain_pem = std::move(r.body);
  if (!out.chain_pem.empty() && out.chain_pem.back() != '\n') {
    out.chain_pem += '\n';
  }
  auto info = inspect(out.chain_pem);
  if (!info) {
    return Error(Errc::Unavailable,
                 "acme: the certificate the server sent does not parse: " + info.error().message());
  }
  out.info = std::move(*info);
  BERTH_ASSIGN_OR_RETURN(out.key_pem, detail::private_key_pem(leaf_key.get()));
  BERTH_ASSIGN_OR_RETURN(bool matches, key_matches(out.chain_pem, out.key_pem));
  if (!matches) {
    return Error(Errc::Unavailable, "acme: the certificate the server sent is not for our key");
  }
  say("certificate issued: serial " + out.info.serial + ", expires " + rfc3339(out.info.not_after));
  return out;
}

}  // namespace berth::certs
