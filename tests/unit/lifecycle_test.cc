// SPDX-License-Identifier: Apache-2.0
// Lifecycle rules without a store: ECR's validation (each error names its field) and the
// evaluation (selection by tag status, prefix and pattern, the two count types, priority
// order, and what is protected: pins, index children, referrers).
#include "registry/lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace berth::registry {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDay = 86400;
constexpr int64_t kNow = 1'800'000'000;

std::string error_of(const std::string& json) {
  auto p = parse_lifecycle_policy(json);
  EXPECT_FALSE(p.has_value()) << json;
  return p ? "" : p.error().message();
}

LifecyclePolicy policy(const std::string& json) {
  auto p = parse_lifecycle_policy(json);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message());
  return p ? *p : LifecyclePolicy{};
}

// One rule from its selection's JSON.
std::string rule(int priority, const std::string& selection) {
  return R"({"rulePriority":)" + std::to_string(priority) + R"(,"selection":)" + selection +
         R"(,"action":{"type":"expire"}})";
}

std::string rules(const std::vector<std::string>& rs) {
  std::string out = R"({"rules":[)";
  for (size_t i = 0; i < rs.size(); ++i) {
    out += (i ? "," : "") + rs[i];
  }
  return out + "]}";
}

LifecycleImage img(const std::string& digest, std::vector<std::string> tags, int64_t age_days) {
  LifecycleImage i;
  i.digest = digest;
  i.tags = std::move(tags);
  i.pushed_at = kNow - age_days * kDay;
  return i;
}

// digest -> "expire" / "keep".
std::map<std::string, std::string> actions(const std::vector<LifecycleDecision>& ds) {
  std::map<std::string, std::string> out;
  for (const auto& d : ds) {
    out[d.digest] = d.expire ? "expire" : "keep";
  }
  return out;
}

const LifecycleDecision& find(const std::vector<LifecycleDecision>& ds, const std::string& d) {
  for (const auto& x : ds) {
    if (x.digest == d) {
      return x;
    }
  }
  static LifecycleDecision none;
  ADD_FAILURE() << "no decision for " << d;
  return none;
}

// ---- validation ----------------------------------------------------------------------------

TEST(LifecycleValidationTest, AcceptsEcrExample) {
  auto p = policy(R"({"rules":[
    {"rulePriority":2,"description":"keep 10 releases","selection":{"tagStatus":"tagged",
     "tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":10},
     "action":{"type":"expire"}},
    {"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed",
     "countUnit":"days","countNumber":14},"action":{"type":"expire"}}]})");
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].priority, 1);  // sorted by priority
  EXPECT_EQ(p.rules[1].description, "keep 10 releases");
  EXPECT_EQ(p.rules[1].selection.tag_prefixes, std::vector<std::string>{"v"});
}

TEST(LifecycleValidationTest, ErrorsNameTheField) {
  const std::string count = R"("countType":"imageCountMoreThan","countNumber":1)";
  struct Case {
    std::string json;
    std::string want;
  };
  std::vector<Case> cases = {
      {"[]", "lifecycle policy must be a JSON object"},
      {"{", "lifecycle policy"},
      {R"({"rules":[]})", "rules: must be a non-empty list"},
      {R"({"rules":[],"extra":1})", "extra: unknown field"},
      {rules({rule(1, R"({"tagStatus":"untagged","countType":"soon","countNumber":1})")}),
       "rules[0].selection.countType: must be imageCountMoreThan or sinceImagePushed"},
      {rules({rule(1, R"({"tagStatus":"old",)" + count + "}")}),
       "rules[0].selection.tagStatus: must be tagged, untagged or any"},
      {rules({rule(1, R"({"tagStatus":"untagged",)" + count + "}"),
              rule(1, R"({"tagStatus":"untagged",)" + count + "}")}),
       "rules[1].rulePriority: 1 is used by another rule"},
      {rules({rule(0, R"({"tagStatus":"untagged",)" + count + "}")}),
       "rules[0].rulePriority: must be an integer of at least 1"},
      {rules({rule(1, R"({"tagStatus":"tagged",)" + count + "}")}),
       "rules[0].selection: tagStatus tagged needs tagPrefixList or tagPatternList"},
      {rules({rule(1, R"({"tagStatus":"tagged","tagPrefixList":["v"],"tagPatternList":["v*"],)" +
                          count + "}")}),
       "rules[0].selection: tagPrefixList and tagPatternList: give one, not both"},
      {rules({rule(1, R"({"tagStatus":"untagged","tagPrefixList":["v"],)" + count + "}")}),
       "rules[0].selection.tagPrefixList: only applies with tagStatus tagged"},
      {rules({rule(1, R"({"tagStatus":"tagged","tagPrefixList":[],)" + count + "}")}),
       "rules[0].selection.tagPrefixList: must be a non-empty list of strings"},
      {rules({rule(1, R"({"tagStatus":"tagged","tagPatternList":["a*b*c*d*e*f"],)" + count + "}")}),
       "rules[0].selection.tagPatternList[0]: at most 4 '*' wildcards"},
      {rules({rule(1, R"({"tagStatus":"tagged","tagPrefixList":["a/b"],)" + count + "}")}),
       "rules[0].selection.tagPrefixList[0]: must be a tag prefix"},
      {rules({rule(1, R"({"tagStatus":"any","countType":"sinceImagePushed","countNumber":3})")}),
       "rules[0].selection.countUnit: required with sinceImagePushed"},
      {rules({rule(1, R"({"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours",)"
                      R"("countNumber":3})")}),
       "rules[0].selection.countUnit: must be days"},
      {rules({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days",)"
                      R"("countNumber":3})")}),
       "rules[0].selection.countUnit: only applies with countType sinceImagePushed"},
      {rules({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0})")}),
       "rules[0].selection.countNumber: must be an integer of at least 1"},
      {rules(
           {rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":"3"})")}),
       "rules[0].selection.countNumber: must be an integer of at least 1"},
      {rules({rule(1, R"({"tagStatus":"any",)" + count + R"(,"tagPrefix":["v"]})")}),
       "rules[0].selection.tagPrefix: unknown field"},
      {R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",)" + count +
           R"(},"action":{"type":"delete"}}]})",
       "rules[0].action.type: must be expire"},
      {R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",)" + count + R"(}}]})",
       "rules[0].action: required"},
      {R"({"rules":[{"rulePriority":1,"priority":1,"selection":{"tagStatus":"any",)" + count +
           R"(},"action":{"type":"expire"}}]})",
       "rules[0].priority: unknown field"},
      {rules({rule(1, R"({"tagStatus":"any",)" + count + "}"),
              rule(2, R"({"tagStatus":"untagged",)" + count + "}")}),
       "rules[0].rulePriority: a rule with tagStatus any must have the highest rulePriority"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(error_of(c.json), HasSubstr(c.want)) << c.json;
  }
}

TEST(LifecycleValidationTest, RefusesTooLargePolicy) {
  std::string big = R"({"rules":[)" +
                    rule(1, R"({"tagStatus":"any",)"
                            R"("countType":"imageCountMoreThan",)"
                            R"("countNumber":1})") +
                    "]," + R"("pad":")" + std::string(31 * 1024, 'x') + "\"}";
  EXPECT_THAT(error_of(big), HasSubstr("larger than 30 KiB"));
}

// ---- evaluation ----------------------------------------------------------------------------

TEST(LifecycleEvaluationTest, ImageCountKeepsTheNewestOfThoseSelected) {
  auto p = policy(rules(
      {rule(1, R"({"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan",)"
               R"("countNumber":2})")}));
  std::vector<LifecycleImage> images = {img("sha256:a", {"v1"}, 4), img("sha256:b", {"v2"}, 3),
                                        img("sha256:c", {"v3"}, 2), img("sha256:d", {"dev"}, 9)};
  auto ds = evaluate_lifecycle(p, images, {}, kNow);
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{{"sha256:a", "expire"},
                                                             {"sha256:b", "keep"},
                                                             {"sha256:c", "keep"},
                                                             {"sha256:d", "keep"}}));
  EXPECT_EQ(find(ds, "sha256:a").rule_priority, 1);
  EXPECT_THAT(find(ds, "sha256:a").reason, HasSubstr("keeps only the newest 2 of the 3 images"));
  EXPECT_EQ(find(ds, "sha256:d").rule_priority, 0);
  EXPECT_EQ(find(ds, "sha256:d").reason, "no rule selects it");
}

TEST(LifecycleEvaluationTest, PrefixListNeedsEveryPrefix) {
  // ECR: with several prefixes, only images carrying all of them are selected.
  auto p = policy(
      rules({rule(1, R"({"tagStatus":"tagged","tagPrefixList":["prod","v"],)"
                     R"("countType":"sinceImagePushed","countUnit":"days","countNumber":1})")}));
  std::vector<LifecycleImage> images = {img("sha256:a", {"prod-1", "v1"}, 5),
                                        img("sha256:b", {"prod-2"}, 5)};
  auto ds = evaluate_lifecycle(p, images, {}, kNow);
  EXPECT_EQ(actions(ds),
            (std::map<std::string, std::string>{{"sha256:a", "expire"}, {"sha256:b", "keep"}}));
}

TEST(LifecycleEvaluationTest, PatternListMatchesWildcards) {
  auto p = policy(rules({rule(1, R"({"tagStatus":"tagged","tagPatternList":["*-rc*"],)"
                                 R"("countType":"imageCountMoreThan","countNumber":1})")}));
  std::vector<LifecycleImage> images = {img("sha256:a", {"1.0-rc1"}, 3),
                                        img("sha256:b", {"1.0-rc2"}, 2),
                                        img("sha256:c", {"1.0"}, 9)};
  auto ds = evaluate_lifecycle(p, images, {}, kNow);
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{
                             {"sha256:a", "expire"}, {"sha256:b", "keep"}, {"sha256:c", "keep"}}));
}

TEST(LifecycleEvaluationTest, UntaggedAndAny) {
  auto p = policy(
      rules({rule(1, R"({"tagStatus":"untagged","countType":"sinceImagePushed",)"
                     R"("countUnit":"days","countNumber":7})"),
             rule(2, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1})")}));
  std::vector<LifecycleImage> images = {img("sha256:old-untagged", {}, 8),
                                        img("sha256:new-untagged", {}, 6),
                                        img("sha256:t1", {"a"}, 5), img("sha256:t2", {"b"}, 1)};
  auto ds = evaluate_lifecycle(p, images, {}, kNow);
  // The untagged ones are rule 1's: rule 2 (any) never sees them, so it keeps t2, the newest
  // of what is left, even though new-untagged is newer than t1.
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{{"sha256:old-untagged", "expire"},
                                                             {"sha256:new-untagged", "keep"},
                                                             {"sha256:t1", "expire"},
                                                             {"sha256:t2", "keep"}}));
  EXPECT_THAT(find(ds, "sha256:old-untagged").reason,
              HasSubstr("rule 1: pushed 8 days ago, more than 7 days"));
  EXPECT_THAT(find(ds, "sha256:new-untagged").reason, HasSubstr("within 7 days"));
  EXPECT_EQ(find(ds, "sha256:t1").rule_priority, 2);
}

TEST(LifecycleEvaluationTest, HugeDayCountsExpireNothing) {
  auto p = policy(
      rules({rule(1, R"({"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days",)"
                     R"("countNumber":9223372036854775807})")}));
  auto ds = evaluate_lifecycle(p, {img("sha256:a", {"v1"}, 20000)}, {}, kNow);
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{{"sha256:a", "keep"}}));
}

TEST(LifecycleEvaluationTest, LowerPriorityNumberClaimsTheImageFirst) {
  // Rule 1 keeps every "prod" image (count 100); rule 2 would expire all but one tagged "v",
  // but may not touch what rule 1 selected, whatever their order in the document.
  auto p = policy(rules({rule(2, R"({"tagStatus":"tagged","tagPrefixList":["v"],)"
                                 R"("countType":"imageCountMoreThan","countNumber":1})"),
                         rule(1, R"({"tagStatus":"tagged","tagPrefixList":["prod"],)"
                                 R"("countType":"imageCountMoreThan","countNumber":100})")}));
  std::vector<LifecycleImage> images = {img("sha256:a", {"v1", "prod-a"}, 5),
                                        img("sha256:b", {"v2"}, 4), img("sha256:c", {"v3"}, 3)};
  auto ds = evaluate_lifecycle(p, images, {}, kNow);
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{
                             {"sha256:a", "keep"}, {"sha256:b", "expire"}, {"sha256:c", "keep"}}));
  EXPECT_EQ(find(ds, "sha256:a").rule_priority, 1);
  EXPECT_EQ(find(ds, "sha256:b").rule_priority, 2);
}

TEST(LifecycleEvaluationTest, PinnedDigestsAreNeverExpired) {
  auto p = policy(
      rules({rule(1, R"({"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1})")}));
  std::vector<LifecycleImage> images = {img("sha256:a", {"v1"}, 3), img("sha256:b", {"v2"}, 2),
                                        img("sha256:c", {"v3"}, 1)};
  auto ds = evaluate_lifecycle(p, images, {{"sha256:a", "pinned by service web"}}, kNow);
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{
                             {"sha256:a", "keep"}, {"sha256:b", "expire"}, {"sha256:c", "keep"}}));
  EXPECT_EQ(find(ds, "sha256:a").reason,
            "protected: pinned by service web (rule 1 would expire it)");
}

TEST(LifecycleEvaluationTest, IndexChildrenGoWithTheirLastIndex) {
  auto p = policy(rules({rule(1, R"({"tagStatus":"tagged","tagPrefixList":["v"],)"
                                 R"("countType":"imageCountMoreThan","countNumber":1})"),
                         rule(2, R"({"tagStatus":"untagged","countType":"imageCountMoreThan",)"
                                 R"("countNumber":1})")}));
  auto old_index = img("sha256:i1", {"v1"}, 5);
  old_index.children = {"sha256:amd64-1", "sha256:shared"};
  auto new_index = img("sha256:i2", {"v2"}, 1);
  new_index.children = {"sha256:amd64-2", "sha256:shared"};
  auto sig = img("sha256:sig1", {}, 5);
  sig.subject = "sha256:i1";
  std::vector<LifecycleImage> images = {new_index,
                                        old_index,
                                        img("sha256:amd64-1", {}, 5),
                                        img("sha256:amd64-2", {}, 1),
                                        img("sha256:shared", {}, 6),
                                        sig,
                                        img("sha256:stray1", {}, 9),
                                        img("sha256:stray2", {}, 8)};
  auto ds = evaluate_lifecycle(p, images, {}, kNow);
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{{"sha256:i1", "expire"},
                                                             {"sha256:i2", "keep"},
                                                             {"sha256:amd64-1", "expire"},
                                                             {"sha256:amd64-2", "keep"},
                                                             {"sha256:shared", "keep"},
                                                             {"sha256:sig1", "expire"},
                                                             {"sha256:stray1", "expire"},
                                                             {"sha256:stray2", "keep"}}));
  // Children and referrers are not counted by the untagged rule: only the strays are.
  EXPECT_THAT(find(ds, "sha256:stray1").reason, HasSubstr("of the 2 images"));
  EXPECT_THAT(find(ds, "sha256:shared").reason, HasSubstr("referenced by kept index sha256:i2"));
  EXPECT_THAT(find(ds, "sha256:amd64-1").reason, HasSubstr("expires with index sha256:i1"));
  EXPECT_EQ(find(ds, "sha256:amd64-1").rule_priority, 1);
  EXPECT_EQ(find(ds, "sha256:amd64-1").wave, 1);
  EXPECT_THAT(find(ds, "sha256:sig1").reason, HasSubstr("expires with its subject sha256:i1"));
}

TEST(LifecycleEvaluationTest, PinsProtectChildrenAndReferrersAndKeepTheirDependents) {
  auto p = policy(
      rules({rule(1, R"({"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days",)"
                     R"("countNumber":1})")}));
  auto index = img("sha256:idx", {"v1"}, 5);
  index.children = {"sha256:child"};
  auto sig = img("sha256:sig", {}, 5);
  sig.subject = "sha256:img";
  auto sig_of_sig = img("sha256:sig2", {}, 5);
  sig_of_sig.subject = "sha256:sig";
  std::vector<LifecycleImage> images = {index, img("sha256:child", {}, 5),
                                        img("sha256:img", {"v0"}, 5), sig, sig_of_sig};
  auto ds =
      evaluate_lifecycle(p, images, {{"sha256:child", "pinned"}, {"sha256:img", "pinned"}}, kNow);
  EXPECT_EQ(actions(ds), (std::map<std::string, std::string>{{"sha256:idx", "expire"},
                                                             {"sha256:child", "keep"},
                                                             {"sha256:img", "keep"},
                                                             {"sha256:sig", "keep"},
                                                             {"sha256:sig2", "keep"}}));
  EXPECT_THAT(find(ds, "sha256:child").reason, HasSubstr("protected: pinned"));
  EXPECT_THAT(find(ds, "sha256:sig").reason, HasSubstr("a referrer of kept subject sha256:img"));
  EXPECT_EQ(find(ds, "sha256:sig2").wave, 2);
}

TEST(LifecycleEvaluationTest, DanglingReferrerIsJudgedLikeAnyImage) {
  auto p = policy(rules(
      {rule(1, R"({"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1})")}));
  auto a = img("sha256:a", {}, 3);
  a.subject = "sha256:gone";
  std::vector<LifecycleImage> images = {a, img("sha256:b", {}, 1)};
  auto ds = evaluate_lifecycle(p, images, {}, kNow);
  EXPECT_EQ(actions(ds),
            (std::map<std::string, std::string>{{"sha256:a", "expire"}, {"sha256:b", "keep"}}));
}

}  // namespace
}  // namespace berth::registry
