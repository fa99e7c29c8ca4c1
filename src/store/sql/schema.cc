// SPDX-License-Identifier: Apache-2.0
// The baseline schema, written once for every engine: the column types are the dialect's
// (INTEGER/BIGINT, TEXT/TEXT COLLATE "C", BLOB/BYTEA, the id columns' INTEGER PRIMARY KEY /
// BIGSERIAL). For SQLite it expands to exactly the schema of commit 0657134 (version 0);
// a released table is never edited here: a change is the next migration (migrations.cc).
#include <string>

#include "store/sql/sql_store.h"

namespace berth::store::sql {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS repositories(
  id {rowid_pk},
  name {text} NOT NULL UNIQUE,
  immutable_tags {integer} NOT NULL DEFAULT 0,
  mutable_globs {text} NOT NULL DEFAULT '[]',
  created_at {integer} NOT NULL);
CREATE TABLE IF NOT EXISTS blobs(
  digest {text} PRIMARY KEY,
  size {integer} NOT NULL,
  linked_at {integer} NOT NULL){without_rowid};
CREATE TABLE IF NOT EXISTS repo_blobs(
  repo_id {integer} NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest {text} NOT NULL,
  linked_at {integer} NOT NULL,
  PRIMARY KEY(repo_id, digest)){without_rowid};
CREATE TABLE IF NOT EXISTS manifests(
  repo_id {integer} NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  digest {text} NOT NULL,
  media_type {text} NOT NULL,
  content {blob} NOT NULL,
  size {integer} NOT NULL,
  artifact_type {text} NOT NULL DEFAULT '',
  subject {text} NOT NULL DEFAULT '',
  annotations {text} NOT NULL DEFAULT '',
  platform {text} NOT NULL DEFAULT '',
  total_size {integer} NOT NULL DEFAULT 0,
  pushed_at {integer} NOT NULL,
  PRIMARY KEY(repo_id, digest));
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(repo_id, subject);
CREATE TABLE IF NOT EXISTS manifest_refs(
  repo_id {integer} NOT NULL,
  manifest_digest {text} NOT NULL,
  child {text} NOT NULL,
  kind {integer} NOT NULL,  -- 0 blob, 1 manifest
  PRIMARY KEY(repo_id, manifest_digest, kind, child),
  FOREIGN KEY(repo_id, manifest_digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
){without_rowid};
CREATE INDEX IF NOT EXISTS manifest_refs_child ON manifest_refs(child, kind);
CREATE TABLE IF NOT EXISTS tags(
  repo_id {integer} NOT NULL,
  name {text} NOT NULL,
  digest {text} NOT NULL,
  updated_at {integer} NOT NULL,
  PRIMARY KEY(repo_id, name),
  FOREIGN KEY(repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
){without_rowid};
CREATE INDEX IF NOT EXISTS tags_digest ON tags(repo_id, digest);
CREATE TABLE IF NOT EXISTS principals(
  kind {text} NOT NULL,
  name {text} NOT NULL,
  created_at {integer} NOT NULL,
  PRIMARY KEY(kind, name)){without_rowid};
CREATE TABLE IF NOT EXISTS access_keys(
  id {text} PRIMARY KEY,
  user_name {text} NOT NULL,
  secret_hash {text} NOT NULL,
  active {integer} NOT NULL DEFAULT 1,
  created_at {integer} NOT NULL){without_rowid};
CREATE INDEX IF NOT EXISTS access_keys_user ON access_keys(user_name);
CREATE TABLE IF NOT EXISTS policies(
  kind {text} NOT NULL,
  principal {text} NOT NULL,
  name {text} NOT NULL,
  document {text} NOT NULL,
  updated_at {integer} NOT NULL,
  PRIMARY KEY(kind, principal, name)){without_rowid};
CREATE TABLE IF NOT EXISTS audit(
  id {rowid_pk},
  time {integer} NOT NULL,
  principal {text} NOT NULL,
  action {text} NOT NULL,
  resource {text} NOT NULL,
  allowed {integer} NOT NULL,
  source {text} NOT NULL);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE TABLE IF NOT EXISTS repository_policies(
  repo_id {integer} PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
  document {text} NOT NULL);
CREATE TABLE IF NOT EXISTS services(
  name {text} PRIMARY KEY,
  spec {text} NOT NULL,
  paused {integer} NOT NULL DEFAULT 0,
  revision {integer} NOT NULL DEFAULT 0,
  created_at {integer} NOT NULL,
  updated_at {integer} NOT NULL){without_rowid};
CREATE TABLE IF NOT EXISTS revisions(
  service {text} NOT NULL REFERENCES services(name) ON DELETE CASCADE,
  number {integer} NOT NULL,
  digest {text} NOT NULL,
  spec {text} NOT NULL,
  created_at {integer} NOT NULL,
  PRIMARY KEY(service, number)){without_rowid};
CREATE TABLE IF NOT EXISTS deployments(
  id {autoinc_pk},
  service {text} NOT NULL REFERENCES services(name) ON DELETE CASCADE,
  revision {integer} NOT NULL,
  status {text} NOT NULL,
  reason {text} NOT NULL,
  trigger {text} NOT NULL,
  created_at {integer} NOT NULL,
  started_at {integer} NOT NULL,
  finished_at {integer} NOT NULL);
CREATE INDEX IF NOT EXISTS deployments_service ON deployments(service, id);
CREATE TABLE IF NOT EXISTS build_projects(
  name {text} PRIMARY KEY,
  spec {text} NOT NULL,
  webhook_secret {text} NOT NULL,
  created_at {integer} NOT NULL,
  updated_at {integer} NOT NULL){without_rowid};
CREATE TABLE IF NOT EXISTS builds(
  id {autoinc_pk},
  project {text} NOT NULL REFERENCES build_projects(name) ON DELETE CASCADE,
  status {text} NOT NULL,
  phase {text} NOT NULL DEFAULT '',
  reason {text} NOT NULL DEFAULT '',
  commit_id {text} NOT NULL DEFAULT '',
  branch {text} NOT NULL DEFAULT '',
  trigger {text} NOT NULL DEFAULT '',
  source {text} NOT NULL DEFAULT '',
  image {text} NOT NULL DEFAULT '',
  tags {text} NOT NULL DEFAULT '[]',
  digest {text} NOT NULL DEFAULT '',
  phase_ms {text} NOT NULL DEFAULT '',
  steps {text} NOT NULL DEFAULT '',
  created_at {integer} NOT NULL,
  started_at {integer} NOT NULL DEFAULT 0,
  finished_at {integer} NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS builds_project ON builds(project, id);
CREATE INDEX IF NOT EXISTS builds_status ON builds(status);
CREATE TABLE IF NOT EXISTS dns_zones(
  name {text} PRIMARY KEY,
  serial {integer} NOT NULL,
  document {text} NOT NULL,
  created_at {integer} NOT NULL,
  updated_at {integer} NOT NULL){without_rowid};
CREATE TABLE IF NOT EXISTS dns_record_sets(
  zone {text} NOT NULL,
  name {text} NOT NULL,
  type {text} NOT NULL,
  set_identifier {text} NOT NULL,
  document {text} NOT NULL,
  PRIMARY KEY(zone, name, type, set_identifier)){without_rowid};
CREATE TABLE IF NOT EXISTS objects(
  kind {text} NOT NULL,
  name {text} NOT NULL,
  document {text} NOT NULL,
  created_at {integer} NOT NULL,
  updated_at {integer} NOT NULL,
  PRIMARY KEY(kind, name)){without_rowid};
)sql";

}  // namespace

std::string schema_ddl(const Dialect& d) {
  const std::pair<const char*, const char*> tokens[] = {
      {"{integer}", d.integer},
      {"{text}", d.text},
      {"{blob}", d.blob},
      {"{rowid_pk}", d.rowid_pk},
      {"{autoinc_pk}", d.autoinc_pk},
      {"{without_rowid}", d.without_rowid},
  };
  std::string out = kSchema;
  for (const auto& [token, value] : tokens) {
    for (size_t at = out.find(token); at != std::string::npos;
         at = out.find(token, at + std::string_view(value).size())) {
      out.replace(at, std::string_view(token).size(), value);
    }
  }
  return out;
}

}  // namespace berth::store::sql
