// SPDX-License-Identifier: Apache-2.0
// What the Dockerfile tests share (dockerfile_test.cc: instructions; dockerfile_expand_test.cc:
// substitution, ARG scoping, values): parsing that must succeed or fail, one instruction, and
// word expansion against a map of variables.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "builder/dockerfile.h"

namespace berth::builder::test_util {

inline Dockerfile parse_ok(std::string_view text) {
  auto r = parse_dockerfile(text);
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : Dockerfile{};
}

inline std::string parse_error(std::string_view text) {
  auto r = parse_dockerfile(text);
  EXPECT_FALSE(r) << "parsed, expected an error:\n" << text;
  if (r) {
    return "";
  }
  EXPECT_EQ(r.error().code(), Errc::InvalidArgument);
  return r.error().message();
}

// The only instruction of the only stage, after "FROM x".
inline Instruction one(std::string_view body) {
  std::string text = "FROM alpine\n";
  text += body;
  text += "\n";
  Dockerfile df = parse_ok(text);
  if (df.stages.size() != 1 || df.stages[0].instructions.size() != 1) {
    ADD_FAILURE() << "expected one instruction in:\n" << text;
    return Instruction{};
  }
  return df.stages[0].instructions[0];
}

inline VarLookup vars(std::map<std::string, std::string> m) {
  return [m = std::move(m)](std::string_view name) -> std::optional<std::string> {
    auto it = m.find(std::string(name));
    if (it == m.end()) {
      return std::nullopt;
    }
    return it->second;
  };
}

inline std::string expand(std::string_view word, const std::map<std::string, std::string>& m,
                          char escape = '\\') {
  auto r = expand_word(word, vars(m), escape);
  EXPECT_TRUE(r) << word << ": " << r.error().message();
  return r ? *r : "<error>";
}

inline std::string expand_error(std::string_view word,
                                const std::map<std::string, std::string>& m) {
  auto r = expand_word(word, vars(m));
  EXPECT_FALSE(r) << word << " expanded to " << (r ? *r : "");
  return r ? "" : r.error().message();
}

}  // namespace berth::builder::test_util
