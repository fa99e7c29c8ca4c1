// SPDX-License-Identifier: Apache-2.0
// Lifecycle rules without I/O: ECR's validation and evaluation (see lifecycle.h).
#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/json.h"
#include "oci/oci.h"
#include "registry/lifecycle.h"

namespace berth::registry {

namespace {

Error bad(const std::string& field, const std::string& what) {
  return Error(Errc::InvalidArgument, field + ": " + what);
}

// Refuses any key not in `known`, naming it: a typo ("tagPrefixes") would otherwise select
// more than the author meant.
Status only_fields(const Json& obj, const std::string& where,
                   std::initializer_list<const char*> known) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = std::any_of(known.begin(), known.end(), [&](const char* k) { return it.key() == k; });
    if (!ok) {
      return bad(where.empty() ? it.key() : where + "." + it.key(), "unknown field");
    }
  }
  return berth::ok();
}

// A tag as the distribution spec allows one: [A-Za-z0-9_][A-Za-z0-9._-]*, with '*' wildcards
// in patterns.
bool tag_chars(const std::string& s, bool wildcards) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || (wildcards && c == '*');
  });
}

Result<std::vector<std::string>> tag_list(const Json& v, const std::string& field, bool wildcards) {
  if (!v.is_array() || v.empty()) {
    return bad(field, "must be a non-empty list of strings");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string f = field + "[" + std::to_string(i) + "]";
    if (!v[i].is_string() || v[i].get<std::string>().empty()) {
      return bad(f, "must be a non-empty string");
    }
    auto s = v[i].get<std::string>();
    if (s.size() > 128 || !tag_chars(s, wildcards)) {
      return bad(f, wildcards ? "must be a tag with '*' wildcards ([A-Za-z0-9_.-*], at most 128)"
                              : "must be a tag prefix ([A-Za-z0-9_.-], at most 128)");
    }
    if (wildcards && std::count(s.begin(), s.end(), '*') > 4) {
      return bad(f, "at most 4 '*' wildcards");
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> positive_int(const Json& obj, const char* key, const std::string& where) {
  std::string f = where + "." + key;
  auto it = obj.find(key);
  if (it == obj.end()) {
    return bad(f, "required");
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    return bad(f, "must be an integer of at least 1");
  }
  return it->get<int64_t>();
}

Result<LifecycleSelection> parse_selection(const Json& s, const std::string& where) {
  if (!s.is_object()) {
    return bad(where, "must be an object");
  }
  BERTH_TRY(only_fields(
      s, where,
      {"tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit", "countNumber"}));
  LifecycleSelection sel;
  auto status = s.find("tagStatus");
  if (status == s.end()) {
    return bad(where + ".tagStatus", "required (tagged, untagged or any)");
  }
  if (!status->is_string() || (*status != "tagged" && *status != "untagged" && *status != "any")) {
    return bad(where + ".tagStatus", "must be tagged, untagged or any");
  }
  sel.tag_status = status->get<std::string>();
  bool has_prefix = s.contains("tagPrefixList");
  bool has_pattern = s.contains("tagPatternList");
  if (sel.tag_status == "tagged") {
    if (has_prefix == has_pattern) {
      return bad(where, has_prefix ? "tagPrefixList and tagPatternList: give one, not both"
                                   : "tagStatus tagged needs tagPrefixList or tagPatternList");
    }
    if (has_prefix) {
      BERTH_ASSIGN_OR_RETURN(sel.tag_prefixes,
                             tag_list(s["tagPrefixList"], where + ".tagPrefixList", false));
    } else {
      BERTH_ASSIGN_OR_RETURN(sel.tag_patterns,
                             tag_list(s["tagPatternList"], where + ".tagPatternList", true));
    }
  } else if (has_prefix || has_pattern) {
    return bad(where + (has_prefix ? ".tagPrefixList" : ".tagPatternList"),
               "only applies with tagStatus tagged");
  }
  auto type = s.find("countType");
  if (type == s.end()) {
    return bad(where + ".countType", "required (imageCountMoreThan or sinceImagePushed)");
  }
  if (!type->is_string() || (*type != "imageCountMoreThan" && *type != "sinceImagePushed")) {
    return bad(where + ".countType", "must be imageCountMoreThan or sinceImagePushed");
  }
  sel.count_type = type->get<std::string>();
  auto unit = s.find("countUnit");
  if (sel.count_type == "sinceImagePushed") {
    if (unit == s.end()) {
      return bad(where + ".countUnit", "required with sinceImagePushed (days)");
    }
    if (*unit != "days") {
      return bad(where + ".countUnit", "must be days");
    }
    sel.count_unit = "days";
  } else if (unit != s.end()) {
    return bad(where + ".countUnit", "only applies with countType sinceImagePushed");
  }
  BERTH_ASSIGN_OR_RETURN(sel.count_number, positive_int(s, "countNumber", where));
  return sel;
}

Result<LifecycleRule> parse_rule(const Json& r, const std::string& where) {
  if (!r.is_object()) {
    return bad(where, "must be an object");
  }
  BERTH_TRY(only_fields(r, where, {"rulePriority", "description", "selection", "action"}));
  LifecycleRule rule;
  BERTH_ASSIGN_OR_RETURN(rule.priority, positive_int(r, "rulePriority", where));
  if (auto d = r.find("description"); d != r.end()) {
    if (!d->is_string() || d->get<std::string>().size() > 256) {
      return bad(where + ".description", "must be a string of at most 256 characters");
    }
    rule.description = d->get<std::string>();
  }
  auto sel = r.find("selection");
  if (sel == r.end()) {
    return bad(where + ".selection", "required");
  }
  BERTH_ASSIGN_OR_RETURN(rule.selection, parse_selection(*sel, where + ".selection"));
  auto action = r.find("action");
  if (action == r.end()) {
    return bad(where + ".action", "required ({\"type\": \"expire\"})");
  }
  if (!action->is_object()) {
    return bad(where + ".action", "must be an object");
  }
  BERTH_TRY(only_fields(*action, where + ".action", {"type"}));
  auto type = action->find("type");
  if (type == action->end() || *type != "expire") {
    return bad(where + ".action.type", "must be expire");
  }
  return rule;
}

// ECR: every prefix (pattern) of the list must match some tag of the image.
bool selects(const LifecycleSelection& s, const LifecycleImage& img) {
  if (s.tag_status == "any") {
    return true;
  }
  if (s.tag_status == "untagged") {
    return img.tags.empty();
  }
  if (img.tags.empty()) {
    return false;
  }
  for (const auto& p : s.tag_prefixes) {
    bool hit = std::any_of(img.tags.begin(), img.tags.end(),
                           [&](const std::string& t) { return t.rfind(p, 0) == 0; });
    if (!hit) {
      return false;
    }
  }
  for (const auto& p : s.tag_patterns) {
    bool hit = std::any_of(img.tags.begin(), img.tags.end(),
                           [&](const std::string& t) { return oci::glob_match(p, t); });
    if (!hit) {
      return false;
    }
  }
  return true;
}

std::string short_digest(const std::string& d) {
  auto colon = d.find(':');
  return colon == std::string::npos ? d : d.substr(0, std::min(d.size(), colon + 13));
}

std::string plural(int64_t n, const char* one) {
  return std::to_string(n) + " " + one + (n == 1 ? "" : "s");
}

}  // namespace

Result<LifecyclePolicy> parse_lifecycle_policy(std::string_view text) {
  if (text.size() > kMaxLifecyclePolicyBytes) {
    return Error(Errc::InvalidArgument, "lifecycle policy is larger than 30 KiB");
  }
  BERTH_ASSIGN_OR_RETURN(Json j, parse_json(text, "lifecycle policy"));
  if (!j.is_object()) {
    return Error(Errc::InvalidArgument,
                 "lifecycle policy must be a JSON object {\"rules\": [...]}");
  }
  BERTH_TRY(only_fields(j, "", {"rules"}));
  auto rules = j.find("rules");
  if (rules == j.end() || !rules->is_array() || rules->empty()) {
    return bad("rules", "must be a non-empty list of rules");
  }
  LifecyclePolicy p;
  std::set<int64_t> priorities;
  for (size_t i = 0; i < rules->size(); ++i) {
    std::string where = "rules[" + std::to_string(i) + "]";
    BERTH_ASSIGN_OR_RETURN(auto rule, parse_rule((*rules)[i], where));
    if (!priorities.insert(rule.priority).second) {
      return bad(where + ".rulePriority",
                 std::to_string(rule.priority) + " is used by another rule; priorities are unique");
    }
    p.rules.push_back(std::move(rule));
  }
  // ECR: a rule that selects any image must come last, or the rules after it select nothing.
  int64_t highest = *priorities.rbegin();
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const auto& r = p.rules[i];
    if (r.selection.tag_status == "any" && r.priority != highest) {
      return bad("rules[" + std::to_string(i) + "].rulePriority",
                 "a rule with tagStatus any must have the highest rulePriority");
    }
  }
  std::stable_sort(
      p.rules.begin(), p.rules.end(),
      [](const LifecycleRule& a, const LifecycleRule& b) { return a.priority < b.priority; });
  return p;
}

std::vector<LifecycleDecision> evaluate_lifecycle(const LifecyclePolicy& policy,
                                                  const std::vector<LifecycleImage>& images,
                                                  const std::map<std::string, std::string>& pinned,
                                                  int64_t now) {
  std::vector<LifecycleDecision> out(images.size());
  std::unordered_map<std::string, size_t> index_of;
  for (size_t i = 0; i < images.size(); ++i) {
    index_of[images[i].digest] = i;
    out[i].digest = images[i].digest;
    out[i].tags = images[i].tags;
    out[i].pushed_at = images[i].pushed_at;
  }
  // Who depends on whom: children on the indexes naming them, referrers on their subject.
  std::unordered_map<std::string, std::vector<size_t>> parents_of;
  for (size_t i = 0; i < images.size(); ++i) {
    for (const auto& c : images[i].children) {
      if (index_of.count(c) && c != images[i].digest) {
        parents_of[c].push_back(i);
      }
    }
  }
  std::vector<bool> follower(images.size(), false);
  for (size_t i = 0; i < images.size(); ++i) {
    bool has_subject = !images[i].subject.empty() && index_of.count(images[i].subject) &&
                       images[i].subject != images[i].digest;
    follower[i] = parents_of.count(images[i].digest) || has_subject;
  }

  // ECR's pass over the images the rules judge: each rule takes what no earlier rule took.
  std::vector<bool> taken(images.size(), false);
  for (const auto& rule : policy.rules) {
    const auto& sel = rule.selection;
    std::vector<size_t> picked;
    for (size_t i = 0; i < images.size(); ++i) {
      if (!follower[i] && !taken[i] && selects(sel, images[i])) {
        picked.push_back(i);
        taken[i] = true;
      }
    }
    std::string tag = "rule " + std::to_string(rule.priority);
    if (sel.count_type == "imageCountMoreThan") {
      std::stable_sort(picked.begin(), picked.end(), [&](size_t a, size_t b) {
        if (images[a].pushed_at != images[b].pushed_at) {
          return images[a].pushed_at > images[b].pushed_at;
        }
        return images[a].digest < images[b].digest;  // a stable order for equal times
      });
      std::string of = "the newest " + std::to_string(sel.count_number) + " of the " +
                       plural(static_cast<int64_t>(picked.size()), "image") + " it selects";
      for (size_t rank = 0; rank < picked.size(); ++rank) {
        auto& d = out[picked[rank]];
        d.rule_priority = rule.priority;
        d.expire = static_cast<int64_t>(rank) >= sel.count_number;
        d.reason = tag + (d.expire ? " keeps only " : " keeps ") + of;
      }
    } else {
      // Past a million days nothing expires anyway; the cap keeps the product from overflowing.
      int64_t limit = std::min<int64_t>(sel.count_number, 1'000'000) * 86400;
      for (size_t i : picked) {
        auto& d = out[i];
        d.rule_priority = rule.priority;
        int64_t age_days = std::max<int64_t>(0, now - images[i].pushed_at) / 86400;
        d.expire = now - images[i].pushed_at > limit;
        d.reason = tag + ": pushed " + plural(age_days, "day") + " ago, " +
                   (d.expire ? "more than " : "within ") + plural(sel.count_number, "day");
      }
    }
  }
  for (size_t i = 0; i < images.size(); ++i) {
    if (!follower[i] && out[i].rule_priority == 0) {
      out[i].reason = "no rule selects it";
    }
  }
  // Pins override the rules.
  for (size_t i = 0; i < images.size(); ++i) {
    auto pin = pinned.find(images[i].digest);
    if (!follower[i] && pin != pinned.end()) {
      bool would = out[i].expire;
      out[i].expire = false;
      out[i].reason =
          "protected: " + pin->second +
          (would ? " (rule " + std::to_string(out[i].rule_priority) + " would expire it)" : "");
    }
  }

  // Followers, in waves: one expires once every index naming it (or its subject) expires.
  std::vector<bool> decided(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    decided[i] = !follower[i];
  }
  for (int wave = 1;; ++wave) {
    std::vector<size_t> now_decided;
    for (size_t i = 0; i < images.size(); ++i) {
      if (decided[i]) {
        continue;
      }
      std::vector<size_t> ups =
          parents_of.count(images[i].digest) ? parents_of[images[i].digest] : std::vector<size_t>{};
      bool is_referrer = !images[i].subject.empty() && index_of.count(images[i].subject) &&
                         images[i].subject != images[i].digest;
      if (is_referrer) {
        ups.push_back(index_of[images[i].subject]);
      }
      bool ready = std::all_of(ups.begin(), ups.end(), [&](size_t u) { return decided[u]; });
      if (!ready) {
        continue;
      }
      now_decided.push_back(i);
      auto& d = out[i];
      d.wave = wave;
      // A kept index (or subject) keeps it; the first one found names why.
      size_t subject_at = is_referrer ? index_of[images[i].subject] : images.size();
      auto role = [&](size_t u) { return u == subject_at ? "its subject " : "index "; };
      auto kept = std::find_if(ups.begin(), ups.end(), [&](size_t u) { return !out[u].expire; });
      if (kept != ups.end()) {
        d.expire = false;
        d.rule_priority = out[*kept].rule_priority;
        d.reason =
            std::string("protected: ") +
            (*kept == subject_at ? "a referrer of kept subject " : "referenced by kept index ") +
            short_digest(out[*kept].digest);
      } else {
        d.expire = true;
        d.rule_priority = out[ups.front()].rule_priority;
        d.reason = std::string("expires with ") + role(ups.front()) +
                   short_digest(out[ups.front()].digest);
      }
      auto pin = pinned.find(images[i].digest);
      if (d.expire && pin != pinned.end()) {
        d.expire = false;
        d.reason = "protected: " + pin->second + " (would expire with " + role(ups.front()) +
                   short_digest(out[ups.front()].digest) + ")";
      }
    }
    if (now_decided.empty()) {
      break;
    }
    for (size_t i : now_decided) {
      decided[i] = true;
    }
  }
  // A cycle (an index naming itself through another, or a referrer of its own referrer) is
  // never expired: no order of deletion is right for it.
  for (size_t i = 0; i < images.size(); ++i) {
    if (!decided[i]) {
      out[i].expire = false;
      out[i].reason = "protected: part of a reference cycle";
    }
  }
  return out;
}

}  // namespace berth::registry
