// SPDX-License-Identifier: Apache-2.0
#include "store/rows.h"

#include "common/json.h"

namespace berth::store::rows {

std::string globs_to_json(const std::vector<std::string>& g) { return Json(g).dump(); }

std::vector<std::string> globs_from_json(const std::string& s) {
  Json j = Json::parse(s, nullptr, false);
  std::vector<std::string> out;
  if (j.is_array()) {
    for (auto& e : j) {
      if (e.is_string()) {
        out.push_back(e.get<std::string>());
      }
    }
  }
  return out;
}

Repository read_repository(Row& r) {
  Repository v;
  v.id = r.i64(0);
  v.name = r.text(1);
  v.immutable_tags = r.i64(2) != 0;
  v.mutable_tag_globs = globs_from_json(r.text(3));
  v.created_at = r.i64(4);
  return v;
}

ManifestRecord read_manifest(Row& r) {
  ManifestRecord m;
  m.digest = r.text(0);
  m.media_type = r.text(1);
  m.content = r.text(2);
  m.size = r.i64(3);
  m.artifact_type = r.text(4);
  m.subject = r.text(5);
  m.annotations_json = r.text(6);
  m.platform = r.text(7);
  m.total_size = r.i64(8);
  m.pushed_at = r.i64(9);
  return m;
}

Referrer read_referrer(Row& r) {
  return Referrer{r.text(0), r.text(1), r.i64(2), r.text(3), r.text(4)};
}

Principal read_principal(Row& r) { return Principal{r.text(0), r.text(1), r.i64(2)}; }

AccessKey read_access_key(Row& r) {
  return AccessKey{r.text(0), r.text(1), r.text(2), r.i64(3) != 0, r.i64(4)};
}

AttachedPolicy read_policy(Row& r) {
  return AttachedPolicy{r.text(0), r.text(1), r.text(2), r.text(3), r.i64(4)};
}

AuditEvent read_audit_event(Row& r) {
  return AuditEvent{r.i64(0), r.text(1), r.text(2), r.text(3), r.i64(4) != 0, r.text(5)};
}

DnsZoneRow read_dns_zone(Row& r) {
  return DnsZoneRow{r.text(0), r.i64(1), r.text(2), r.i64(3), r.i64(4), {}};
}

ObjectRow read_object(Row& r) {
  return ObjectRow{r.text(0), r.text(1), r.text(2), r.i64(3), r.i64(4)};
}

ServiceRecord read_service(Row& r) {
  return ServiceRecord{r.text(0), r.text(1), r.i64(2) != 0, r.i64(3), r.i64(4), r.i64(5)};
}

RevisionRecord read_revision(Row& r) {
  return RevisionRecord{r.text(0), r.i64(1), r.text(2), r.text(3), r.i64(4)};
}

DeploymentRecord read_deployment(Row& r) {
  return DeploymentRecord{r.i64(0),  r.text(1), r.i64(2), r.text(3), r.text(4),
                          r.text(5), r.i64(6),  r.i64(7), r.i64(8),  r.text(9)};
}

BuildProjectRecord read_build_project(Row& r) {
  return BuildProjectRecord{r.text(0), r.text(1), r.text(2), r.i64(3), r.i64(4)};
}

BuildRecord read_build(Row& r) {
  BuildRecord b;
  b.id = r.i64(0);
  b.project = r.text(1);
  b.status = r.text(2);
  b.phase = r.text(3);
  b.reason = r.text(4);
  b.commit_id = r.text(5);
  b.branch = r.text(6);
  b.trigger = r.text(7);
  b.source = r.text(8);
  b.image = r.text(9);
  b.tags = globs_from_json(r.text(10));
  b.digest = r.text(11);
  b.phase_ms = r.text(12);
  b.steps = r.text(13);
  b.created_at = r.i64(14);
  b.started_at = r.i64(15);
  b.finished_at = r.i64(16);
  return b;
}

void bind_repository(Params& p, const Repository& r) {
  p.set_text(1, r.name);
  p.set_i64(2, int64_t{r.immutable_tags});
  p.set_text(3, globs_to_json(r.mutable_tag_globs));
  p.set_i64(4, r.created_at);
}

void bind_principal(Params& p, const Principal& v) {
  p.set_text(1, v.kind);
  p.set_text(2, v.name);
  p.set_i64(3, v.created_at);
}

void bind_access_key(Params& p, const AccessKey& k) {
  p.set_text(1, k.id);
  p.set_text(2, k.user);
  p.set_text(3, k.secret_hash);
  p.set_i64(4, int64_t{k.active});
  p.set_i64(5, k.created_at);
}

void bind_policy(Params& p, const AttachedPolicy& v) {
  p.set_text(1, v.kind);
  p.set_text(2, v.principal);
  p.set_text(3, v.name);
  p.set_text(4, v.document);
  p.set_i64(5, v.updated_at);
}

void bind_audit_event(Params& p, const AuditEvent& e) {
  p.set_i64(1, e.time);
  p.set_text(2, e.principal);
  p.set_text(3, e.action);
  p.set_text(4, e.resource);
  p.set_i64(5, int64_t{e.allowed});
  p.set_text(6, e.source);
}

void bind_dns_zone(Params& p, const DnsZoneRow& z) {
  p.set_text(1, z.name);
  p.set_i64(2, z.serial);
  p.set_text(3, z.document);
  p.set_i64(4, z.created_at);
  p.set_i64(5, z.updated_at);
}

void bind_object(Params& p, const ObjectRow& o) {
  p.set_text(1, o.kind);
  p.set_text(2, o.name);
  p.set_text(3, o.document);
  p.set_i64(4, o.created_at);
  p.set_i64(5, o.updated_at);
}

void bind_service(Params& p, const ServiceRecord& s) {
  p.set_text(1, s.name);
  p.set_text(2, s.spec);
  p.set_i64(3, int64_t{s.paused});
  p.set_i64(4, s.revision);
  p.set_i64(5, s.created_at);
  p.set_i64(6, s.updated_at);
}

void bind_deployment(Params& p, const DeploymentRecord& d) {
  p.set_text(1, d.service);
  p.set_i64(2, d.revision);
  p.set_text(3, d.status);
  p.set_text(4, d.reason);
  p.set_text(5, d.trigger);
  p.set_i64(6, d.created_at);
  p.set_i64(7, d.started_at);
  p.set_i64(8, d.finished_at);
}

void bind_build_project(Params& p, const BuildProjectRecord& b) {
  p.set_text(1, b.name);
  p.set_text(2, b.spec);
  p.set_text(3, b.webhook_secret);
  p.set_i64(4, b.created_at);
  p.set_i64(5, b.updated_at);
}

void bind_build(Params& p, const BuildRecord& b) {
  p.set_text(1, b.project);
  p.set_text(2, b.status);
  p.set_text(3, b.phase);
  p.set_text(4, b.reason);
  p.set_text(5, b.commit_id);
  p.set_text(6, b.branch);
  p.set_text(7, b.trigger);
  p.set_text(8, b.source);
  p.set_text(9, b.image);
  p.set_text(10, globs_to_json(b.tags));
  p.set_text(11, b.digest);
  p.set_text(12, b.phase_ms);
  p.set_text(13, b.steps);
  p.set_i64(14, b.created_at);
  p.set_i64(15, b.started_at);
  p.set_i64(16, b.finished_at);
}

}  // namespace berth::store::rows
