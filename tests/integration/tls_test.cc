// SPDX-License-Identifier: Apache-2.0
// TLS on the listener: the API and the registry (token flow, uploads, blob GETs without
// sendfile) over HTTPS with a certificate the clients verify.
#include <gtest/gtest.h>

#include "support/harness.h"

namespace berth::test {
namespace {

TEST(TlsTest, ApiAndRegistryServeHttpsWithAVerifiedCertificate) {
  TempDir tls;
  auto gen = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                 tls / "key.pem" + " -out " + tls / "cert.pem" +
                 " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1");
  ASSERT_EQ(gen.code, 0) << gen.all();
  TestDaemon d([&](config::Config& c) {
    c.tls.cert_file = tls / "cert.pem";
    c.tls.key_file = tls / "key.pem";
  });
  std::string https = "https://" + d.host();
  auto who = run("curl -s --cacert " + tls / "cert.pem" + " -u " + d.creds() + " " + https +
                 "/api/v1/auth/whoami");
  ASSERT_EQ(who.code, 0) << who.all();
  EXPECT_EQ(who.out, "{\"principal\":\"user/admin\"}\n");
  // Plain HTTP to the TLS listener gets no answer.
  EXPECT_NE(run("curl -s -m 5 -u " + d.creds() + " http://" + d.host() + "/api/v1/auth/whoami")
                .out.find("principal"),
            0u);
  auto create = run("curl -s --cacert " + tls / "cert.pem" + " -u " + d.creds() + " -X POST " +
                    https + "/api/v1/repositories -d '{\"name\":\"web/app\"}'");
  ASSERT_EQ(create.code, 0) << create.all();
  // The Bearer challenge names an https realm.
  auto challenge = run("curl -s -i --cacert " + tls / "cert.pem" + " " + https + "/v2/");
  EXPECT_NE(challenge.out.find("realm=\"" + https + "/v2/token\""), std::string::npos)
      << challenge.out;

  // skopeo verifies the certificate (ca.crt in its cert dir) and does the token flow.
  ASSERT_EQ(run("mkdir -p " + tls / "certs.d" + " && cp " + tls / "cert.pem" + " " +
                tls / "certs.d/ca.crt")
                .code,
            0);
  std::string layout = tls / "layout";
  ASSERT_EQ(make_busybox_layout(layout, "v1"), "");
  auto push = run("skopeo copy --dest-cert-dir " + tls / "certs.d" + " --dest-creds " + d.creds() +
                  " oci:" + layout + ":v1 docker://" + d.host() + "/web/app:v1");
  ASSERT_EQ(push.code, 0) << push.all();
  auto pull = run("skopeo copy --src-cert-dir " + tls / "certs.d" + " --src-creds " + d.creds() +
                  " docker://" + d.host() + "/web/app:v1 oci:" + tls / "back:v1");
  ASSERT_EQ(pull.code, 0) << pull.all();
  auto cmp = run("set -e; for f in " + tls / "back/blobs/sha256/*" + "; do cmp \"$f\" " + layout +
                 "/blobs/sha256/$(basename \"$f\"); done");
  EXPECT_EQ(cmp.code, 0) << cmp.all();
}

TEST(TlsTest, HalfATlsConfigIsRefusedBeforeStart) {
  config::Config c;
  c.tls.cert_file = "/nonexistent/cert.pem";
  auto s = config::validate(c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("tls.key_file"), std::string::npos) << s.error().message();
  c.tls.key_file = "/nonexistent/key.pem";
  auto s2 = config::validate(c);
  ASSERT_FALSE(s2);
  EXPECT_NE(s2.error().message().find("cannot read"), std::string::npos) << s2.error().message();
}

}  // namespace
}  // namespace berth::test
