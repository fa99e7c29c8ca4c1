// SPDX-License-Identifier: Apache-2.0
// OCSP responses to staple (RFC 6960 over HTTP POST, RFC 6066 status_request): asked of the
// responder the leaf certificate names in its Authority Information Access, checked as a
// client would check them (signed for the issuer, "good", current) before the router hands
// them out. Blocking.
#include <openssl/ocsp.h>

#include <ctime>

#include "certs/certs.h"
#include "certs/ossl.h"
#include "http/client.h"

namespace berth::certs {

using detail::ossl_fail;
using detail::read_certificates;

namespace {

using CertIdPtr = ossl::Ptr<OCSP_CERTID, OCSP_CERTID_free>;
void free_x509_stack(STACK_OF(X509) * p) { sk_X509_free(p); }  // a macro: no address to take

// ASN1_GENERALIZEDTIME to Unix seconds (0 when absent or unreadable).
int64_t unix_time(const ASN1_GENERALIZEDTIME* t) {
  if (t == nullptr) {
    return 0;
  }
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    return 0;
  }
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::string ocsp_url(std::string_view chain_pem) {
  auto chain = read_certificates(chain_pem);
  if (!chain || chain->empty()) {
    return "";
  }
  ossl::Ptr<STACK_OF(OPENSSL_STRING), X509_email_free> urls(X509_get1_ocsp(chain->front().get()));
  if (!urls || sk_OPENSSL_STRING_num(urls.get()) == 0) {
    return "";
  }
  return sk_OPENSSL_STRING_value(urls.get(), 0);
}

Result<OcspStaple> fetch_ocsp(std::string_view chain_pem, std::chrono::seconds timeout) {
  BERTH_ASSIGN_OR_RETURN(auto chain, read_certificates(chain_pem));
  if (chain.size() < 2) {
    return Error(Errc::InvalidArgument,
                 "OCSP needs the issuer's certificate after the leaf in the chain");
  }
  X509* leaf = chain[0].get();
  X509* issuer = chain[1].get();
  std::string url = ocsp_url(chain_pem);
  if (url.empty()) {
    return Error(Errc::NotFound, "the certificate names no OCSP responder");
  }
  // The request: one CertID (SHA-1 of the issuer's name and key, as responders expect).
  CertIdPtr id(OCSP_cert_to_id(nullptr, leaf, issuer));
  ossl::Ptr<OCSP_REQUEST, OCSP_REQUEST_free> req(OCSP_REQUEST_new());
  if (!id || !req) {
    return ossl_fail(Errc::Internal, "OCSP request");
  }
  CertIdPtr id_for_req(OCSP_CERTID_dup(id.get()));
  if (!id_for_req || OCSP_request_add0_id(req.get(), id_for_req.get()) == nullptr) {
    return ossl_fail(Errc::Internal, "OCSP request");
  }
  id_for_req.release();  // the request owns it now
  unsigned char* der = nullptr;
  int der_len = i2d_OCSP_REQUEST(req.get(), &der);
  if (der_len <= 0) {
    return ossl_fail(Errc::Internal, "OCSP request");
  }
  std::string body(reinterpret_cast<char*>(der), static_cast<size_t>(der_len));
  OPENSSL_free(der);

  BERTH_ASSIGN_OR_RETURN(auto client, http::Client::create({"", timeout, "berth"}));
  http::ClientRequest hr;
  hr.method = "POST";
  hr.url = url;
  hr.headers = {{"Content-Type", "application/ocsp-request"},
                {"Accept", "application/ocsp-response"}};
  hr.body = std::move(body);
  hr.max_body = 64 * 1024;
  auto resp = client.send(hr);
  if (!resp) {
    return Error(Errc::Unavailable, "OCSP responder " + url + ": " + resp.error().message());
  }
  if (resp->status != 200) {
    return Error(Errc::Unavailable,
                 "OCSP responder " + url + " answered HTTP " + std::to_string(resp->status));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(resp->body.data());
  ossl::Ptr<OCSP_RESPONSE, OCSP_RESPONSE_free> response(
      d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(resp->body.size())));
  if (!response) {
    return ossl_fail(Errc::FailedPrecondition, "OCSP responder " + url + ": not an OCSP response");
  }
  int rs = OCSP_response_status(response.get());
  if (rs != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return Error(Errc::FailedPrecondition,
                 "OCSP responder " + url + ": " + OCSP_response_status_str(rs));
  }
  ossl::Ptr<OCSP_BASICRESP, OCSP_BASICRESP_free> basic(OCSP_response_get1_basic(response.get()));
  if (!basic) {
    return ossl_fail(Errc::FailedPrecondition, "OCSP responder " + url + ": no basic response");
  }
  // Signed by the issuer itself, or by a responder certificate the issuer signed for OCSP.
  ossl::Ptr<STACK_OF(X509), free_x509_stack> trusted(sk_X509_new_null());
  X509_STORE* store = X509_STORE_new();
  if (!trusted || store == nullptr || sk_X509_push(trusted.get(), issuer) <= 0 ||
      X509_STORE_add_cert(store, issuer) != 1) {
    X509_STORE_free(store);
    return ossl_fail(Errc::Internal, "OCSP verification");
  }
  int verified = OCSP_basic_verify(basic.get(), trusted.get(), store, OCSP_TRUSTOTHER);
  X509_STORE_free(store);
  if (verified <= 0) {
    return ossl_fail(Errc::FailedPrecondition,
                     "OCSP responder " + url + ": the response is not signed for the issuer");
  }
  int status = -1;
  int reason = -1;
  ASN1_GENERALIZEDTIME* this_update = nullptr;
  ASN1_GENERALIZEDTIME* next_update = nullptr;
  if (OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, nullptr, &this_update,
                            &next_update) != 1) {
    return Error(Errc::FailedPrecondition,
                 "OCSP responder " + url + ": the response does not cover this certificate");
  }
  if (status != V_OCSP_CERTSTATUS_GOOD) {
    return Error(Errc::FailedPrecondition,
                 "OCSP responder " + url + ": the certificate is " + OCSP_cert_status_str(status));
  }
  // Five minutes of clock skew either way, as OpenSSL's own clients allow.
  if (OCSP_check_validity(this_update, next_update, 300, -1) != 1) {
    return ossl_fail(Errc::FailedPrecondition,
                     "OCSP responder " + url + ": the response is not current");
  }
  OcspStaple out;
  out.der = std::move(resp->body);
  out.this_update = unix_time(this_update);
  out.next_update = unix_time(next_update);
  return out;
}

}  // namespace berth::certs
