// SPDX-License-Identifier: Apache-2.0
// A service's confinement options through the CLI and the API (--seccomp, --pids-limit,
// --read-only), and the service:Privileged right that `--seccomp unconfined` needs. The image
// is never pushed and services follow their tag, so nothing starts: the stored spec and the
// authorization are under test (runtime_confinement_test runs the resulting bundles).
#include <gtest/gtest.h>

#include <string>

#include "support/harness.h"

namespace berth::test {
namespace {

std::string spec_of(const TestDaemon& d, const std::string& name) {
  auto r = d.cli("service show " + name + " --json");
  EXPECT_EQ(r.code, 0) << r.all();
  return jq(r.out, ".spec | {seccomp, pids_limit, read_only}");
}

TEST(ServiceConfinementTest, DefaultsAreConfined) {
  TestDaemon d;
  ASSERT_EQ(d.cli("service create plain --image web/app:v1 --auto-deploy").code, 0);
  EXPECT_EQ(spec_of(d, "plain"), R"({"seccomp":"default","pids_limit":1024,"read_only":false})");
  auto show = d.cli("service show plain");
  EXPECT_TRUE(has(show.out, "confinement: seccomp default, pids 1024, rootfs writable"))
      << show.out;
}

TEST(ServiceConfinementTest, FlagsSetAndUpdateTheSpec) {
  TestDaemon d;
  auto cr = d.cli("service create ro --image web/app:v1 --auto-deploy --read-only --pids-limit 64");
  ASSERT_EQ(cr.code, 0) << cr.all();
  EXPECT_EQ(spec_of(d, "ro"), R"({"seccomp":"default","pids_limit":64,"read_only":true})");
  auto up = d.cli("service update ro --no-read-only --pids-limit 0");
  ASSERT_EQ(up.code, 0) << up.all();
  EXPECT_EQ(spec_of(d, "ro"), R"({"seccomp":"default","pids_limit":0,"read_only":false})");
  EXPECT_TRUE(has(d.cli("service show ro").out, "pids unlimited, rootfs writable"));
  // Out of range: the API's error, naming the field.
  auto low = d.cli("service update ro --pids-limit 3");
  EXPECT_EQ(low.code, 2) << low.all();
  EXPECT_TRUE(has(low.err, "pids_limit: must be at least 16")) << low.all();
  auto bad = d.cli("service update ro --seccomp off");
  EXPECT_EQ(bad.code, 2) << bad.all();
}

const char* kServiceAdmin = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["service:CreateService","service:UpdateService",
   "service:GetService","service:Deploy"],"Resource":["service/*"]},
  {"Effect":"Allow","Action":["registry:Pull"],"Resource":["repository/*"]}]})";
const char* kPrivileged = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["service:Privileged"],"Resource":["service/lab"]}]})";

TEST(ServiceConfinementTest, UnconfinedNeedsServicePrivileged) {
  TestDaemon d;
  TempDir t;
  ASSERT_EQ(d.cli("iam user create dev").code, 0);
  write_file(t / "svc.json", kServiceAdmin);
  write_file(t / "priv.json", kPrivileged);
  ASSERT_EQ(d.cli("iam policy put --user dev services --file " + (t / "svc.json")).code, 0);
  auto key = d.cli("iam key create dev --json");
  ASSERT_EQ(key.code, 0) << key.all();
  AdminCredentials dev;
  dev.key_id = jq(key.out, ".access_key_id");
  dev.key_id = dev.key_id.substr(1, dev.key_id.size() - 2);
  dev.secret = jq(key.out, ".secret_access_key");
  dev.secret = dev.secret.substr(1, dev.secret.size() - 2);

  // Confined services need no extra right.
  auto ok = d.cli_as(dev, "service create lab --image web/app:v1 --auto-deploy --read-only");
  ASSERT_EQ(ok.code, 0) << ok.all();
  // Turning seccomp off does: on create and on update.
  auto cr = d.cli_as(dev,
                     "service create lab2 --image web/app:v1 --auto-deploy "
                     "--seccomp unconfined");
  EXPECT_EQ(cr.code, 5) << cr.all();
  EXPECT_TRUE(has(cr.err, "may not service:Privileged on service lab2")) << cr.all();
  auto up = d.cli_as(dev, "service update lab --seccomp unconfined");
  EXPECT_EQ(up.code, 5) << up.all();
  EXPECT_TRUE(has(up.err, "may not service:Privileged on service lab")) << up.all();
  EXPECT_EQ(spec_of(d, "lab"), R"({"seccomp":"default","pids_limit":1024,"read_only":true})");

  // With the right, on this service only.
  ASSERT_EQ(d.cli("iam policy put --user dev privileged --file " + (t / "priv.json")).code, 0);
  auto up2 = d.cli_as(dev, "service update lab --seccomp unconfined");
  ASSERT_EQ(up2.code, 0) << up2.all();
  EXPECT_EQ(spec_of(d, "lab"), R"({"seccomp":"unconfined","pids_limit":1024,"read_only":true})");
  // Any later change to an unconfined service needs it too.
  auto cr2 = d.cli_as(dev,
                      "service create lab2 --image web/app:v1 --auto-deploy "
                      "--seccomp unconfined");
  EXPECT_EQ(cr2.code, 5) << cr2.all();
  // The admin holds every right.
  auto adm = d.cli("service create lab3 --image web/app:v1 --auto-deploy --seccomp unconfined");
  EXPECT_EQ(adm.code, 0) << adm.all();
}

}  // namespace
}  // namespace berth::test
