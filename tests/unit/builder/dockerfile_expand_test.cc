// SPDX-License-Identifier: Apache-2.0
// Dockerfile variable substitution, ARG/ENV scoping and values (pure).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "builder/dockerfile.h"
#include "unit/builder/dockerfile_test_util.h"

namespace berth::builder {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace test_util;

// ---- substitution ---------------------------------------------------------------------------

TEST(DockerfileSubstitutionTest, Basics) {
  std::map<std::string, std::string> env = {{"FOO", "/bar"}, {"EMPTY", ""}, {"X", "x y"}};
  EXPECT_EQ(expand("$FOO", env), "/bar");
  EXPECT_EQ(expand("${FOO}", env), "/bar");
  EXPECT_EQ(expand("${FOO}/baz", env), "/bar/baz");
  EXPECT_EQ(expand("$FOO/baz", env), "/bar/baz");
  EXPECT_EQ(expand("$FOObaz", env), "");  // the name is FOObaz, unset
  EXPECT_EQ(expand("pre${FOO}post", env), "pre/barpost");
  EXPECT_EQ(expand("$UNSET", env), "");
  EXPECT_EQ(expand("a$", env), "a$");
  EXPECT_EQ(expand("$ a", env), "$ a");
  EXPECT_EQ(expand("$/x", env), "$/x");
  EXPECT_EQ(expand("$1", env), "");  // positional: never set
  EXPECT_EQ(expand("$X", env), "x y");
}

TEST(DockerfileSubstitutionTest, Modifiers) {
  std::map<std::string, std::string> env = {{"SET", "value"}, {"EMPTY", ""}};
  // ${VAR:-word}: word when unset or empty.
  EXPECT_EQ(expand("${SET:-word}", env), "value");
  EXPECT_EQ(expand("${EMPTY:-word}", env), "word");
  EXPECT_EQ(expand("${UNSET:-word}", env), "word");
  // ${VAR-word}: word only when unset.
  EXPECT_EQ(expand("${SET-word}", env), "value");
  EXPECT_EQ(expand("${EMPTY-word}", env), "");
  EXPECT_EQ(expand("${UNSET-word}", env), "word");
  // ${VAR:+word}: word when set and not empty, else "".
  EXPECT_EQ(expand("${SET:+word}", env), "word");
  EXPECT_EQ(expand("${EMPTY:+word}", env), "");
  EXPECT_EQ(expand("${UNSET:+word}", env), "");
  // ${VAR+word}: word when set (even empty).
  EXPECT_EQ(expand("${SET+word}", env), "word");
  EXPECT_EQ(expand("${EMPTY+word}", env), "word");
  EXPECT_EQ(expand("${UNSET+word}", env), "");
  // ${VAR:?msg} / ${VAR?msg}.
  EXPECT_EQ(expand("${SET:?must be set}", env), "value");
  EXPECT_EQ(expand("${EMPTY?must be set}", env), "");
  EXPECT_EQ(expand_error("${EMPTY:?must be set}", env), "EMPTY: must be set");
  EXPECT_EQ(expand_error("${UNSET?}", env), "UNSET: parameter is unset");
  // The word is itself expanded, and may be quoted.
  EXPECT_EQ(expand("${UNSET:-${SET}}", env), "value");
  EXPECT_EQ(expand("${UNSET:-$SET/x}", env), "value/x");
  EXPECT_EQ(expand("${UNSET:-\"a b\"}", env), "a b");
  EXPECT_EQ(expand("${UNSET:-a}b}", env), "ab}");
  EXPECT_EQ(expand("${UNSET:-}", env), "");
}

TEST(DockerfileSubstitutionTest, QuotesAndEscapes) {
  std::map<std::string, std::string> env = {{"FOO", "bar"}};
  EXPECT_EQ(expand("\\$FOO", env), "$FOO");
  EXPECT_EQ(expand("\\${FOO}", env), "${FOO}");
  EXPECT_EQ(expand("'$FOO'", env), "$FOO");
  EXPECT_EQ(expand("\"$FOO\"", env), "bar");
  EXPECT_EQ(expand("\"'$FOO'\"", env), "'bar'");
  EXPECT_EQ(expand("'\"$FOO\"'", env), "\"$FOO\"");
  EXPECT_EQ(expand("\"\\$FOO \\\" \\\\ \\n\"", env), "$FOO \" \\ \\n");
  EXPECT_EQ(expand("a\\ b", env), "a b");
  EXPECT_EQ(expand("C:\\dir", env), "C:dir");  // the escape char escapes any character
  EXPECT_EQ(expand("C:\\dir", env, '`'), "C:\\dir");
  EXPECT_EQ(expand("`$FOO $FOO", env, '`'), "$FOO bar");
  EXPECT_EQ(expand("it\\'s", env), "it's");
  EXPECT_EQ(expand("trailing\\", env), "trailing");
}

TEST(DockerfileSubstitutionTest, Errors) {
  EXPECT_EQ(expand_error("'open", {}), "unterminated single quote");
  EXPECT_EQ(expand_error("\"open", {}), "unterminated double quote");
  EXPECT_EQ(expand_error("${FOO", {}), "missing '}' after ${");
  EXPECT_EQ(expand_error("${FOO:-x", {}), "missing '}' after ${");
  EXPECT_THAT(expand_error("${}", {}), HasSubstr("bad substitution"));
  EXPECT_THAT(expand_error("${FOO#x}", {}), HasSubstr("unsupported modifier (#)"));
  EXPECT_THAT(expand_error("${FOO:=x}", {}), HasSubstr("unsupported modifier (:=)"));
}

TEST(DockerfileSubstitutionTest, WordSplitting) {
  auto split = [](std::string_view text, const std::map<std::string, std::string>& env) {
    auto r = expand_words(text, vars(env));
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : std::vector<std::string>{};
  };
  std::map<std::string, std::string> env = {{"PORTS", "80  443/udp"}};
  EXPECT_THAT(split("$PORTS", env), ElementsAre("80", "443/udp"));
  EXPECT_THAT(split("\"$PORTS\"", env), ElementsAre("80  443/udp"));
  EXPECT_THAT(split(" a  'b c' d\\ e ", env), ElementsAre("a", "b c", "d e"));
  EXPECT_THAT(split("\"\"", env), ElementsAre(""));
  EXPECT_THAT(split("$UNSET", env), IsEmpty());
}

TEST(DockerfileSubstitutionTest, WhichInstructions) {
  for (auto k : {InstructionKind::Add, InstructionKind::Copy, InstructionKind::Env,
                 InstructionKind::Expose, InstructionKind::From, InstructionKind::Label,
                 InstructionKind::StopSignal, InstructionKind::User, InstructionKind::Volume,
                 InstructionKind::Workdir, InstructionKind::Arg}) {
    EXPECT_TRUE(substitutes_variables(k)) << instruction_name(k);
  }
  for (auto k : {InstructionKind::Run, InstructionKind::Cmd, InstructionKind::Entrypoint,
                 InstructionKind::Shell, InstructionKind::Healthcheck, InstructionKind::Onbuild,
                 InstructionKind::Maintainer}) {
    EXPECT_FALSE(substitutes_variables(k)) << instruction_name(k);
  }
}

// Docker's documented example:
//   ENV FOO=/bar / WORKDIR ${FOO} / ADD . $FOO / COPY \$FOO /quux
TEST(DockerfileSubstitutionTest, DockerDocsExample) {
  Dockerfile df = parse_ok(
      "FROM busybox\n"
      "ENV FOO=/bar\n"
      "WORKDIR ${FOO}\n"
      "ADD . $FOO\n"
      "COPY \\$FOO /quux\n"
      "RUN echo $FOO\n");
  BuildVars v(BuildArgs{});
  v.begin_stage();
  std::vector<Instruction> out;
  for (const Instruction& ins : df.stages[0].instructions) {
    auto ex = expand_instruction(ins, v.lookup());
    ASSERT_TRUE(ex) << ex.error().message();
    if (ex->kind == InstructionKind::Env) {
      for (const KeyValue& kv : ex->as<KeyValues>().items) {
        v.set_env(kv.key, kv.value);
      }
    }
    out.push_back(*ex);
  }
  EXPECT_EQ(out[1].as<Text>().value, "/bar");
  EXPECT_EQ(out[2].as<CopySpec>().destination, "/bar");
  EXPECT_THAT(out[3].as<CopySpec>().sources, ElementsAre("$FOO"));
  EXPECT_EQ(out[4].as<Command>().shell, "echo $FOO");  // RUN: left to the shell
}

// Docker's documented example: every pair of one ENV sees the environment from before it.
//   ENV abc=hello / ENV abc=bye def=$abc / ENV ghi=$abc  => def=hello, ghi=bye
TEST(DockerfileSubstitutionTest, EnvPairsSeeThePreviousEnvironment) {
  Dockerfile df = parse_ok("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
  BuildVars v(BuildArgs{});
  v.begin_stage();
  for (const Instruction& ins : df.stages[0].instructions) {
    auto ex = expand_instruction(ins, v.lookup());
    ASSERT_TRUE(ex) << ex.error().message();
    for (const KeyValue& kv : ex->as<KeyValues>().items) {
      v.set_env(kv.key, kv.value);
    }
  }
  ASSERT_EQ(v.env().size(), 3u);
  EXPECT_EQ(v.env()[0].value, "bye");
  EXPECT_EQ(v.env()[1].key, "def");
  EXPECT_EQ(v.env()[1].value, "hello");
  EXPECT_EQ(v.env()[2].value, "bye");
}

TEST(DockerfileSubstitutionTest, ExpandInstructionFields) {
  auto env = vars({{"USER", "app"}, {"DIR", "/srv"}, {"MODE", "0640"}, {"EMPTY", ""}});
  auto copy = expand_instruction(one("COPY --chown=${USER}:${USER} --chmod=$MODE a $DIR/"), env);
  ASSERT_TRUE(copy) << copy.error().message();
  EXPECT_EQ(copy->as<CopySpec>().chown, "app:app");
  EXPECT_EQ(copy->as<CopySpec>().chmod, "0640");
  EXPECT_EQ(copy->as<CopySpec>().destination, "/srv/");
  EXPECT_EQ(copy->text, "COPY --chown=${USER}:${USER} --chmod=$MODE a $DIR/");  // as written

  auto label = expand_instruction(one("LABEL \"owner\"=\"$USER\" path=${DIR}/x"), env);
  ASSERT_TRUE(label);
  EXPECT_EQ(label->as<KeyValues>().items[0].key, "owner");
  EXPECT_EQ(label->as<KeyValues>().items[0].value, "app");
  EXPECT_EQ(label->as<KeyValues>().items[1].value, "/srv/x");

  auto arg = expand_instruction(one("ARG HOME_DIR=/home/$USER"), env);
  ASSERT_TRUE(arg);
  EXPECT_EQ(arg->as<ArgDecls>().items[0].default_value, "/home/app");

  auto vol = expand_instruction(one("VOLUME $DIR/data"), env);
  ASSERT_TRUE(vol);
  EXPECT_THAT(vol->as<Words>().items, ElementsAre("/srv/data"));

  auto sig = expand_instruction(one("STOPSIGNAL ${SIG:-term}"), env);
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->as<Text>().value, "SIGTERM");

  auto wd = expand_instruction(one("WORKDIR $EMPTY"), env);
  ASSERT_FALSE(wd);
  EXPECT_EQ(wd.error().message(), "Dockerfile:2: WORKDIR is empty after substitution");

  Instruction user;
  user.kind = InstructionKind::User;
  user.line = 9;
  user.payload = Text{"${USER"};
  auto bad = expand_instruction(user, env);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "Dockerfile:9: USER: missing '}' after ${");

  auto run = expand_instruction(one("RUN echo $USER"), env);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->as<Command>().shell, "echo $USER");
}

TEST(DockerfileSubstitutionTest, SyntaxIsCheckedWhenParsing) {
  EXPECT_EQ(parse_error("FROM a\nUSER ${USER\n"), "Dockerfile:2: USER: missing '}' after ${");
  EXPECT_EQ(parse_error("FROM a\nCOPY \"my file\" /x\n"),
            "Dockerfile:2: COPY: unterminated double quote");
  EXPECT_THAT(parse_error("FROM a\n\nWORKDIR /app/${DIR%/}\n"),
              HasSubstr("Dockerfile:3: WORKDIR: unsupported modifier (%)"));
  EXPECT_EQ(parse_error("ARG V\nFROM alpine:${V:-3.19\n"),
            "Dockerfile:2: FROM: missing '}' after ${");
  EXPECT_EQ(parse_error("FROM a\nENV A=${B:-x\n"), "Dockerfile:2: ENV: missing '}' after ${");
  // ${VAR:?message} fails only at build time, when VAR is really unset.
  EXPECT_EQ(one("WORKDIR ${DIR:?set DIR}").as<Text>().value, "${DIR:?set DIR}");
  // Not checked: instructions that Docker does not substitute.
  EXPECT_EQ(one("RUN echo ${X").as<Command>().shell, "echo ${X");
}

// ---- ARG scoping --------------------------------------------------------------------------

TEST(DockerfileArgScopeTest, GlobalArgsNeedRedeclaring) {
  BuildVars v(BuildArgs{});
  v.declare_global(ArgDecl{"VERSION", "1.0"});
  EXPECT_EQ(v.global_lookup()("VERSION"), "1.0");
  v.begin_stage();
  EXPECT_EQ(v.lookup()("VERSION"), std::nullopt);  // not visible until redeclared
  v.declare_arg(ArgDecl{"VERSION", std::nullopt});
  EXPECT_EQ(v.lookup()("VERSION"), "1.0");  // inherits the global value
  v.begin_stage();
  EXPECT_EQ(v.lookup()("VERSION"), std::nullopt);  // each stage starts again
  v.declare_arg(ArgDecl{"VERSION", "2.0"});
  EXPECT_EQ(v.lookup()("VERSION"), "2.0");
}

TEST(DockerfileArgScopeTest, BuildArgsOverrideDefaults) {
  BuildVars v(BuildArgs{{"VERSION", "9"}, {"UNDECLARED", "x"}});
  v.declare_global(ArgDecl{"VERSION", "1.0"});
  EXPECT_EQ(v.global_lookup()("VERSION"), "9");
  v.begin_stage();
  EXPECT_EQ(v.lookup()("UNDECLARED"), std::nullopt);
  v.declare_arg(ArgDecl{"VERSION", "2.0"});
  EXPECT_EQ(v.lookup()("VERSION"), "9");
  v.declare_arg(ArgDecl{"NOVALUE", std::nullopt});
  EXPECT_EQ(v.lookup()("NOVALUE"), std::nullopt);
}

TEST(DockerfileArgScopeTest, EnvOverridesArg) {
  // Docker's example: ARG CONT_IMG_VER / ENV CONT_IMG_VER=v1.0.0 -> v1.0.0 whatever the arg.
  BuildVars v(BuildArgs{{"CONT_IMG_VER", "v2.0.1"}});
  v.begin_stage({{"PATH", "/usr/bin"}});
  v.declare_arg(ArgDecl{"CONT_IMG_VER", std::nullopt});
  EXPECT_EQ(v.lookup()("CONT_IMG_VER"), "v2.0.1");
  v.set_env("CONT_IMG_VER", "v1.0.0");
  EXPECT_EQ(v.lookup()("CONT_IMG_VER"), "v1.0.0");
  EXPECT_EQ(v.lookup()("PATH"), "/usr/bin");
  v.set_env("PATH", "/app:/usr/bin");
  ASSERT_EQ(v.env().size(), 2u);
  EXPECT_EQ(v.env()[0].value, "/app:/usr/bin");  // replaced in place
  EXPECT_THAT(v.run_env(), ElementsAre("PATH=/app:/usr/bin", "CONT_IMG_VER=v1.0.0"));
}

TEST(DockerfileArgScopeTest, RunEnvAndProxyArgs) {
  BuildVars v(
      BuildArgs{{"HTTP_PROXY", "http://proxy:3128"}, {"no_proxy", "localhost"}, {"B", "bv"}});
  v.begin_stage({{"HOME", "/root"}});
  v.declare_arg(ArgDecl{"B", std::nullopt});
  v.declare_arg(ArgDecl{"A", "1"});
  v.declare_arg(ArgDecl{"UNSET", std::nullopt});
  EXPECT_EQ(v.lookup()("HTTP_PROXY"), "http://proxy:3128");  // predefined: no ARG needed
  EXPECT_THAT(v.run_env(), ElementsAre("HOME=/root", "A=1", "B=bv", "HTTP_PROXY=http://proxy:3128",
                                       "no_proxy=localhost"));
  EXPECT_TRUE(is_predefined_arg("https_proxy"));
  EXPECT_TRUE(is_predefined_arg("ALL_PROXY"));
  EXPECT_FALSE(is_predefined_arg("PROXY"));
}

TEST(DockerfileArgScopeTest, PlatformArgs) {
  auto p = platform_args("linux", "arm64", "v8", "linux", "amd64", "");
  EXPECT_EQ(p["TARGETPLATFORM"], "linux/arm64/v8");
  EXPECT_EQ(p["TARGETARCH"], "arm64");
  EXPECT_EQ(p["BUILDPLATFORM"], "linux/amd64");
  BuildVars v({}, p);
  EXPECT_EQ(v.global_lookup()("TARGETOS"), "linux");  // global scope: automatic
  v.begin_stage();
  EXPECT_EQ(v.lookup()("TARGETARCH"), std::nullopt);  // stage: only after "ARG TARGETARCH"
  v.declare_arg(ArgDecl{"TARGETARCH", std::nullopt});
  EXPECT_EQ(v.lookup()("TARGETARCH"), "arm64");
}

TEST(DockerfileArgScopeTest, UnusedBuildArgs) {
  Dockerfile df = parse_ok("ARG A\nFROM x\nARG B=1 C\n");
  auto unused = unused_build_args(df, {{"A", "1"}, {"C", "2"}, {"D", "3"}, {"HTTP_PROXY", "p"}});
  EXPECT_THAT(unused, ElementsAre("D"));
}

// ---- values -------------------------------------------------------------------------------

TEST(DockerfileValuesTest, Durations) {
  EXPECT_EQ(parse_duration("0").value(), 0);
  EXPECT_EQ(parse_duration("1ns").value(), 1);
  EXPECT_EQ(parse_duration("2us").value(), 2000);
  EXPECT_EQ(parse_duration("1.5h").value(), 5'400'000'000'000);
  EXPECT_EQ(parse_duration("1h2m3s4ms").value(), 3'723'004'000'000);
  EXPECT_EQ(parse_duration(".5s").value(), 500'000'000);
  EXPECT_EQ(parse_duration("-2s").value(), -2'000'000'000);
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("1d"));
  EXPECT_FALSE(parse_duration("1.s.2"));
  // More digits than a long double holds: an error (too long), not std::out_of_range.
  EXPECT_FALSE(parse_duration(std::string(5000, '9') + "s"));
  // A fraction so small it underflows is just zero.
  EXPECT_EQ(parse_duration("0." + std::string(5000, '0') + "1s").value(), 0);
}

TEST(DockerfileValuesTest, Signals) {
  EXPECT_EQ(parse_signal("SIGTERM").value(), "SIGTERM");
  EXPECT_EQ(parse_signal("term").value(), "SIGTERM");
  EXPECT_EQ(parse_signal("9").value(), "9");
  EXPECT_EQ(parse_signal("SIGRTMIN+3").value(), "SIGRTMIN+3");
  EXPECT_FALSE(parse_signal("0"));
  EXPECT_FALSE(parse_signal("65"));
  EXPECT_FALSE(parse_signal("SIGFOO"));
  EXPECT_FALSE(parse_signal("RTMIN+99"));
}

TEST(DockerfileValuesTest, Ports) {
  EXPECT_EQ(parse_port("80").value().str(), "80/tcp");
  EXPECT_EQ(parse_port("53/UDP").value().str(), "53/udp");
  EXPECT_EQ(parse_port("8000-8010/sctp").value().str(), "8000-8010/sctp");
  EXPECT_FALSE(parse_port("0"));
  EXPECT_FALSE(parse_port("80/"));
  EXPECT_FALSE(parse_port("-80"));
  EXPECT_FALSE(parse_port("1.2.3.4:80:80"));
}

TEST(DockerfileValuesTest, RemoteSources) {
  EXPECT_TRUE(is_remote_source("https://example.com/a.tgz"));
  EXPECT_TRUE(is_remote_source("HTTP://example.com/a"));
  EXPECT_TRUE(is_remote_source("git@github.com:a/b.git"));
  EXPECT_TRUE(is_remote_source("git://example.com/r"));
  EXPECT_FALSE(is_remote_source("httpdocs/"));
  EXPECT_FALSE(is_remote_source("vendor.tar.gz"));
}

}  // namespace
}  // namespace berth::builder
