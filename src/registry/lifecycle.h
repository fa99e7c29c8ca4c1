// SPDX-License-Identifier: Apache-2.0
// Lifecycle rules of a repository, in ECR's lifecycle-policy shape: parsing with ECR's
// validation, and the evaluation as a pure function (rules + images + protected digests + now
// -> one decision per image), so the preview and the maintenance tick decide the same way and
// tests need no store. The I/O (rules in the objects table, deletions) is in lifecycle.cc.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::registry {

/// One rule's "selection", as ECR spells it.
struct LifecycleSelection {
  std::string tag_status;                 // "tagged", "untagged" or "any"
  std::vector<std::string> tag_prefixes;  // tagPrefixList (tagged only)
  std::vector<std::string> tag_patterns;  // tagPatternList, '*' wildcards (tagged only)
  std::string count_type;                 // "imageCountMoreThan" or "sinceImagePushed"
  std::string count_unit;                 // "days" (sinceImagePushed only)
  int64_t count_number = 0;               // >= 1
};

struct LifecycleRule {
  int64_t priority = 0;  // rulePriority: unique, >= 1; lower runs first
  std::string description;
  LifecycleSelection selection;
};

/// A validated policy; rules sorted by priority.
struct LifecyclePolicy {
  std::vector<LifecycleRule> rules;
};

/// The largest policy text accepted (ECR's limit).
constexpr size_t kMaxLifecyclePolicyBytes = 30 * 1024;

/// Parses and validates a policy as ECR does: {"rules": [...]} with unique rulePriority,
/// tagged needs tagPrefixList or tagPatternList (not both, and neither for untagged/any), at
/// most one "any" rule and it has the highest rulePriority, sinceImagePushed needs countUnit
/// "days" (imageCountMoreThan takes none), countNumber >= 1, action {"type":"expire"}, and no
/// unknown field anywhere. InvalidArgument naming the field ("rules[0].selection.countType:
/// must be imageCountMoreThan or sinceImagePushed"); rules are indexed from 0.
Result<LifecyclePolicy> parse_lifecycle_policy(std::string_view json);

/// What evaluation needs of a manifest in the repository.
struct LifecycleImage {
  std::string digest;
  std::vector<std::string> tags;
  int64_t pushed_at = 0;              // unix seconds
  std::vector<std::string> children;  // manifests an index references
  std::string subject;                // the subject of a referrer ("" when none)
};

/// The decision for one image.
struct LifecycleDecision {
  std::string digest;
  std::vector<std::string> tags;
  int64_t pushed_at = 0;
  bool expire = false;
  int64_t rule_priority = 0;  // the rule that selected it (or its index/subject); 0 = none
  std::string reason;         // one human sentence
  // 0: decided by a rule; n > 0: follows an index or subject decided in wave n-1. Deleting in
  // wave order removes an index before its children, so no index ever names a missing child.
  int wave = 0;
};

struct LifecyclePreview {
  std::string repository;
  std::vector<LifecycleDecision> images;  // in the order the images were given
};

/// Decides, as ECR does, which images the rules expire: rules in priority order; each image
/// is selected by at most one rule (the first whose selection matches it); imageCountMoreThan
/// keeps the newest countNumber (by pushed_at) of the images it selects, sinceImagePushed
/// expires those pushed more than countNumber days before `now`. On top of ECR, never expired:
/// a digest in `pinned` (value: why, e.g. "a service revision or a running build uses it");
/// a manifest an index references, while any index referencing it is kept (children expire
/// with their last index and are not judged by the rules on their own); a referrer (subject
/// in the repository) while its subject is kept (it expires with its subject).
std::vector<LifecycleDecision> evaluate_lifecycle(const LifecyclePolicy& policy,
                                                  const std::vector<LifecycleImage>& images,
                                                  const std::map<std::string, std::string>& pinned,
                                                  int64_t now);

}  // namespace berth::registry
