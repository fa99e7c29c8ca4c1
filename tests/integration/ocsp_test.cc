// SPDX-License-Identifier: Apache-2.0
// OCSP stapling against a real responder: `openssl ocsp` serving a CA's index on a loopback
// port. certs::fetch_ocsp asks it about a good and a revoked leaf; the router staples the good
// answer to the handshakes that ask for one, as `openssl s_client -status` sees it.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <thread>

#include "certs/certs.h"
#include "common/asio.h"
#include "router/router.h"
#include "support/harness.h"
#include "support/pebble.h"

namespace berth::test {
namespace {

using namespace std::chrono_literals;

// `openssl ocsp` on 127.0.0.1:port, answering from dir/index.txt (openssl ca's format: V(alid)
// or R(evoked), expiry, revocation time, serial, file, subject) and signing with the issuer's
// own certificate and key (dir/issuer.pem, dir/issuer.key). Stopped with the object.
class OpensslOcsp {
 public:
  OpensslOcsp(const std::string& dir, uint16_t port) {
    write_file(dir + "/index.txt.attr", "unique_subject = no\n");
    // Its request log stays out of the test output.
    pid_ = spawn_server({"openssl", "ocsp", "-index", dir + "/index.txt", "-port",
                         std::to_string(port), "-rsigner", dir + "/issuer.pem", "-rkey",
                         dir + "/issuer.key", "-CA", dir + "/issuer.pem", "-ndays", "1"},
                        dir + "/ocsp.log");
    // Up when it says so (a probe request would end it: it exits on a malformed request).
    bool up = eventually(
        [&] { return has(read_file(dir + "/ocsp.log"), "waiting for OCSP client connections"); },
        20s, 50ms);
    EXPECT_TRUE(up) << "openssl ocsp did not start: " << read_file(dir + "/ocsp.log");
  }
  ~OpensslOcsp() { stop_child(pid_, std::chrono::seconds(2)); }
  OpensslOcsp(const OpensslOcsp&) = delete;
  OpensslOcsp& operator=(const OpensslOcsp&) = delete;

 private:
  pid_t pid_ = -1;
};

// A CA whose leaves name an OCSP responder on 127.0.0.1:port, and that responder.
class OcspResponder {
 public:
  OcspResponder() : port_(free_port()) {
    std::string url = "http://127.0.0.1:" + std::to_string(port_);
    auto r = run("cd " + dir_.path() +
                 " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout issuer.key -out issuer.pem -days 2 -subj /CN=berth-ocsp-test-ca 2>&1");
    EXPECT_EQ(r.code, 0) << r.all();
    good_ = leaf("good", "01", url);
    revoked_ = leaf("revoked", "02", url);
    write_file(dir_ / "index.txt",
               "V\t301231235959Z\t\t01\tunknown\t/CN=good.ocsp.test\n"
               "R\t301231235959Z\t240101000000Z\t02\tunknown\t/CN=revoked.ocsp.test\n");
    server_.emplace(dir_.path(), port_);
  }

  const std::string& good() const { return good_; }
  const std::string& revoked() const { return revoked_; }
  std::string key(const std::string& name) const { return read_file(dir_ / (name + ".key")); }
  std::string ca_file() const { return dir_ / "issuer.pem"; }

 private:
  // A leaf for NAME.ocsp.test with the given serial, its AIA naming the responder; returns the
  // chain (leaf, then the CA).
  std::string leaf(const std::string& name, const std::string& serial, const std::string& url) {
    write_file(
        dir_ / (name + ".ext"),
        "subjectAltName=DNS:" + name + ".ocsp.test\nauthorityInfoAccess=OCSP;URI:" + url + "\n");
    auto r = run("cd " + dir_.path() + " && openssl req -newkey ec -pkeyopt " +
                 "ec_paramgen_curve:P-256 -nodes -keyout " + name + ".key -out " + name +
                 ".csr -subj /CN=" + name + ".ocsp.test 2>&1 && openssl x509 -req -in " + name +
                 ".csr -CA issuer.pem -CAkey issuer.key -set_serial 0x" + serial +
                 " -days 1 -extfile " + name + ".ext -out " + name + ".pem 2>&1");
    EXPECT_EQ(r.code, 0) << r.all();
    return read_file(dir_ / (name + ".pem")) + read_file(dir_ / "issuer.pem");
  }

  TempDir dir_;
  uint16_t port_;
  std::string good_, revoked_;
  std::optional<OpensslOcsp> server_;
};

TEST(Ocsp, FetchesAGoodAnswerAndRefusesARevokedCertificate) {
  OcspResponder ocsp;
  EXPECT_EQ(certs::ocsp_url(ocsp.good()).rfind("http://127.0.0.1:", 0), 0u);

  auto good = certs::fetch_ocsp(ocsp.good(), 10s);
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_FALSE(good->der.empty());
  int64_t now = std::time(nullptr);
  EXPECT_LE(good->this_update, now + 300);
  EXPECT_GT(good->next_update, now + 3600);  // -ndays 1

  auto revoked = certs::fetch_ocsp(ocsp.revoked(), 10s);
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code(), Errc::FailedPrecondition);
  EXPECT_NE(revoked.error().message().find("revoked"), std::string::npos)
      << revoked.error().message();
}

TEST(Ocsp, NoResponderNamedOrNoneListeningIsAClearError) {
  TempDir dir;
  auto r = run("cd " + dir.path() +
               " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
               "-keyout k.pem -out c.pem -days 1 -subj /CN=plain 2>&1");
  ASSERT_EQ(r.code, 0) << r.all();
  std::string plain = read_file(dir / "c.pem");
  EXPECT_EQ(certs::ocsp_url(plain), "");
  auto none = certs::fetch_ocsp(plain + plain, 5s);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Errc::NotFound);

  std::string chain;
  {
    OcspResponder gone;  // its leaves name a port nobody listens on once it is stopped
    chain = gone.good();
  }
  auto away = certs::fetch_ocsp(chain, 5s);
  ASSERT_FALSE(away);
  EXPECT_EQ(away.error().code(), Errc::Unavailable) << away.error().message();
}

TEST(Ocsp, TheRouterStaplesTheAnswerToHandshakesThatAskForIt) {
  OcspResponder ocsp;
  auto staple = certs::fetch_ocsp(ocsp.good(), 10s);
  ASSERT_TRUE(staple) << staple.error().message();

  asio::io_context io;
  router::RouterOptions opts;
  router::Router r({&io}, opts);
  auto port = r.listen_tls("127.0.0.1", 0);
  ASSERT_TRUE(port) << port.error().message();
  r.start();
  std::thread t([&io] {
    auto guard = asio::make_work_guard(io);
    io.run();
  });
  auto s_client = [&](const std::string& sni) {
    return run("openssl s_client -connect 127.0.0.1:" + std::to_string(*port) + " -servername " +
               sni + " -status -CAfile " + ocsp.ca_file() + " </dev/null 2>&1");
  };
  router::TlsCertificate with{{"good.ocsp.test"}, ocsp.good(), ocsp.key("good"), staple->der};
  router::TlsCertificate without{{"revoked.ocsp.test"}, ocsp.revoked(), ocsp.key("revoked"), ""};
  auto pub = r.publish_certificates({with, without});
  EXPECT_TRUE(pub) << pub.error().message();

  auto stapled = s_client("good.ocsp.test");
  EXPECT_NE(stapled.out.find("OCSP Response Status: successful"), std::string::npos) << stapled.out;
  EXPECT_NE(stapled.out.find("Cert Status: good"), std::string::npos) << stapled.out;
  auto bare = s_client("revoked.ocsp.test");
  EXPECT_NE(bare.out.find("OCSP response: no response sent"), std::string::npos) << bare.out;

  // Bytes that are no OCSP response are refused, and the published set stays.
  router::TlsCertificate junk = with;
  junk.ocsp_der = "not DER";
  auto bad = r.publish_certificates({junk});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("ocsp_der"), std::string::npos) << bad.error().message();
  stapled = s_client("good.ocsp.test");
  EXPECT_NE(stapled.out.find("Cert Status: good"), std::string::npos) << stapled.out;

  r.stop();
  io.stop();
  t.join();
}

// berthd with an ACME CA whose certificates name an OCSP responder (pebble's ocspResponderURL,
// answered by `openssl ocsp` with pebble's intermediate): the domain worker asks for a linked
// name's certificate status and the router staples the answer. While the responder does not
// know the certificate, it is served without a staple, and the log says why.
TEST(Ocsp, BerthdStaplesTheStatusOfAnAcmeCertificate) {
  if (!Pebble::available() || !have("curl")) {
    GTEST_SKIP() << "pebble or curl is not installed (scripts/setup --test installs them)";
  }
  uint16_t dns_port = free_port(), ocsp_port = free_port();
  Pebble::Options o;
  o.dns_port = dns_port;
  o.ocsp_responder_url = "http://127.0.0.1:" + std::to_string(ocsp_port);
  Pebble pebble(o);
  std::string why;
  ASSERT_TRUE(pebble.start(&why)) << why;
  // The responder, up before anything names it: pebble's intermediate signs; its index knows
  // no certificate of berth's yet.
  TempDir data, t, responder_dir;
  write_file(responder_dir / "issuer.pem", pebble.management("/intermediates/0", &why));
  write_file(responder_dir / "issuer.key", pebble.management("/intermediate-keys/0", &why));
  ASSERT_TRUE(why.empty()) << why;
  const std::string index = responder_dir / "index.txt";
  write_file(index, "V\t301231235959Z\t\t01\tunknown\t/CN=nobody\n");
  OpensslOcsp responder(responder_dir.path(), ocsp_port);

  write_file(t / "berthd.yaml",
             "version: 1\ntls:\n  issuer: acme\nacme:\n  directory_url: " + pebble.directory_url() +
                 "\n  ca_bundle: " + pebble.ca_bundle() + "\n");
  // Pebble resolves every name, and validates DNS-01, through this address of berth's DNS.
  auto p = std::make_unique<BerthdProcess>(
      data.path(), std::vector<std::string>{"--config", t / "berthd.yaml", "--dns-listen",
                                            "127.0.0.1:" + std::to_string(dns_port)});
  ASSERT_NO_FATAL_FAILURE(p->start());
  ASSERT_EQ(p->cli("service create web --image web/app:v1 --auto-deploy").code, 0);
  ASSERT_EQ(p->cli("dns zone create example.com").code, 0);
  auto link = p->cli("domain link web example.com");
  ASSERT_EQ(link.code, 0) << link.all() << pebble.log();
  ASSERT_TRUE(has(link.out, "example.com: ACTIVE")) << link.out;

  auto s_client = [&p] {
    return run("openssl s_client -connect 127.0.0.1:" + std::to_string(p->router_tls_port()) +
               " -servername example.com -status </dev/null 2>&1")
        .out;
  };
  bool said = false;
  for (int i = 0; i < 200 && !said; ++i) {
    said = has(read_file(p->log_path()), "no OCSP response to staple");
    if (!said) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_TRUE(said) << read_file(p->log_path());
  std::string bare = s_client();
  EXPECT_TRUE(has(bare, "OCSP response: no response sent")) << bare;

  // The responder learns the served certificate. openssl ocsp reads a changed index after its
  // next answer, so one request (for any serial) comes first.
  auto serial =
      run("echo | openssl s_client -connect 127.0.0.1:" + std::to_string(p->router_tls_port()) +
          " -servername example.com 2>/dev/null | openssl x509 -noout -serial");
  ASSERT_TRUE(serial.out.starts_with("serial=")) << serial.all();
  write_file(index, "V\t301231235959Z\t\t" + trimmed(serial.out).substr(7) +
                        "\tunknown\t/CN=example.com\n");
  auto nudge =
      run("openssl ocsp -issuer " + responder_dir / "issuer.pem" +
          " -serial 0x01 -noverify -url http://127.0.0.1:" + std::to_string(ocsp_port) + " 2>&1");
  ASSERT_TRUE(has(nudge.out, "This Update")) << nudge.all();  // an answer, whichever index

  // A failed fetch is tried again in 5 minutes; a restart asks at once. (Pebble is done with
  // berth's DNS: the restart needs no fixed port.)
  ASSERT_EQ(p->terminate(), 0);
  p = std::make_unique<BerthdProcess>(data.path(),
                                      std::vector<std::string>{"--config", t / "berthd.yaml"});
  ASSERT_NO_FATAL_FAILURE(p->start());
  std::string stapled;
  for (int i = 0; i < 200 && !has(stapled, "Cert Status: good"); ++i) {
    if (i > 0) {
      std::this_thread::sleep_for(100ms);
    }
    stapled = s_client();
  }
  EXPECT_TRUE(has(stapled, "OCSP Response Status: successful")) << stapled;
  EXPECT_TRUE(has(stapled, "Cert Status: good")) << stapled << read_file(p->log_path());
  EXPECT_EQ(p->terminate(), 0);
}

}  // namespace
}  // namespace berth::test
