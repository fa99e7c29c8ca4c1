// SPDX-License-Identifier: Apache-2.0
// Requests for a repository that does not exist answer NAME_UNKNOWN and leave berthd running
// (docker push HEADs blobs in the target repository before it POSTs an upload).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "e2e/e2e_util.h"
#include "support/harness.h"

namespace berth::test {
namespace {

TEST(MissingRepoTest, ReadsAndPushesAnswerNameUnknownAndBerthdSurvives) {
  TempDir data;
  BerthdProcess p(data.path());
  ASSERT_NO_FATAL_FAILURE(p.start());
  const std::string dg = "sha256:" + std::string(64, 'a');
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"POST", "/v2/web/nope/blobs/uploads/"}, {"HEAD", "/v2/web/nope/blobs/" + dg},
      {"GET", "/v2/web/nope/blobs/" + dg},     {"HEAD", "/v2/web/nope/manifests/v1"},
      {"GET", "/v2/web/nope/manifests/v1"},    {"GET", "/v2/web/nope/tags/list"},
  };
  for (const auto& [method, path] : requests) {
    std::string flag = method == "HEAD" ? "-I" : "-X " + method;
    auto r = run("curl -s" + p.curl_auth() + "-o /dev/null -w '%{http_code}' " + flag + " " +
                 p.url() + path);
    EXPECT_EQ(r.out, "404") << method << " " << path;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a crash comes just after
    ASSERT_TRUE(p.alive()) << "berthd died after " << method << " " << path << ":\n"
                           << read_file(p.log_path());
    if (method != "HEAD") {
      auto body = run("curl -s" + p.curl_auth() + flag + " " + p.url() + path);
      EXPECT_NE(body.out.find("NAME_UNKNOWN"), std::string::npos)
          << method << " " << path << ": " << body.out;
      if (method == "POST") {
        EXPECT_NE(body.out.find("create it with: berth repo create web/nope"), std::string::npos)
            << body.out;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ASSERT_TRUE(p.alive()) << "berthd died after " << method << " " << path << ":\n"
                             << read_file(p.log_path());
    }
  }
  EXPECT_EQ(p.terminate(), 0);
}

}  // namespace
}  // namespace berth::test
