// SPDX-License-Identifier: Apache-2.0
// The audit log's queue: bounded in memory, written in batches, and kept through failed writes
// (a full disk, a locked database) until a retry succeeds.
#include <algorithm>
#include <ctime>

#include "common/log.h"
#include "iam/iam.h"

namespace berth::iam {

AuditLog::AuditLog(store::MetadataStore& store, size_t max_pending)
    : store_(store), max_pending_(std::max<size_t>(1, max_pending)) {}

AuditLog::~AuditLog() {
  std::lock_guard lock(mu_);
  if (!pending_.empty()) {
    // The daemon flushes at shutdown; this is what that flush could not write.
    log::get("iam")->error("audit records lost at shutdown count={} (the last write failed)",
                           pending_.size());
  }
  report_drops_locked();
}

bool AuditLog::is_read_action(const std::string& action) {
  auto colon = action.find(':');
  std::string verb = colon == std::string::npos ? action : action.substr(colon + 1);
  return verb == "Pull" || verb.rfind("List", 0) == 0 || verb.rfind("Describe", 0) == 0 ||
         verb.rfind("Get", 0) == 0 || verb.rfind("Simulate", 0) == 0 ||
         verb.rfind("Preview", 0) == 0;
}

void AuditLog::record(const Request& req, bool allowed, const std::string& source) {
  if (allowed && is_read_action(req.action)) {
    return;
  }
  std::lock_guard lock(mu_);
  if (pending_.size() >= max_pending_) {
    // Bounded: a flood of denials, or a store that stays down, must not exhaust memory. Say
    // so at once; the periodic flush reports the running count.
    note_full_locked();
    ++dropped_;
    ++dropped_unreported_;
    return;
  }
  pending_.push_back(store::AuditEvent{static_cast<int64_t>(std::time(nullptr)), req.principal,
                                       req.action, req.resource, allowed, source});
}

void AuditLog::note_full_locked() {
  if (!full_reported_) {
    full_reported_ = true;
    log::get("iam")->error("audit queue full limit={}: dropping new records until it drains",
                           max_pending_);
  }
}

void AuditLog::report_drops_locked() {
  if (dropped_unreported_ > 0) {
    log::get("iam")->error("audit records dropped count={} total={} limit={}: the queue was full",
                           dropped_unreported_, dropped_, max_pending_);
    dropped_unreported_ = 0;
  }
}

Status AuditLog::flush() {
  std::lock_guard flushing(flush_mu_);
  return flush_locked();
}

Status AuditLog::flush_if_due() {
  std::lock_guard flushing(flush_mu_);
  if (failures_ > 0 && Clock::now() < next_try_) {
    std::lock_guard lock(mu_);
    report_drops_locked();
    return ok();
  }
  return flush_locked();
}

Status AuditLog::flush_locked() {
  std::vector<store::AuditEvent> batch;
  {
    std::lock_guard lock(mu_);
    report_drops_locked();
    batch.swap(pending_);
  }
  if (batch.empty()) {
    failures_ = 0;
    return ok();
  }
  Status s = store_.append_audit(batch);
  if (s) {
    {
      std::lock_guard lock(mu_);
      full_reported_ = false;
    }
    if (failures_ > 0) {
      log::get("iam")->info("audit write recovered written={} failed_attempts={}", batch.size(),
                            failures_);
    }
    failures_ = 0;
    return ok();
  }
  // Keep the batch, ahead of what arrived meanwhile, and back off: a full disk usually stays
  // full for more than a second.
  size_t kept = 0;
  {
    std::lock_guard lock(mu_);
    batch.insert(batch.end(), std::make_move_iterator(pending_.begin()),
                 std::make_move_iterator(pending_.end()));
    if (batch.size() > max_pending_) {
      uint64_t excess = batch.size() - max_pending_;
      // The newest go, as in record().
      batch.erase(batch.begin() + static_cast<std::ptrdiff_t>(max_pending_), batch.end());
      note_full_locked();
      dropped_ += excess;
      dropped_unreported_ += excess;
    }
    pending_.swap(batch);
    kept = pending_.size();
  }
  ++failures_;
  auto backoff =
      std::min<std::chrono::seconds>(kMaxBackoff, kMinBackoff * (1 << std::min(failures_ - 1, 5)));
  next_try_ = Clock::now() + backoff;
  return std::move(s).error().with_context("audit: " + std::to_string(kept) +
                                           " records queued for retry in " +
                                           std::to_string(backoff.count()) + "s");
}

size_t AuditLog::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

uint64_t AuditLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace berth::iam
