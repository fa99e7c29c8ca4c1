// SPDX-License-Identifier: Apache-2.0
// The Dockerfile parser, instruction by instruction (pure); substitution and ARG scoping are
// in dockerfile_expand_test.cc.
#include "builder/dockerfile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "unit/builder/dockerfile_test_util.h"

namespace berth::builder {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using namespace test_util;

// ---- FROM and stages -----------------------------------------------------------------------

TEST(DockerfileFromTest, PlainImage) {
  Dockerfile df = parse_ok("FROM alpine:3.19\n");
  ASSERT_EQ(df.stages.size(), 1u);
  const Stage& s = df.stages[0];
  EXPECT_EQ(s.index, 0u);
  EXPECT_EQ(s.name, "");
  EXPECT_EQ(s.from.kind, InstructionKind::From);
  EXPECT_EQ(s.from.line, 1);
  EXPECT_EQ(s.from.as<FromSpec>().image, "alpine:3.19");
  EXPECT_EQ(s.from.as<FromSpec>().platform, "");
}

TEST(DockerfileFromTest, AsNameAndPlatform) {
  Dockerfile df = parse_ok("from --platform=linux/arm64 golang:1.22 as Build\n");
  const FromSpec& f = df.stages[0].from.as<FromSpec>();
  EXPECT_EQ(f.image, "golang:1.22");
  EXPECT_EQ(f.name, "build");  // stage names are case-insensitive, stored lower-case
  EXPECT_EQ(f.platform, "linux/arm64");
  EXPECT_EQ(df.stages[0].name, "build");
  EXPECT_EQ(df.stages[0].from.flag("platform"), "linux/arm64");
}

TEST(DockerfileFromTest, Errors) {
  EXPECT_EQ(parse_error("FROM\n"),
            "Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])");
  EXPECT_EQ(parse_error("FROM a b\n"),
            "Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])");
  EXPECT_EQ(parse_error("FROM a AS b c\n"),
            "Dockerfile:1: FROM requires either one or three arguments (FROM image [AS name])");
  EXPECT_THAT(parse_error("\nFROM a AS 1st\n"),
              HasSubstr("Dockerfile:2: invalid stage name \"1st\""));
  EXPECT_THAT(parse_error("FROM a AS b$c\n"), HasSubstr("Dockerfile:1: invalid stage name"));
  EXPECT_EQ(parse_error("FROM --pletform=x a\n"), "Dockerfile:1: unknown flag --pletform for FROM");
  EXPECT_EQ(parse_error("FROM --platform a\n"), "Dockerfile:1: FROM --platform requires a value");
}

TEST(DockerfileFromTest, NoFrom) {
  EXPECT_EQ(parse_error(""), "Dockerfile:1: no FROM instruction");
  EXPECT_EQ(parse_error("# just a comment\n\n"), "Dockerfile:1: no FROM instruction");
  EXPECT_EQ(parse_error("ARG X=1\n"), "Dockerfile:1: no FROM instruction");
  EXPECT_EQ(parse_error("ARG X=1\nRUN true\nFROM a\n"),
            "Dockerfile:2: RUN before the first FROM: only ARG may come before FROM");
}

TEST(DockerfileFromTest, FileNameInMessages) {
  ParseOptions o;
  o.file_name = "docker/web.Dockerfile";
  auto r = parse_dockerfile("FROM a\nCOPY x\n", o);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("docker/web.Dockerfile:2: COPY requires"));
}

// ---- RUN, CMD, ENTRYPOINT, SHELL ---------------------------------------------------------

TEST(DockerfileRunTest, ShellForm) {
  Instruction i = one("RUN apt-get update && apt-get install -y curl");
  EXPECT_EQ(i.kind, InstructionKind::Run);
  EXPECT_EQ(i.line, 2);
  const Command& c = i.as<Command>();
  EXPECT_FALSE(c.exec_form);
  EXPECT_EQ(c.shell, "apt-get update && apt-get install -y curl");
  EXPECT_THAT(c.argv(default_shell()),
              ElementsAre("/bin/sh", "-c", "apt-get update && apt-get install -y curl"));
  EXPECT_EQ(i.text, "RUN apt-get update && apt-get install -y curl");
}

TEST(DockerfileRunTest, ExecForm) {
  Instruction i = one(R"(RUN ["/bin/echo", "a \"q\" b", "tab\there", "\u00e9"])");
  const Command& c = i.as<Command>();
  EXPECT_TRUE(c.exec_form);
  EXPECT_THAT(c.exec, ElementsAre("/bin/echo", "a \"q\" b", "tab\there", "\xC3\xA9"));
  EXPECT_THAT(c.argv({"/bin/sh", "-c"}),
              ElementsAre("/bin/echo", "a \"q\" b", "tab\there", "\xC3\xA9"));
}

TEST(DockerfileRunTest, ShellTestBracketsStayShellForm) {
  // "[" is the test command: these are not JSON, so they are shell form, as in Docker.
  EXPECT_FALSE(one("RUN [ -f /etc/passwd ] && echo yes").as<Command>().exec_form);
  EXPECT_FALSE(one(R"(RUN [ "$X" = "y" ] || exit 1)").as<Command>().exec_form);
  // ...while a valid JSON array of strings is exec form, spaces or not.
  EXPECT_TRUE(one(R"(RUN [ "$X" ])").as<Command>().exec_form);
}

TEST(DockerfileRunTest, JsonWithSpacesIsExecForm) {
  Instruction i = one(R"(CMD [ "node" , "server.js" ])");
  EXPECT_TRUE(i.as<Command>().exec_form);
  EXPECT_THAT(i.as<Command>().exec, ElementsAre("node", "server.js"));
  EXPECT_TRUE(one("CMD []").as<Command>().exec_form);
}

TEST(DockerfileRunTest, BrokenJsonIsAnError) {
  EXPECT_EQ(parse_error("FROM a\n\nCMD [\"node\", \"server.js\"\n"),
            "Dockerfile:3: unterminated JSON array");
  EXPECT_EQ(parse_error("FROM a\nENTRYPOINT [ \"node\",\n"),
            "Dockerfile:2: unterminated JSON array");
  EXPECT_EQ(parse_error("FROM a\nRUN [\"a\", 1]\n"),
            "Dockerfile:2: invalid JSON array: it must contain only strings");
  EXPECT_EQ(parse_error("FROM a\nRUN [\"a\",]\n"),
            "Dockerfile:2: invalid JSON array: trailing comma");
  EXPECT_EQ(parse_error("FROM a\nRUN [\"a\" \"b\"]\n"),
            "Dockerfile:2: invalid JSON array: expected ',' or ']'");
}

TEST(DockerfileRunTest, RunFlags) {
  Instruction i = one("RUN --network=none make test");
  EXPECT_EQ(i.flag("network"), "none");
  EXPECT_EQ(i.as<Command>().shell, "make test");
  EXPECT_EQ(parse_error("FROM a\nRUN --network=host make\n"),
            "Dockerfile:2: RUN --network=host: only default and none are supported");
  EXPECT_THAT(parse_error("FROM a\nRUN --mount=type=cache,target=/root/.cache pip install x\n"),
              HasSubstr("Dockerfile:2: RUN --mount is not supported"));
  EXPECT_EQ(parse_error("FROM a\nRUN --foo make\n"), "Dockerfile:2: unknown flag --foo for RUN");
}

TEST(DockerfileRunTest, Heredocs) {
  EXPECT_THAT(parse_error("FROM a\nRUN <<EOF\necho hi\nEOF\n"),
              HasSubstr("Dockerfile:2: heredocs (<<EOF) are not supported"));
  EXPECT_THAT(parse_error("FROM a\nRUN cat <<-'END' > /x\n"), HasSubstr("Dockerfile:2: heredocs"));
  EXPECT_THAT(parse_error("FROM a\nCOPY <<EOF /etc/x\n"),
              HasSubstr("Dockerfile:2: COPY with a heredoc (<<EOF) is not supported"));
  // Not heredocs: arithmetic shifts, here-strings, quoted text.
  EXPECT_EQ(one("RUN echo $((1<<4))").as<Command>().shell, "echo $((1<<4))");
  EXPECT_FALSE(one("RUN cat <<< hi").as<Command>().exec_form);
  EXPECT_FALSE(one("RUN echo '<<EOF'").as<Command>().exec_form);
}

TEST(DockerfileRunTest, EmptyArguments) {
  EXPECT_EQ(parse_error("FROM a\nRUN\n"), "Dockerfile:2: RUN requires at least one argument");
  EXPECT_EQ(parse_error("FROM a\nCMD   \n"), "Dockerfile:2: CMD requires at least one argument");
  EXPECT_EQ(parse_error("FROM a\nENTRYPOINT\n"),
            "Dockerfile:2: ENTRYPOINT requires at least one argument");
}

TEST(DockerfileRunTest, CmdAndEntrypointTakeNoFlags) {
  EXPECT_EQ(parse_error("FROM a\nCMD --version\n"), "Dockerfile:2: unknown flag --version for CMD");
}

TEST(DockerfileRunTest, CmdAndEntrypointForms) {
  Instruction c = one("CMD echo hello $HOME");
  EXPECT_EQ(c.kind, InstructionKind::Cmd);
  EXPECT_EQ(c.as<Command>().shell, "echo hello $HOME");  // never substituted by the parser
  Instruction e = one(R"(ENTRYPOINT ["/docker-entrypoint.sh"])");
  EXPECT_EQ(e.kind, InstructionKind::Entrypoint);
  EXPECT_THAT(e.as<Command>().exec, ElementsAre("/docker-entrypoint.sh"));
  EXPECT_FALSE(one("ENTRYPOINT exec nginx").as<Command>().exec_form);
}

TEST(DockerfileRunTest, RepeatedCmdWarns) {
  Dockerfile df = parse_ok("FROM a\nCMD a\nCMD b\n");
  ASSERT_EQ(df.warnings.size(), 1u);
  EXPECT_EQ(df.warnings[0].line, 3);
  EXPECT_THAT(df.warnings[0].message, HasSubstr("Dockerfile:3: more than one CMD"));
}

TEST(DockerfileShellTest, JsonRequired) {
  Instruction i = one(R"(SHELL ["/bin/bash", "-o", "pipefail", "-c"])");
  EXPECT_EQ(i.kind, InstructionKind::Shell);
  EXPECT_THAT(i.as<Command>().exec, ElementsAre("/bin/bash", "-o", "pipefail", "-c"));
  EXPECT_THAT(parse_error("FROM a\nSHELL /bin/bash -c\n"),
              HasSubstr("Dockerfile:2: SHELL requires the arguments to be in JSON form"));
  EXPECT_EQ(parse_error("FROM a\nSHELL []\n"),
            "Dockerfile:2: SHELL requires at least one argument");
  EXPECT_EQ(parse_error("FROM a\nSHELL [\"sh\"\n"), "Dockerfile:2: unterminated JSON array");
}

// ---- ENV, LABEL, ARG -------------------------------------------------------------------

TEST(DockerfileEnvTest, KeyValuePairs) {
  Instruction i = one(R"(ENV A=1 B="two words" C=three\ words D= E='x y')");
  const KeyValues& kv = i.as<KeyValues>();
  EXPECT_FALSE(kv.legacy);
  ASSERT_EQ(kv.items.size(), 5u);
  EXPECT_EQ(kv.items[0].key, "A");
  EXPECT_EQ(kv.items[0].value, "1");
  // Quotes and escapes stay until substitution removes them.
  EXPECT_EQ(kv.items[1].value, "\"two words\"");
  EXPECT_EQ(kv.items[2].value, "three\\ words");
  EXPECT_EQ(kv.items[3].value, "");
  EXPECT_EQ(kv.items[4].value, "'x y'");
  auto ex = expand_instruction(i, vars({}));
  ASSERT_TRUE(ex) << ex.error().message();
  const auto& items = ex->as<KeyValues>().items;
  EXPECT_EQ(items[1].value, "two words");
  EXPECT_EQ(items[2].value, "three words");
  EXPECT_EQ(items[4].value, "x y");
}

TEST(DockerfileEnvTest, LegacyForm) {
  Dockerfile df = parse_ok("FROM a\nENV MY_PATH /usr/local/bin:/usr/bin   extra\n");
  const Instruction& i = df.stages[0].instructions[0];
  const KeyValues& kv = i.as<KeyValues>();
  EXPECT_TRUE(kv.legacy);
  ASSERT_EQ(kv.items.size(), 1u);
  EXPECT_EQ(kv.items[0].key, "MY_PATH");
  EXPECT_EQ(kv.items[0].value, "/usr/local/bin:/usr/bin   extra");
  ASSERT_EQ(df.warnings.size(), 1u);
  EXPECT_THAT(df.warnings[0].message, HasSubstr("Dockerfile:2: legacy \"ENV key value\" form"));
}

TEST(DockerfileEnvTest, Errors) {
  EXPECT_EQ(parse_error("FROM a\nENV\n"), "Dockerfile:2: ENV requires at least one argument");
  EXPECT_EQ(parse_error("FROM a\nENV ONLYKEY\n"),
            "Dockerfile:2: ENV must have two arguments (ENV key=value)");
  EXPECT_EQ(parse_error("FROM a\nENV A=1 B\n"),
            "Dockerfile:2: syntax error: no '=' in \"B\"; ENV takes key=value pairs");
  EXPECT_EQ(parse_error("FROM a\nENV =x\n"), "Dockerfile:2: ENV names can not be blank");
  EXPECT_EQ(parse_error("FROM a\nENV A=\"open\n"),
            "Dockerfile:2: unterminated double quote in ENV");
  EXPECT_EQ(parse_error("FROM a\nLABEL a='open\n"),
            "Dockerfile:2: unterminated single quote in LABEL");
}

TEST(DockerfileLabelTest, PairsAndLegacy) {
  Instruction i = one(R"(LABEL org.opencontainers.image.title="My app" version=1.0)");
  EXPECT_EQ(i.kind, InstructionKind::Label);
  const auto& items = i.as<KeyValues>().items;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].key, "org.opencontainers.image.title");
  EXPECT_EQ(items[1].key, "version");
  EXPECT_EQ(one("LABEL maintainer someone@example.com").as<KeyValues>().items[0].value,
            "someone@example.com");
  EXPECT_EQ(parse_error("FROM a\nLABEL\n"), "Dockerfile:2: LABEL requires at least one argument");
}

TEST(DockerfileArgTest, DeclarationsAndGlobals) {
  Dockerfile df = parse_ok(
      "ARG BASE=alpine\n"
      "ARG TAG\n"
      "FROM ${BASE}:${TAG:-3.19}\n"
      "ARG A B=2 C=\"x y\"\n");
  ASSERT_EQ(df.global_args.size(), 2u);
  EXPECT_EQ(df.global_args[0].line, 1);
  EXPECT_EQ(df.global_args[0].as<ArgDecls>().items[0].name, "BASE");
  EXPECT_EQ(df.global_args[0].as<ArgDecls>().items[0].default_value, "alpine");
  EXPECT_FALSE(df.global_args[1].as<ArgDecls>().items[0].default_value.has_value());
  const auto& items = df.stages[0].instructions[0].as<ArgDecls>().items;
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].name, "A");
  EXPECT_FALSE(items[0].default_value);
  EXPECT_EQ(items[1].default_value, "2");
  EXPECT_EQ(items[2].default_value, "\"x y\"");
  EXPECT_EQ(parse_error("FROM a\nARG\n"), "Dockerfile:2: ARG requires at least one argument");
  EXPECT_EQ(parse_error("FROM a\nARG =1\n"), "Dockerfile:2: ARG names can not be blank");
}

// ---- EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, MAINTAINER ---------------------------------

TEST(DockerfileExposeTest, Ports) {
  Instruction i = one("EXPOSE 80 443/tcp 53/UDP 8000-8010 $EXTRA");
  EXPECT_THAT(i.as<Words>().items, ElementsAre("80", "443/tcp", "53/UDP", "8000-8010", "$EXTRA"));
  auto ex = expand_instruction(i, vars({{"EXTRA", "9000 9001/udp"}}));
  ASSERT_TRUE(ex) << ex.error().message();
  EXPECT_THAT(ex->as<Words>().items,
              ElementsAre("80/tcp", "443/tcp", "53/udp", "8000-8010/tcp", "9000/tcp", "9001/udp"));
  EXPECT_THAT(parse_error("FROM a\n\n\nEXPOSE 80 http\n"),
              HasSubstr("Dockerfile:4: EXPOSE \"http\""));
  EXPECT_THAT(parse_error("FROM a\nEXPOSE 80/icmp\n"),
              HasSubstr("Dockerfile:2: EXPOSE \"80/icmp\": protocol must be tcp, udp or sctp"));
  EXPECT_THAT(parse_error("FROM a\nEXPOSE 70000\n"), HasSubstr("Dockerfile:2: EXPOSE \"70000\""));
  EXPECT_THAT(parse_error("FROM a\nEXPOSE 90-80\n"), HasSubstr("Dockerfile:2: EXPOSE \"90-80\""));
  EXPECT_EQ(parse_error("FROM a\nEXPOSE\n"), "Dockerfile:2: EXPOSE requires at least one argument");
  auto bad = expand_instruction(i, vars({{"EXTRA", "web"}}), '\\');
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("Dockerfile:2: EXPOSE \"web\""));
}

TEST(DockerfileVolumeTest, JsonAndList) {
  Instruction j = one(R"(VOLUME ["/data", "/var/log app"])");
  EXPECT_TRUE(j.as<Words>().json_form);
  EXPECT_THAT(j.as<Words>().items, ElementsAre("/data", "/var/log app"));
  Instruction l = one("VOLUME /data /cache");
  EXPECT_FALSE(l.as<Words>().json_form);
  EXPECT_THAT(l.as<Words>().items, ElementsAre("/data", "/cache"));
  EXPECT_EQ(parse_error("FROM a\nVOLUME [\"\"]\n"),
            "Dockerfile:2: VOLUME specified can not be an empty string");
  EXPECT_EQ(parse_error("FROM a\nVOLUME []\n"),
            "Dockerfile:2: VOLUME requires at least one argument");
}

TEST(DockerfileTextTest, WorkdirUserStopsignalMaintainer) {
  EXPECT_EQ(one("WORKDIR /srv/my app").as<Text>().value, "/srv/my app");
  EXPECT_EQ(one("USER app:staff").as<Text>().value, "app:staff");
  EXPECT_EQ(one("USER 1000").as<Text>().value, "1000");
  EXPECT_EQ(one("STOPSIGNAL SIGQUIT").as<Text>().value, "SIGQUIT");
  EXPECT_EQ(one("STOPSIGNAL $SIG").as<Text>().value, "$SIG");
  Dockerfile df = parse_ok("FROM a\nMAINTAINER Jane <jane@example.com>\n");
  EXPECT_EQ(df.stages[0].instructions[0].as<Text>().value, "Jane <jane@example.com>");
  EXPECT_THAT(df.warnings[0].message, HasSubstr("MAINTAINER is deprecated"));
  EXPECT_EQ(parse_error("FROM a\nWORKDIR\n"),
            "Dockerfile:2: WORKDIR requires exactly one argument");
  EXPECT_EQ(parse_error("FROM a\nUSER\n"), "Dockerfile:2: USER requires exactly one argument");
  EXPECT_THAT(parse_error("FROM a\nSTOPSIGNAL SIGNOPE\n"),
              HasSubstr("Dockerfile:2: STOPSIGNAL invalid signal \"SIGNOPE\""));
}

// ---- COPY and ADD ------------------------------------------------------------------------

TEST(DockerfileCopyTest, ShellForm) {
  Instruction i = one("COPY --chown=app:app --chmod=0755 a.txt b/ *.go /dst/");
  const CopySpec& c = i.as<CopySpec>();
  EXPECT_THAT(c.sources, ElementsAre("a.txt", "b/", "*.go"));
  EXPECT_EQ(c.destination, "/dst/");
  EXPECT_EQ(c.chown, "app:app");
  EXPECT_EQ(c.chmod, "0755");
  EXPECT_FALSE(c.from);
  EXPECT_FALSE(c.json_form);
}

TEST(DockerfileCopyTest, JsonForm) {
  Instruction i = one(R"(COPY ["my file.txt", "other", "/dest dir/"])");
  const CopySpec& c = i.as<CopySpec>();
  EXPECT_TRUE(c.json_form);
  EXPECT_THAT(c.sources, ElementsAre("my file.txt", "other"));
  EXPECT_EQ(c.destination, "/dest dir/");
}

TEST(DockerfileCopyTest, Errors) {
  EXPECT_EQ(parse_error("FROM a\n\nCOPY onlyone\n"),
            "Dockerfile:3: COPY requires at least two arguments (COPY source... destination)");
  EXPECT_EQ(parse_error("FROM a\nCOPY [\"x\"]\n"),
            "Dockerfile:2: COPY requires at least two arguments (COPY source... destination)");
  EXPECT_EQ(parse_error("FROM a\nADD\n"),
            "Dockerfile:2: ADD requires at least two arguments (ADD source... destination)");
  EXPECT_EQ(parse_error("FROM a\nCOPY --chmod=rwx a b\n"),
            "Dockerfile:2: COPY --chmod=rwx: use an octal mode such as 755 or 0644");
  EXPECT_THAT(parse_error("FROM a\nCOPY --parents a b\n"),
              HasSubstr("Dockerfile:2: COPY --parents is not supported"));
  EXPECT_EQ(parse_error("FROM a\nCOPY --chown=a --chown=b x y\n"),
            "Dockerfile:2: COPY --chown is given twice");
  EXPECT_EQ(parse_error("FROM a\nCOPY --link=maybe x y\n"),
            "Dockerfile:2: COPY --link takes true or false, not \"maybe\"");
}

TEST(DockerfileCopyTest, LinkAndExclude) {
  Dockerfile df = parse_ok("FROM a\nCOPY --link --exclude=*.md --exclude=tmp/ . /app\n");
  const CopySpec& c = df.stages[0].instructions[0].as<CopySpec>();
  EXPECT_TRUE(c.link);
  EXPECT_THAT(c.excludes, ElementsAre("*.md", "tmp/"));
  ASSERT_EQ(df.warnings.size(), 1u);
  EXPECT_THAT(df.warnings[0].message, HasSubstr("--link is accepted but has no effect"));
}

TEST(DockerfileAddTest, LocalAndRefused) {
  Instruction i = one("ADD --chown=1000 rootfs.tar.gz /");
  const CopySpec& c = i.as<CopySpec>();
  EXPECT_THAT(c.sources, ElementsAre("rootfs.tar.gz"));
  EXPECT_EQ(parse_error("FROM a\nRUN true\n\nADD https://example.com/x.tgz /x\n"),
            "Dockerfile:4: ADD from a URL is not supported; download the file in a RUN step or "
            "commit it to the repository");
  EXPECT_THAT(parse_error("FROM a\nADD git@github.com:a/b.git /src\n"),
              HasSubstr("Dockerfile:2: ADD from a URL is not supported"));
  EXPECT_THAT(parse_error("FROM a\nADD --from=b x y\n"),
              HasSubstr("Dockerfile:2: ADD --from is not supported; use COPY --from"));
  EXPECT_THAT(parse_error("FROM a\nADD --checksum=sha256:abc x y\n"),
              HasSubstr("Dockerfile:2: ADD --checksum is not supported"));
  // A URL hidden in a variable is refused when the builder expands it.
  Instruction v = one("ADD $SRC /x");
  auto ex = expand_instruction(v, vars({{"SRC", "http://example.com/a"}}));
  ASSERT_FALSE(ex);
  EXPECT_THAT(ex.error().message(), HasSubstr("Dockerfile:2: ADD from a URL is not supported"));
}

// ---- HEALTHCHECK --------------------------------------------------------------------------

TEST(DockerfileHealthcheckTest, None) {
  Instruction i = one("HEALTHCHECK NONE");
  EXPECT_TRUE(i.as<Healthcheck>().none);
  EXPECT_THAT(i.as<Healthcheck>().test(), ElementsAre("NONE"));
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK NONE x\n"),
            "Dockerfile:2: HEALTHCHECK NONE takes no arguments");
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK --retries=3 NONE\n"),
            "Dockerfile:2: HEALTHCHECK NONE takes no arguments");
}

TEST(DockerfileHealthcheckTest, OptionsAndCommand) {
  Instruction i =
      one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s --start-interval=500ms "
          "--retries=3 CMD curl -f http://localhost/ || exit 1");
  const Healthcheck& h = i.as<Healthcheck>();
  EXPECT_FALSE(h.none);
  EXPECT_EQ(h.interval_ns, 30'000'000'000);
  EXPECT_EQ(h.timeout_ns, 90'000'000'000);
  EXPECT_EQ(h.start_period_ns, 1'500'000'000);
  EXPECT_EQ(h.start_interval_ns, 500'000'000);
  EXPECT_EQ(h.retries, 3);
  EXPECT_THAT(h.test(), ElementsAre("CMD-SHELL", "curl -f http://localhost/ || exit 1"));
  Instruction e = one(R"(healthcheck cmd ["/bin/check", "--quick"])");
  EXPECT_THAT(e.as<Healthcheck>().test(), ElementsAre("CMD", "/bin/check", "--quick"));
  EXPECT_EQ(e.as<Healthcheck>().interval_ns, 0);
}

TEST(DockerfileHealthcheckTest, Errors) {
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK RUN x\n"),
            "Dockerfile:2: unknown type RUN in HEALTHCHECK (try CMD)");
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK CMD\n"),
            "Dockerfile:2: HEALTHCHECK CMD requires a command");
  EXPECT_THAT(parse_error("FROM a\nHEALTHCHECK --interval=5 CMD x\n"),
              HasSubstr("Dockerfile:2: HEALTHCHECK --interval=5: invalid duration"));
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK --timeout=10us CMD x\n"),
            "Dockerfile:2: HEALTHCHECK --timeout=10us: cannot be less than 1ms");
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK --interval=-1s CMD x\n"),
            "Dockerfile:2: HEALTHCHECK --interval=-1s: cannot be negative");
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK --retries=-1 CMD x\n"),
            "Dockerfile:2: HEALTHCHECK --retries=-1: cannot be negative");
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK --retries=x CMD x\n"),
            "Dockerfile:2: HEALTHCHECK --retries=x: not an integer");
  EXPECT_EQ(parse_error("FROM a\nHEALTHCHECK --every=1s CMD x\n"),
            "Dockerfile:2: unknown flag --every for HEALTHCHECK");
}

// ---- ONBUILD -------------------------------------------------------------------------------

TEST(DockerfileOnbuildTest, TriggersAndErrors) {
  Instruction i = one("ONBUILD COPY --chown=app . /app/src");
  EXPECT_EQ(i.as<OnBuild>().trigger_kind, InstructionKind::Copy);
  EXPECT_EQ(i.as<OnBuild>().trigger, "COPY --chown=app . /app/src");
  EXPECT_EQ(parse_error("FROM a\nONBUILD ONBUILD RUN x\n"),
            "Dockerfile:2: ONBUILD ONBUILD isn't allowed");
  EXPECT_EQ(parse_error("FROM a\nONBUILD FROM b\n"),
            "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger");
  EXPECT_EQ(parse_error("FROM a\nONBUILD COPY x\n"),
            "Dockerfile:2: COPY requires at least two arguments (COPY source... destination)");
  EXPECT_EQ(parse_error("FROM a\nONBUILD\n"),
            "Dockerfile:2: ONBUILD requires at least one argument");
  // A base image's trigger is parsed on its own when it runs.
  auto t = parse_instruction("RUN make install", 5);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->kind, InstructionKind::Run);
  EXPECT_EQ(t->line, 5);
  auto bad = parse_instruction("COPY x", 3, '\\', "base-image ONBUILD");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("base-image ONBUILD:3: COPY requires"));
}

// ---- lines, continuations, comments, directives -----------------------------------------

TEST(DockerfileLinesTest, ContinuationsCommentsAndBlankLines) {
  const char* text =
      "# comment\n"
      "FROM alpine\n"
      "\n"
      "RUN apk add \\\n"
      "    # a comment inside the continuation\n"
      "      curl \\   \t\n"  // trailing white space after the escape character
      "\n"                    // an empty continuation line (skipped, warned)
      "    git\n"
      "  WORKDIR /app\n"  // leading white space before an instruction
      "RUN echo \\\n"
      "  done\n";
  Dockerfile df = parse_ok(text);
  const auto& ins = df.stages[0].instructions;
  ASSERT_EQ(ins.size(), 3u);
  EXPECT_EQ(ins[0].line, 4);
  EXPECT_EQ(ins[0].end_line, 8);
  EXPECT_EQ(ins[0].as<Command>().shell, "apk add       curl     git");
  EXPECT_EQ(ins[0].text, "RUN apk add       curl     git");
  EXPECT_EQ(ins[0].source,
            "RUN apk add \\\n    # a comment inside the continuation\n      curl \\   \t\n\n"
            "    git");
  EXPECT_EQ(ins[1].line, 9);
  EXPECT_EQ(ins[1].kind, InstructionKind::Workdir);
  EXPECT_EQ(ins[2].line, 10);
  EXPECT_EQ(ins[2].end_line, 11);
  EXPECT_EQ(ins[2].as<Command>().shell, "echo   done");
  ASSERT_EQ(df.warnings.size(), 1u);
  EXPECT_EQ(df.warnings[0].line, 7);
  EXPECT_THAT(df.warnings[0].message, HasSubstr("Dockerfile:7: empty continuation line"));
}

TEST(DockerfileLinesTest, ErrorLineIsTheFirstLineOfTheInstruction) {
  EXPECT_EQ(parse_error("FROM a\nCOPY \\\n  # only one\n  onlyone\n"),
            "Dockerfile:2: COPY requires at least two arguments (COPY source... destination)");
  EXPECT_EQ(parse_error("FROM a\nRUN true\nRUN true\n\n\n\nFORM b\n"),
            "Dockerfile:7: unknown instruction FORM (did you mean FROM?)");
  EXPECT_EQ(parse_error("FROM a\nFOOBARBAZ x\n"), "Dockerfile:2: unknown instruction FOOBARBAZ");
  EXPECT_EQ(parse_error("FROM a\ncopyy a b\n"),
            "Dockerfile:2: unknown instruction COPYY (did you mean COPY?)");
}

TEST(DockerfileLinesTest, ContinuationAtEndOfFile) {
  Dockerfile df = parse_ok("FROM a\nRUN echo hi \\");
  EXPECT_EQ(df.stages[0].instructions[0].as<Command>().shell, "echo hi");
}

TEST(DockerfileLinesTest, CrLfAndByteOrderMark) {
  Dockerfile df = parse_ok(
      "\xEF\xBB\xBF"
      "FROM a\r\nRUN a \\\r\n  b\r\nCMD [\"x\"]\r\n");
  const auto& ins = df.stages[0].instructions;
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(ins[0].as<Command>().shell, "a   b");
  EXPECT_EQ(ins[1].line, 4);
}

TEST(DockerfileLinesTest, HashInsideAnInstructionIsNotAComment) {
  EXPECT_EQ(one("RUN echo hi # not a comment").as<Command>().shell, "echo hi # not a comment");
}

TEST(DockerfileDirectiveTest, EscapeBacktick) {
  const char* text =
      "# escape=`\n"
      "\n"
      "FROM mcr.microsoft.com/windows/servercore\n"
      "COPY testfile.txt c:\\\n"
      "RUN dir c:\\ `\n"
      "    && echo done\n";
  Dockerfile df = parse_ok(text);
  EXPECT_EQ(df.directives.escape, '`');
  const auto& ins = df.stages[0].instructions;
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_EQ(ins[0].as<CopySpec>().destination, "c:\\");
  EXPECT_EQ(ins[1].as<Command>().shell, "dir c:\\     && echo done");
  EXPECT_EQ(ins[1].line, 5);
  auto ex = expand_instruction(ins[0], vars({}), df.directives.escape);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->as<CopySpec>().destination, "c:\\");
}

TEST(DockerfileDirectiveTest, DefaultEscapeMakesTrailingBackslashAContinuation) {
  // Docker's own example: without "# escape=`", "c:\" continues onto the next line.
  Dockerfile df = parse_ok("FROM a\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
  const auto& ins = df.stages[0].instructions;
  ASSERT_EQ(ins.size(), 1u);
  EXPECT_THAT(ins[0].as<CopySpec>().sources, ElementsAre("testfile.txt", "c:RUN", "dir"));
}

TEST(DockerfileDirectiveTest, OnlyAtTheTop) {
  // After a comment (or a blank line or an instruction), a directive is just a comment.
  EXPECT_EQ(parse_ok("# hello\n# escape=`\nFROM a\n").directives.escape, '\\');
  EXPECT_EQ(parse_ok("\n# escape=`\nFROM a\n").directives.escape, '\\');
  EXPECT_EQ(parse_ok("FROM a\n# escape=`\n").directives.escape, '\\');
  // Unknown directives end the directive section too.
  EXPECT_EQ(parse_ok("# foo=bar\n# escape=`\nFROM a\n").directives.escape, '\\');
  Dockerfile df = parse_ok("# syntax=docker/dockerfile:1\n#ESCAPE = `\nFROM a\n");
  EXPECT_EQ(df.directives.syntax, "docker/dockerfile:1");
  EXPECT_EQ(df.directives.escape, '`');
}

TEST(DockerfileDirectiveTest, Errors) {
  EXPECT_EQ(parse_error("# escape=`\n# escape=\\\nFROM a\n"),
            "Dockerfile:2: only one escape parser directive can be used");
  EXPECT_EQ(parse_error("# escape=x\nFROM a\n"),
            "Dockerfile:1: invalid escape character \"x\": it must be \\ or `");
}

// ---- multi-stage ----------------------------------------------------------------------------

const char* kMultiStage =
    "ARG GO=1.22\n"
    "FROM golang:${GO} AS build\n"
    "RUN go build -o /out/app .\n"
    "FROM build AS test\n"
    "RUN go test ./...\n"
    "FROM alpine:3.19\n"
    "COPY --from=build /out/app /usr/local/bin/app\n"
    "COPY --from=0 /etc/ssl /etc/ssl\n"
    "COPY --from=nginx:latest /etc/nginx/nginx.conf /etc/nginx/\n"
    "COPY --from=TEST /x /y\n";

TEST(DockerfileStagesTest, NamesIndexesAndReferences) {
  Dockerfile df = parse_ok(kMultiStage);
  ASSERT_EQ(df.stages.size(), 3u);
  EXPECT_EQ(df.stages[0].name, "build");
  EXPECT_EQ(df.stages[1].name, "test");
  EXPECT_EQ(df.stages[2].name, "");
  EXPECT_EQ(df.stages[2].index, 2u);
  EXPECT_EQ(df.stages[2].from.line, 6);

  StageRef base1 = resolve_base(df, 1, "build");
  EXPECT_EQ(base1.stage, 0u);
  StageRef base0 = resolve_base(df, 0, "golang:1.22");
  EXPECT_FALSE(base0.stage);
  EXPECT_EQ(base0.image, "golang:1.22");
  EXPECT_TRUE(resolve_base(df, 2, "scratch").scratch);
  // A stage's own name or a later one is an image name in FROM (Docker does the same).
  EXPECT_EQ(resolve_base(df, 0, "test").image, "test");

  const auto& copies = df.stages[2].instructions;
  auto by_name = resolve_copy_from(df, 2, *copies[0].as<CopySpec>().from);
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->stage, 0u);
  auto by_index = resolve_copy_from(df, 2, "0");
  ASSERT_TRUE(by_index);
  EXPECT_EQ(by_index->stage, 0u);
  auto image = resolve_copy_from(df, 2, "nginx:latest");
  ASSERT_TRUE(image);
  EXPECT_FALSE(image->stage);
  EXPECT_EQ(image->image, "nginx:latest");
  auto upper = resolve_copy_from(df, 2, "TEST");
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->stage, 1u);
}

TEST(DockerfileStagesTest, CopyFromErrors) {
  EXPECT_EQ(parse_error("FROM a AS one\nFROM b\nCOPY --from=2 /x /y\n"),
            "Dockerfile:3: COPY --from=2: stage 2 does not come before this one (earlier stages "
            "are 0 to 0)");
  EXPECT_EQ(parse_error("FROM a\nCOPY --from=0 /x /y\n"),
            "Dockerfile:2: COPY --from=0: stage 0 does not come before this one (this is the "
            "first stage)");
  EXPECT_EQ(parse_error("FROM a AS one\nCOPY --from=one /x /y\n"),
            "Dockerfile:2: COPY --from=one: a stage cannot copy from itself");
  EXPECT_EQ(parse_error("FROM a AS one\nCOPY --from=two /x /y\nFROM b AS two\n"),
            "Dockerfile:2: COPY --from=two: stage two is defined later; copy only from earlier "
            "stages");
  EXPECT_EQ(parse_error("FROM a AS x\nRUN true\nFROM b AS X\n"),
            "Dockerfile:3: duplicate stage name x (first defined on line 1)");
}

TEST(DockerfileStagesTest, FindTarget) {
  Dockerfile df = parse_ok(kMultiStage);
  EXPECT_EQ(df.find_stage("").value(), 2u);
  EXPECT_EQ(df.find_stage("test").value(), 1u);
  EXPECT_EQ(df.find_stage("Build").value(), 0u);
  EXPECT_EQ(df.find_stage("1").value(), 1u);
  auto missing = df.find_stage("prod");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::NotFound);
  EXPECT_EQ(missing.error().message(), "no build stage named prod");
}

TEST(DockerfileStagesTest, FromExpandsGlobalArgs) {
  Dockerfile df = parse_ok(
      "ARG REGISTRY=docker.io\n"
      "ARG TAG\n"
      "FROM --platform=$BUILDPLATFORM ${REGISTRY}/library/alpine:${TAG:-latest} AS a\n");
  BuildVars v(BuildArgs{{"TAG", "3.19"}},
              platform_args("linux", "arm64", "v8", "linux", "amd64", ""));
  for (const Instruction& a : df.global_args) {
    for (const ArgDecl& d : a.as<ArgDecls>().items) {
      v.declare_global(d);
    }
  }
  auto f = expand_from(df.stages[0], v.global_lookup());
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->image, "docker.io/library/alpine:3.19");
  EXPECT_EQ(f->platform, "linux/amd64");
  EXPECT_EQ(f->name, "a");

  auto empty = expand_from(parse_ok("FROM $NOPE\n").stages[0], vars({}));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(),
            "Dockerfile:1: FROM: the base image name is empty after substitution");
}

}  // namespace
}  // namespace berth::builder
