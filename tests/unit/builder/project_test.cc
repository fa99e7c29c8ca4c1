// SPDX-License-Identifier: Apache-2.0
// Build project specs: every field's validation (errors name the field), credentials moved out
// of git URLs, updates over a base, the API view without secrets, the sealed stored form.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "builder/build.h"
#include "builder/service_buildspec.h"
#include "builder/service_project.h"
#include "common/secret_box.h"
#include "support/harness.h"

namespace berth::builder {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

Json base_body() { return Json{{"name", "web"}, {"repository", "web/app"}}; }

Result<ProjectSpec> parse(Json extra, bool allow_file = false) {
  Json body = base_body();
  for (auto& [k, v] : extra.items()) {
    body[k] = v;
  }
  return project_from_request(body, ProjectSpec{}, allow_file);
}

// The error for one field's value: InvalidArgument whose message starts with "field: ".
void expect_field_error(const std::string& field, const Json& value, bool allow_file = false) {
  auto r = parse(Json{{field, value}}, allow_file);
  ASSERT_FALSE(r) << field << "=" << value.dump() << " was accepted";
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  EXPECT_EQ(r.error().message().rfind(field + ": ", 0), 0u)
      << field << "=" << value.dump() << ": " << r.error().message();
}

void expect_accepted(const std::string& field, const Json& value, bool allow_file = false) {
  auto r = parse(Json{{field, value}}, allow_file);
  EXPECT_TRUE(r) << field << "=" << value.dump() << ": " << r.error().message();
}

TEST(BuildProjectTest, DefaultsAndRequiredFields) {
  auto r = parse(Json::object());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->name, "web");
  EXPECT_EQ(r->git_url, "");
  EXPECT_EQ(r->branch, "main");
  EXPECT_EQ(r->repository, "web/app");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->dockerfile, "Dockerfile");
  EXPECT_EQ(r->context, ".");
  EXPECT_EQ(r->role, "");

  auto no_name = project_from_request(Json{{"repository", "web/app"}}, ProjectSpec{}, false);
  ASSERT_FALSE(no_name);
  EXPECT_EQ(no_name.error().message(), "name: required");
  auto no_repo = project_from_request(Json{{"name", "web"}}, ProjectSpec{}, false);
  ASSERT_FALSE(no_repo);
  EXPECT_EQ(no_repo.error().message().rfind("repository: required", 0), 0u);
  auto not_obj = project_from_request(Json::array(), ProjectSpec{}, false);
  ASSERT_FALSE(not_obj);
  EXPECT_EQ(not_obj.error().code(), Errc::InvalidArgument);
  expect_field_error("colour", "blue");
}

TEST(BuildProjectTest, Name) {
  for (const char* good : {"web", "a", "web-2", "0app"}) {
    expect_accepted("name", good);
  }
  for (const char* badv : {"", "Web", "-web", "web_app", "web.app", "web/app"}) {
    expect_field_error("name", badv);
  }
  expect_field_error("name", std::string(64, 'a'));
  expect_accepted("name", std::string(63, 'a'));
  expect_field_error("name", 7);
}

TEST(BuildProjectTest, GitUrl) {
  for (const char* good :
       {"https://github.com/octo/app.git", "http://127.0.0.1:3000/a.git",
        "ssh://git@github.com/octo/app.git", "git@github.com:octo/app.git", ""}) {
    expect_accepted("git", good);
  }
  for (const char* badv :
       {"ext::sh -c evil", "/srv/repo.git", "-u", "git://host/x", "fd::17", "https://a\nb"}) {
    expect_field_error("git", badv);
  }
  auto f = parse(Json{{"git", "file:///srv/app.git"}});
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().message(), "git: file:// remotes are disabled (build.allow_file_remotes)");
  expect_accepted("git", "file:///srv/app.git", true);
  // A file:// URL kept from the base is refused when the setting is off.
  ProjectSpec base = *parse(Json{{"git", "file:///srv/app.git"}}, true);
  auto upd = project_from_request(Json{{"tag", "v1"}}, base, false);
  ASSERT_FALSE(upd);
  EXPECT_EQ(upd.error().message(), "git: file:// remotes are disabled (build.allow_file_remotes)");
}

TEST(BuildProjectTest, PasswordInTheUrlMovesToTheCredentials) {
  auto r = parse(Json{{"git", "https://bot:s3cr%2Ft@github.com/octo/app.git"}});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->git_url, "https://github.com/octo/app.git");
  EXPECT_EQ(r->git_username, "bot");
  EXPECT_EQ(r->git_password, "s3cr/t");

  // An explicit username wins over the URL's.
  r = parse(Json{{"git", "https://bot:pw@github.com/octo/app.git"}, {"git_username", "me"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_username, "me");
  EXPECT_EQ(r->git_password, "pw");

  // ssh keeps the user (it is part of the address), drops the password.
  r = parse(Json{{"git", "ssh://git:pw@host/x.git"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_url, "ssh://git@host/x.git");
  EXPECT_EQ(r->git_password, "pw");

  // https://TOKEN@host: the one part is the token, so it becomes the (sealed, masked)
  // password; the URL and the view never show it.
  r = parse(Json{{"git", "https://ghp_SECRETTOKEN123@github.com/octo/app.git"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_url, "https://github.com/octo/app.git");
  EXPECT_EQ(r->git_password, "ghp_SECRETTOKEN123");
  EXPECT_EQ(r->git_username, "x-access-token");
  EXPECT_EQ(project_to_view(*r).dump().find("SECRETTOKEN"), std::string::npos);
  // ssh keeps a bare user: it is part of the address.
  r = parse(Json{{"git", "ssh://git@host/x.git"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_url, "ssh://git@host/x.git");
  EXPECT_EQ(r->git_password, "");

  EXPECT_EQ(url_without_credentials("https://u:p@h/x"), "https://h/x");
  EXPECT_EQ(url_without_credentials("ssh://git:p@h/x"), "ssh://git@h/x");
  EXPECT_EQ(url_without_credentials("git@h:x"), "git@h:x");
}

TEST(BuildProjectTest, Branch) {
  for (const char* good : {"main", "release/*", "*", "v1.?", "feature/a-b_c", "dev.2"}) {
    expect_accepted("branch", good);
  }
  for (const char* badv : {"", "my branch", "a..b", "-x", "/x", "x/", "x.lock", "a~1", "a^", "a:b",
                           "a\\b", "a[1]", "a@{1}", ".hidden", "a//b", "a\tb"}) {
    expect_field_error("branch", badv);
  }
  auto r = parse(Json{{"branch", "my branch"}});
  EXPECT_THAT(r.error().message(), HasSubstr("space"));
  expect_field_error("branch", true);
}

TEST(BuildProjectTest, RepositoryAndTag) {
  expect_accepted("repository", "web/app");
  expect_accepted("repository", "a.b/c_d/e-f");
  for (const char* badv : {"", "Web/App", "web//app", "/web", "web/", "web app"}) {
    expect_field_error("repository", badv);
  }
  for (const char* good : {"latest", "v1.2.3", "A_b-c.d"}) {
    expect_accepted("tag", good);
  }
  for (const char* badv : {"", ".x", "-x", "a:b", "a/b"}) {
    expect_field_error("tag", badv);
  }
  expect_field_error("tag", std::string(129, 'a'));
}

TEST(BuildProjectTest, DockerfileAndContext) {
  for (const std::string f : {"dockerfile", "context"}) {
    for (const char* good : {"Dockerfile", "docker/Dockerfile.prod", "./x", "a/b..c"}) {
      expect_accepted(f, good);
    }
    for (const char* badv : {"", "/Dockerfile", "../Dockerfile", "a/../../b", "a/..", ".."}) {
      expect_field_error(f, badv);
    }
  }
  expect_accepted("context", ".");
  auto r = parse(Json{{"context", "/srv"}});
  EXPECT_THAT(r.error().message(), HasSubstr("relative"));
}

TEST(BuildProjectTest, Role) {
  for (const char* good : {"", "builder", "builder-web", "b.1_x"}) {
    expect_accepted("role", good);
  }
  for (const char* badv : {"Builder", "-b", ".b", "a b", "role/x"}) {
    expect_field_error("role", badv);
  }
  expect_field_error("role", std::string(65, 'a'));
  expect_accepted("role", std::string(64, 'a'));
}

TEST(BuildProjectTest, BuildArgs) {
  auto r = parse(Json{{"build_args", {{"VERSION", "1.2"}, {"_x9", ""}}},
                      {"secret_build_args", {{"NPM_TOKEN", "tok"}}}});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->build_args.at("VERSION"), "1.2");
  EXPECT_EQ(r->secret_build_args.at("NPM_TOKEN"), "tok");
  for (const std::string f : {"build_args", "secret_build_args"}) {
    expect_field_error(f, Json{{"9X", "a"}});
    expect_field_error(f, Json{{"A-B", "a"}});
    expect_field_error(f, Json{{"", "a"}});
    expect_field_error(f, Json::array({"A=1"}));
    auto n = parse(Json{{f, {{"A", 1}}}});
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error().message().rfind(f + ".A: ", 0), 0u) << n.error().message();
  }
  auto both = parse(Json{{"build_args", {{"A", "1"}}}, {"secret_build_args", {{"A", "2"}}}});
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().message().rfind("secret_build_args: ", 0), 0u);
}

TEST(BuildProjectTest, SourceDateEpochMustBeUnixSeconds) {
  ASSERT_TRUE(parse(Json{{"build_args", {{"SOURCE_DATE_EPOCH", "1700000000"}}}}));
  auto r = parse(Json{{"build_args", {{"SOURCE_DATE_EPOCH", "yesterday"}}}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "build_args.SOURCE_DATE_EPOCH: 'yesterday' is not unix seconds");
}

TEST(BuildProjectTest, PointingGitAtAnotherHostDropsTheStoredCredentials) {
  auto base = parse(
      Json{{"git", "https://github.com/o/a.git"}, {"git_username", "bot"}, {"git_password", "pw"}});
  ASSERT_TRUE(base);
  // Same host, another repository: the credentials stay.
  auto r = project_from_request(Json{{"git", "https://github.com/o/b.git"}}, *base, false);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->git_password, "pw");
  EXPECT_EQ(r->git_username, "bot");
  // Another host: they would be sent there, so they go.
  r = project_from_request(Json{{"git", "https://evil.example/o/a.git"}}, *base, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_password, "");
  EXPECT_EQ(r->git_username, "");
  // Unless the same request gives them for the new host.
  r = project_from_request(Json{{"git", "https://gitlab.example/o/a.git"}, {"git_password", "pw2"}},
                           *base, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_password, "pw2");
}

TEST(BuildProjectTest, UpdatesKeepAbsentFieldsAndMergeArgs) {
  auto base = parse(Json{{"git", "https://github.com/o/a.git"},
                         {"branch", "dev"},
                         {"build_args", {{"A", "1"}, {"B", "2"}}},
                         {"git_password", "pw"}});
  ASSERT_TRUE(base);
  auto r = project_from_request(Json{{"tag", "v2"}, {"build_args", {{"A", nullptr}, {"C", "3"}}}},
                                *base, false);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->git_url, "https://github.com/o/a.git");
  EXPECT_EQ(r->branch, "dev");
  EXPECT_EQ(r->tag, "v2");
  EXPECT_EQ(r->git_password, "pw");
  EXPECT_EQ(r->build_args.count("A"), 0u);
  EXPECT_EQ(r->build_args.at("B"), "2");
  EXPECT_EQ(r->build_args.at("C"), "3");
  // The view's "****" sent back keeps the password; "" clears it.
  r = project_from_request(Json{{"git_password", "****"}}, *base, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_password, "pw");
  r = project_from_request(Json{{"git_password", ""}}, *base, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->git_password, "");
  expect_field_error("git_username", "a:b");
  expect_field_error("git_password", 5);
}

TEST(BuildProjectTest, ViewHidesSecrets) {
  auto r = parse(Json{{"git", "https://bot:hunter2@github.com/o/a.git"},
                      {"secret_build_args", {{"TOKEN", "t0ps3cret"}}},
                      {"build_args", {{"V", "1"}}}});
  ASSERT_TRUE(r);
  Json v = project_to_view(*r);
  std::string text = v.dump();
  EXPECT_THAT(text, Not(HasSubstr("hunter2")));
  EXPECT_THAT(text, Not(HasSubstr("t0ps3cret")));
  EXPECT_EQ(v["git_password"], "****");
  EXPECT_EQ(v["git_username"], "bot");
  EXPECT_EQ(v["git"], "https://github.com/o/a.git");
  EXPECT_EQ(v["secret_build_args"], Json::array({"TOKEN"}));
  EXPECT_EQ(v["build_args"]["V"], "1");
  EXPECT_EQ(v["image"], "web/app:latest");
  EXPECT_EQ(v["name"], "web");
  // A password left inside a URL (an old record) is masked too.
  ProjectSpec old = *r;
  old.git_url = "https://bot:hunter2@github.com/o/a.git";
  EXPECT_THAT(project_to_view(old).dump(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(project_secrets(*r), ElementsAre("hunter2", "t0ps3cret"));
}

TEST(BuildProjectTest, StoredFormSealsSecretsAndRoundTrips) {
  test::TempDir dir;
  auto box = SecretBox::load_or_create(dir / "secrets.key");
  ASSERT_TRUE(box) << box.error().message();
  auto r = parse(Json{{"git", "file:///srv/a.git"},
                      {"git_username", "bot"},
                      {"git_password", "hunter2"},
                      {"secret_build_args", {{"TOKEN", "t0ps3cret"}}},
                      {"build_args", {{"V", "1"}}},
                      {"role", "builder"},
                      {"branch", "release/*"},
                      {"dockerfile", "docker/Dockerfile"},
                      {"context", "app"},
                      {"tag", "edge"}},
                 true);
  ASSERT_TRUE(r) << r.error().message();
  std::string stored = project_to_store(*r, **box);
  EXPECT_THAT(stored, Not(HasSubstr("hunter2")));
  EXPECT_THAT(stored, Not(HasSubstr("t0ps3cret")));
  auto back = project_from_store(stored, **box);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->name, "web");
  EXPECT_EQ(back->git_url, "file:///srv/a.git");
  EXPECT_EQ(back->git_username, "bot");
  EXPECT_EQ(back->git_password, "hunter2");
  EXPECT_EQ(back->secret_build_args.at("TOKEN"), "t0ps3cret");
  EXPECT_EQ(back->build_args.at("V"), "1");
  EXPECT_EQ(back->role, "builder");
  EXPECT_EQ(back->branch, "release/*");
  EXPECT_EQ(back->dockerfile, "docker/Dockerfile");
  EXPECT_EQ(back->context, "app");
  EXPECT_EQ(back->tag, "edge");
  auto broken = project_from_store("nope", **box);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code(), Errc::DataLoss);
}

TEST(BuildspecTest, ParsesVariablesAndPhasesInRunOrder) {
  auto b = parse_buildspec(R"(version: 0.2
env:
  variables:
    GOFLAGS: -mod=vendor
    PORT: 8080
phases:
  post_build:
    commands:
      - echo done
  build:
    commands:
      - make
      - make test
  install:
    commands: [apk add make]
  pre_build:
)");
  ASSERT_TRUE(b) << b.error().message();
  ASSERT_EQ(b->variables.size(), 2u);
  EXPECT_EQ(b->variables[0].first, "GOFLAGS");
  EXPECT_EQ(b->variables[0].second, "-mod=vendor");
  EXPECT_EQ(b->variables[1].second, "8080");
  ASSERT_EQ(b->phases.size(), 3u);
  EXPECT_EQ(b->phases[0].name, "install");
  EXPECT_EQ(b->phases[1].name, "build");
  EXPECT_THAT(b->phases[1].commands, ElementsAre("make", "make test"));
  EXPECT_EQ(b->phases[2].name, "post_build");
}

TEST(BuildspecTest, ErrorsNameTheField) {
  auto err = [](const std::string& text) {
    auto b = parse_buildspec(text);
    EXPECT_FALSE(b) << text;
    return b ? std::string() : b.error().message();
  };
  EXPECT_EQ(err("version: 0.2\nphases:\n  build:\n    commands: make\n"),
            "buildspec.yml: phases.build.commands: expected a list of strings");
  EXPECT_EQ(err("version: 0.2\nphases:\n  build:\n    commands:\n      - [a, b]\n"),
            "buildspec.yml: phases.build.commands: expected a list of strings");
  EXPECT_EQ(err("phases: {}\n"), "buildspec.yml: version: required (0.2)");
  EXPECT_EQ(err("version: 0.1\n"), "buildspec.yml: version: expected 0.2, got 0.1");
  EXPECT_EQ(err("version: 0.2\nphases:\n  deploy:\n    commands: [x]\n"),
            "buildspec.yml: phases.deploy: unknown phase (expected install, pre_build, build or "
            "post_build)");
  EXPECT_THAT(err("version: 0.2\nphases:\n  build:\n    finally: [x]\n"),
              HasSubstr("buildspec.yml: phases.build.finally: not supported"));
  EXPECT_THAT(err("version: 0.2\nartifacts:\n  files: [a]\n"),
              HasSubstr("buildspec.yml: artifacts: not supported"));
  EXPECT_THAT(err("version: 0.2\nenv:\n  variables:\n    9X: a\n"),
              HasSubstr("buildspec.yml: env.variables: '9X' is not a valid variable name"));
  EXPECT_THAT(err("version: 0.2\nenv:\n  secrets-manager: {}\n"),
              HasSubstr("buildspec.yml: env.secrets-manager: not supported"));
  EXPECT_THAT(err("- a\n"), HasSubstr("buildspec.yml: expected a mapping"));
  EXPECT_THAT(err("version: [0.2\n"), HasSubstr("buildspec.yml: "));
}

}  // namespace
}  // namespace berth::builder
