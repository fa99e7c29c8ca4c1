// SPDX-License-Identifier: Apache-2.0
// The row mapping of the metadata store, written once for every SQL engine (SQLite now,
// PostgreSQL later): per struct, the column list its SELECTs name, one function reading a row
// in that order, and one binding the columns its INSERT names. An engine adapts its
// statement to Row (result columns by 0-based index) and Params (parameters by 1-based
// index). Only store backends include this file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/store.h"

namespace berth::store::rows {

/// One result row: columns by 0-based index. A NULL reads as "" or 0.
class Row {
 public:
  virtual ~Row() = default;
  virtual std::string text(int col) = 0;
  virtual int64_t i64(int col) = 0;
};

/// A statement's parameters, by 1-based index.
class Params {
 public:
  virtual ~Params() = default;
  virtual void set_text(int i, const std::string& s) = 0;
  virtual void set_blob(int i, const std::string& s) = 0;
  virtual void set_i64(int i, int64_t v) = 0;
};

/// Glob lists (and tag lists) are kept as a JSON array in a TEXT column.
std::string globs_to_json(const std::vector<std::string>& g);
std::vector<std::string> globs_from_json(const std::string& s);

// Column lists, in the order the read_* functions below expect.
inline constexpr const char* kRepositoryColumns =
    "id, name, immutable_tags, mutable_globs, created_at";
inline constexpr const char* kManifestColumns =
    "digest, media_type, content, size, artifact_type, subject, annotations, platform, "
    "total_size, pushed_at";
inline constexpr const char* kReferrerColumns =
    "digest, media_type, size, artifact_type, annotations";
inline constexpr const char* kPrincipalColumns = "kind, name, created_at";
inline constexpr const char* kAccessKeyColumns = "id, user_name, secret_hash, active, created_at";
inline constexpr const char* kPolicyColumns = "kind, principal, name, document, updated_at";
inline constexpr const char* kAuditColumns = "time, principal, action, resource, allowed, source";
inline constexpr const char* kServiceColumns =
    "name, spec, paused, revision, created_at, updated_at";
inline constexpr const char* kRevisionColumns = "service, number, digest, spec, created_at";
// d = deployments, r = revisions (LEFT JOIN: the digest is the revision's).
inline constexpr const char* kDeploymentColumns =
    "d.id, d.service, d.revision, d.status, d.reason, d.trigger, d.created_at, d.started_at, "
    "d.finished_at, COALESCE(r.digest, '')";
inline constexpr const char* kBuildProjectColumns =
    "name, spec, webhook_secret, created_at, updated_at";
inline constexpr const char* kBuildColumns =
    "id, project, status, phase, reason, commit_id, branch, trigger, source, image, tags, "
    "digest, phase_ms, steps, created_at, started_at, finished_at";

inline constexpr const char* kDnsZoneColumns = "name, serial, document, created_at, updated_at";
inline constexpr const char* kObjectColumns = "kind, name, document, created_at, updated_at";

Repository read_repository(Row& r);
DnsZoneRow read_dns_zone(Row& r);
ObjectRow read_object(Row& r);
ManifestRecord read_manifest(Row& r);
Referrer read_referrer(Row& r);
Principal read_principal(Row& r);
AccessKey read_access_key(Row& r);
AttachedPolicy read_policy(Row& r);
AuditEvent read_audit_event(Row& r);
ServiceRecord read_service(Row& r);
RevisionRecord read_revision(Row& r);
DeploymentRecord read_deployment(Row& r);
BuildProjectRecord read_build_project(Row& r);
BuildRecord read_build(Row& r);

// Binds the columns an INSERT names, in this order, from parameter 1 on.
// (name, immutable_tags, mutable_globs, created_at)
void bind_repository(Params& p, const Repository& r);
// (name, serial, document, created_at, updated_at)
void bind_dns_zone(Params& p, const DnsZoneRow& z);
// (kind, name, document, created_at, updated_at)
void bind_object(Params& p, const ObjectRow& o);
// (kind, name, created_at)
void bind_principal(Params& p, const Principal& v);
// (id, user_name, secret_hash, active, created_at)
void bind_access_key(Params& p, const AccessKey& k);
// (kind, principal, name, document, updated_at)
void bind_policy(Params& p, const AttachedPolicy& v);
// (time, principal, action, resource, allowed, source)
void bind_audit_event(Params& p, const AuditEvent& e);
// (name, spec, paused, revision, created_at, updated_at)
void bind_service(Params& p, const ServiceRecord& s);
// (service, revision, status, reason, trigger, created_at, started_at, finished_at)
void bind_deployment(Params& p, const DeploymentRecord& d);
// (name, spec, webhook_secret, created_at, updated_at)
void bind_build_project(Params& p, const BuildProjectRecord& b);
// (project, status, phase, reason, commit_id, branch, trigger, source, image, tags, digest,
//  phase_ms, steps, created_at, started_at, finished_at)
void bind_build(Params& p, const BuildRecord& b);

}  // namespace berth::store::rows
