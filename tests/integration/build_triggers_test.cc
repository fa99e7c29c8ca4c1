// SPDX-License-Identifier: Apache-2.0
// The build service's triggers and guards with real parts (build_service_fixture.h): webhooks,
// berth's own git remote, file remotes, buildspec.yml, symlinked inputs, role denials on the
// push and the base image, and projects' create/update/delete.
#include "build_service_fixture.h"

namespace berth::builder {
namespace {

// The fixture's helpers, and its using-declarations (stdfs, test::git, HasSubstr, ...).
using namespace build_test;

TEST_F(BuildServiceTest, Webhooks) {
  svc_ = std::make_unique<Service>(deps());
  auto created = create();
  std::string secret = created.webhook_secret;
  std::string sha = std::string(40, 'a');
  std::string push_main =
      R"({"ref":"refs/heads/main","before":")" + std::string(40, '0') + R"(","after":")" + sha +
      R"(","repository":{"full_name":"o/a","clone_url":"https://example.com/o/a.git"}})";
  std::string push_dev = push_main;
  push_dev.replace(push_dev.find("main"), 4, "dev");

  auto missing =
      svc_->github_webhook("nope", "push", github_signature(secret, push_main), push_main);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404u);

  auto bad = svc_->github_webhook("web", "push", github_signature("wrong", push_main), push_main);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401u);
  EXPECT_EQ(bad->message, "signature does not match");
  auto unsigned_hook = svc_->github_webhook("web", "push", "", push_main);
  ASSERT_TRUE(unsigned_hook);
  EXPECT_EQ(unsigned_hook->status, 401u);
  EXPECT_EQ(unsigned_hook->message, "X-Hub-Signature-256 header is missing");
  auto none = svc_->list_builds("web", 10);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  std::string ping = R"({"zen":"Keep it logically awesome.","hook_id":1})";
  auto p = svc_->github_webhook("web", "ping", github_signature(secret, ping), ping);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200u);
  EXPECT_EQ(p->build_id, 0);

  auto ignored = svc_->github_webhook("web", "push", github_signature(secret, push_dev), push_dev);
  ASSERT_TRUE(ignored);
  EXPECT_EQ(ignored->status, 202u);
  EXPECT_EQ(ignored->message, "branch dev does not match main");
  EXPECT_EQ(ignored->build_id, 0);

  auto malformed = svc_->github_webhook("web", "push", github_signature(secret, "{}"), "{}");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400u);

  auto t0 = std::chrono::steady_clock::now();
  auto queued = svc_->github_webhook("web", "push", github_signature(secret, push_main), push_main);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(queued) << queued.error().message();
  EXPECT_EQ(queued->status, 202u);
  EXPECT_GT(queued->build_id, 0);
  EXPECT_EQ(queued->message,
            "push to main at aaaaaaa: build " + std::to_string(queued->build_id) + " queued");
  // It answers without waiting for the build: GitHub gives a webhook 10 s.
  EXPECT_LT(took, std::chrono::seconds(10));
  auto b = svc_->get_build(queued->build_id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, "QUEUED");
  EXPECT_EQ(b->commit, sha);
  EXPECT_EQ(b->trigger, "webhook push to main");
  // The webhook secret never reaches a log.
  EXPECT_THAT(log_of(queued->build_id), Not(HasSubstr(secret)));
}

TEST_F(BuildServiceTest, DeniedPushFailsWithTheAccessDeniedSentence) {
  start_service(deps());
  create(Json{{"role", "puller"}});
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.phase, "PUSH");
  EXPECT_EQ(done.reason, "AccessDenied: role puller may not registry:Push on repository web/app")
      << failure_context(b->id);
  EXPECT_THAT(log_of(b->id),
              HasSubstr("FAILED: AccessDenied: role puller may not registry:Push on repository "
                        "web/app"));
  EXPECT_EQ(tag_digest("web/app", "latest"), "");

  // A role that may push to web/* builds the same project.
  auto upd = project_from_request(Json{{"role", "pusher"}}, svc_->get_project("web")->spec, true);
  ASSERT_TRUE(upd);
  ASSERT_TRUE(svc_->update_project("web", *upd));
  auto ok_build = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(ok_build);
  BuildView good = wait_done(ok_build->id);
  EXPECT_EQ(good.status, "SUCCEEDED") << good.reason << "\n" << failure_context(ok_build->id);
}

TEST_F(BuildServiceTest, RoleWithoutPullOnTheBaseImage) {
  ASSERT_TRUE(store_->create_principal(store::Principal{"role", "nobody", 1}));
  ASSERT_TRUE(authz_->reload());
  start_service(deps());
  create(Json{{"role", "nobody"}});
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_THAT(done.reason,
              HasSubstr("AccessDenied: role nobody may not registry:Pull on repository web/base"));
}

TEST_F(BuildServiceTest, BuildspecGeneratesAFileTheDockerfileCopies) {
  start_service(deps(std::chrono::seconds(120), "web/base:1"));
  create();
  commit_files({{"buildspec.yml",
                 "version: 0.2\n"
                 "env:\n  variables:\n    GREETING: generated-by-buildspec\n"
                 "phases:\n"
                 "  install:\n    commands:\n      - echo tool > /tool.txt\n"
                 "  build:\n    commands:\n"
                 "      - cat /tool.txt\n"
                 "      - echo \"$GREETING\" > gen.txt\n"},
                {"Dockerfile", "FROM web/base:1\nCOPY gen.txt /gen.txt\nRUN cat /gen.txt\n"}},
               "buildspec");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  ASSERT_EQ(done.status, "SUCCEEDED") << done.reason << "\n" << failure_context(b->id);
  std::string text = log_of(b->id);
  EXPECT_THAT(text, HasSubstr("buildspec.yml: phase build"));
  EXPECT_THAT(text, HasSubstr("$ echo \"$GREETING\" > gen.txt"));
  EXPECT_THAT(text, HasSubstr(" tool\n"));  // the install phase's change is seen by build
  // Once by the echo in RUN cat: the generated file made it into the image.
  EXPECT_THAT(text.substr(text.find("Step 3/3")), HasSubstr("generated-by-buildspec"));
}

TEST_F(BuildServiceTest, BuildspecFailures) {
  start_service(deps(std::chrono::seconds(120), "web/base:1"));
  create();
  commit_files({{"buildspec.yml",
                 "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n"
                 "      - exit 2\n"}},
               "failing");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml: phases.build: `exit 2` exited with code 2")
      << failure_context(b->id);

  commit_files({{"buildspec.yml", "version: 0.2\nphases:\n  build:\n    commands: make\n"}},
               "malformed");
  b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml: phases.build.commands: expected a list of strings");

  // Without a builder image a buildspec cannot run.
  svc_.reset();
  start_service(deps());
  commit_files({{"buildspec.yml", "version: 0.2\nphases:\n  build:\n    commands: [true]\n"}},
               "fine");
  b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml needs build.builder_image to be set");
}

// A commit controls buildspec.yml and .dockerignore: as symlinks they could make berthd read
// any host file (and echo it back in the error), or block on a FIFO. Both are refused.
TEST_F(BuildServiceTest, SymlinkedBuildInputsAreRefusedAndHostFilesStayUnread) {
  start_service(deps(std::chrono::seconds(120), "web/base:1"));
  create();
  std::string host_secret = data_ / "host-secret.txt";
  test::write_file(host_secret, "HOST_SECRET_abc123\n");
  ASSERT_EQ(::symlink(host_secret.c_str(), (src_ / "buildspec.yml").c_str()), 0);
  commit_files({}, "buildspec link");
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "buildspec.yml is a symlink; it must be a regular file")
      << failure_context(b->id);
  EXPECT_EQ(log_of(b->id).find("HOST_SECRET"), std::string::npos);

  ASSERT_EQ(::unlink((src_ / "buildspec.yml").c_str()), 0);
  ASSERT_EQ(::symlink(host_secret.c_str(), (src_ / ".dockerignore").c_str()), 0);
  commit_files({}, "dockerignore link");
  b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, ".dockerignore is a symlink; it must be a regular file")
      << failure_context(b->id);
  EXPECT_EQ(log_of(b->id).find("HOST_SECRET"), std::string::npos);
}

TEST_F(BuildServiceTest, GitPushToBerthsRemoteQueuesMatchingBranches) {
  start_service(deps());
  create(Json{{"git", ""}});
  auto before = svc_->git_refs("web");
  ASSERT_TRUE(before) << before.error().message();
  EXPECT_TRUE(before->empty());
  std::string remote = "file://" + svc_->git_root() + "/web.git";
  ASSERT_EQ(git(src_.path(), "push -q " + remote + " main main:dev").code, 0);
  auto ids = svc_->git_pushed("web", *before, "user/alice");
  ASSERT_TRUE(ids) << ids.error().message();
  ASSERT_EQ(ids->size(), 1u);  // dev does not match the filter "main"
  BuildView done = wait_done((*ids)[0]);
  EXPECT_EQ(done.status, "SUCCEEDED") << done.reason << "\n" << failure_context(done.id);
  EXPECT_EQ(done.trigger, "git push to main by user/alice");
  EXPECT_EQ(done.source, "/git/web.git");
  EXPECT_EQ(done.branch, "main");

  // Nothing moved: nothing queued.
  auto now = svc_->git_refs("web");
  ASSERT_TRUE(now);
  auto again = svc_->git_pushed("web", *now, "user/alice");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
}

TEST_F(BuildServiceTest, FileRemotesNeedTheSetting) {
  auto d = deps();
  d.allow_file_remotes = false;
  start_service(std::move(d));
  create();  // stored while allowed (the request parse above allowed it)
  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  BuildView done = wait_done(b->id);
  EXPECT_EQ(done.status, "FAILED");
  EXPECT_EQ(done.reason, "git: file:// remotes are disabled (build.allow_file_remotes)");
}

TEST_F(BuildServiceTest, ProjectsCreateUpdateDelete) {
  svc_ = std::make_unique<Service>(deps());
  create();
  auto dup = svc_->create_project(svc_->get_project("web")->spec);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);
  auto list = svc_->list_projects();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].spec.secret_build_args.at("TOKEN"), kToken);
  auto stored = store_->get_build_project("web");
  ASSERT_TRUE(stored);
  EXPECT_THAT(stored->spec, Not(HasSubstr(kToken)));

  auto b = svc_->start_build("web", "main", "manual");
  ASSERT_TRUE(b);
  auto log = svc_->log_path(b->id);
  ASSERT_TRUE(log);
  EXPECT_TRUE(stdfs::exists(*log));
  ASSERT_TRUE(svc_->delete_project("web"));
  EXPECT_EQ(svc_->get_project("web").error().code(), Errc::NotFound);
  EXPECT_EQ(svc_->get_build(b->id).error().code(), Errc::NotFound);
  EXPECT_FALSE(stdfs::exists(*log));
  EXPECT_FALSE(stdfs::exists(svc_->git_root() + "/web.git"));
  EXPECT_EQ(svc_->delete_project("web").error().code(), Errc::NotFound);
}

}  // namespace
}  // namespace berth::builder
