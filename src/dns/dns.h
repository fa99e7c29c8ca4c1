// SPDX-License-Identifier: Apache-2.0
// berth's authoritative DNS (docs/dns.md): hosted zones with record sets in Route 53's shape,
// change batches applied all or nothing, BIND zone files in and out, and the server that
// answers from an immutable snapshot swapped on every change. The public API of src/dns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::store {
class MetadataStore;
}  // namespace berth::store

namespace berth::dns {

struct Snapshot;
class UpdateHandler;  // update.h

/// One record set: a name, a type and its values, as the API, the store and zone files see
/// it. Several sets may share name and type when each has a set_identifier (routing policies).
struct RecordSet {
  std::string name;  // absolute, lower-case, no trailing dot: "www.example.com"
  std::string type;  // upper-case mnemonic: "A", "AAAA", "CNAME", ..., "ALIAS"
  uint32_t ttl = 300;
  /// Presentation rdata, one per record, as dig prints it: names absolute with the trailing
  /// dot ("10 mail.example.com."), TXT as quoted strings ("\"v=spf1 -all\"").
  std::vector<std::string> values;
  // ALIAS only: exactly one target.
  std::string alias_service;  // a berth service: answered with the router's addresses
  std::string alias_name;     // another name in a zone berth hosts: its A/AAAA, flattened
  // Routing policy (Route 53's): at most one of weight / failover / multivalue, with an id.
  std::string set_identifier;
  std::optional<uint32_t> weight;  // weighted: 0..255
  std::string failover;            // "PRIMARY" or "SECONDARY"
  bool multivalue = false;         // up to 8 healthy values, one per set
  std::string health_check;        // id of a health check; unhealthy sets are left out

  bool operator==(const RecordSet&) const = default;
};

/// A zone's record sets. Each set is immutable once added and shared, with its canonical sort
/// key, between the versions of a zone: a change batch copies pointers, not sets, and finds a
/// set by comparing keys computed once (docs/dns.md, "A change costs what it touches").
class RecordSets {
 public:
  struct Stored {
    explicit Stored(RecordSet s);
    RecordSet set;
    std::string key;  // canonical order as a byte string (RFC 4034 §6.1, type, identifier)
  };
  using Ptr = std::shared_ptr<const Stored>;

  class const_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = RecordSet;
    using difference_type = std::ptrdiff_t;
    using pointer = const RecordSet*;
    using reference = const RecordSet&;
    const_iterator() = default;
    explicit const_iterator(std::vector<Ptr>::const_iterator it) : it_(it) {}
    reference operator*() const { return (*it_)->set; }
    pointer operator->() const { return &(*it_)->set; }
    reference operator[](difference_type n) const { return it_[n]->set; }
    const_iterator& operator++() {
      ++it_;
      return *this;
    }
    const_iterator operator++(int) { return const_iterator(it_++); }
    const_iterator& operator--() {
      --it_;
      return *this;
    }
    const_iterator operator--(int) { return const_iterator(it_--); }
    const_iterator& operator+=(difference_type n) {
      it_ += n;
      return *this;
    }
    const_iterator& operator-=(difference_type n) {
      it_ -= n;
      return *this;
    }
    friend const_iterator operator+(const_iterator a, difference_type n) { return a += n; }
    friend const_iterator operator+(difference_type n, const_iterator a) { return a += n; }
    friend const_iterator operator-(const_iterator a, difference_type n) { return a -= n; }
    friend difference_type operator-(const const_iterator& a, const const_iterator& b) {
      return a.it_ - b.it_;
    }
    auto operator<=>(const const_iterator&) const = default;

   private:
    std::vector<Ptr>::const_iterator it_;
  };

  RecordSets() = default;
  RecordSets(std::initializer_list<RecordSet> sets);

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const RecordSet& operator[](size_t i) const { return items_[i]->set; }
  const RecordSet& front() const { return items_.front()->set; }
  const RecordSet& back() const { return items_.back()->set; }
  const_iterator begin() const { return const_iterator(items_.begin()); }
  const_iterator end() const { return const_iterator(items_.end()); }
  /// Set i's canonical sort key.
  const std::string& key(size_t i) const { return items_[i]->key; }
  /// Set i itself, to share with another version of the zone.
  const Ptr& shared(size_t i) const { return items_[i]; }

  void reserve(size_t n) { items_.reserve(n); }
  void clear() { items_.clear(); }
  void push_back(RecordSet s);
  void push_back(Ptr p) { items_.push_back(std::move(p)); }
  /// Replaces set i (its key computed again) / removes it.
  void replace(size_t i, RecordSet s);
  void erase(size_t i);
  /// Into canonical order; sets with equal keys keep their order.
  void sort();

  /// Equal when the sets are, in the same order.
  bool operator==(const RecordSets& o) const;

 private:
  std::vector<Ptr> items_;
};

/// A zone as stored: its name, serial and record sets (SOA and apex NS included).
struct ZoneData {
  std::string name;  // "example.com"
  uint32_t serial = 1;
  RecordSets sets;  // sorted by (name in canonical order, type, set_identifier)
  /// Secondaries allowed to AXFR/IXFR, and sent NOTIFY on change ("127.0.0.1:53530").
  std::vector<std::string> allow_transfer;
  std::vector<std::string> also_notify;

  bool operator==(const ZoneData&) const = default;
};

/// One change of a batch (Route 53's ChangeResourceRecordSets): CREATE fails when the set
/// exists, DELETE when it does not match exactly (values and TTL), UPSERT replaces.
struct Change {
  enum class Action { Create, Upsert, Delete } action = Action::Upsert;
  RecordSet set;
};

// ---- JSON (Route 53's field names) ----------------------------------------------------------
/// {"Name":"www.example.com.","Type":"A","TTL":60,"ResourceRecords":[{"Value":"127.0.0.2"}],
///  "AliasTarget":{"Service":"web"}|{"DNSName":"x.example.com."},"SetIdentifier":...,
///  "Weight":..,"Failover":..,"MultiValueAnswer":..,"HealthCheckId":..}
nlohmann::json record_set_to_json(const RecordSet& s);
/// Parses and normalises one set (names lower-cased and made absolute against `zone`,
/// values re-printed in canonical presentation form). InvalidArgument naming the field.
Result<RecordSet> record_set_from_json(const nlohmann::json& j, std::string_view zone);
/// {"Comment":..., "Changes":[{"Action":"CREATE|UPSERT|DELETE","ResourceRecordSet":{...}}]}.
/// Errors name the change by index ("Changes[3].ResourceRecordSet.TTL: ...").
Result<std::vector<Change>> parse_change_batch(std::string_view json, std::string_view zone);

// ---- Zone rules (zone.cc) -------------------------------------------------------------------
/// Every rule a zone must keep: names inside the zone and ≤ 127 labels/255 bytes, TTL in
/// [0, 2147483647], values parse for their type, one SOA and ≥ 1 NS at the apex, no CNAME
/// beside other data at a name, no CNAME/ALIAS at the apex except ALIAS, no data below a
/// delegation other than glue, routing-policy sets consistent (same type, unique ids, one
/// policy kind per name/type). InvalidArgument naming the record and the rule.
Status validate_zone(const ZoneData& z);
/// Applies a batch all or nothing: the result is validated; on any error nothing changes and
/// the error names the change by index. The serial is bumped (and the SOA's with it).
Result<ZoneData> apply_changes(const ZoneData& z, const std::vector<Change>& changes);
/// What a batch did, set by set: the sets it wrote (the SOA among them, its serial moved) and
/// those it removed. The store writes only these; Zone::compile_changed recompiles their names.
struct ZoneDelta {
  std::vector<RecordSet> put;
  std::vector<RecordSet> removed;
  /// The names the batch touched (lower-case wire form, canonical order) and where their sets
  /// lie in the result's sets, [first, last): where the checks and the compile look again.
  struct Name {
    std::string wire;
    size_t first = 0;
    size_t last = 0;
  };
  std::vector<Name> names;
};
/// apply_changes for a zone known valid whose sets are in canonical order (a compiled zone's
/// data): the same result and errors, but only the names the batch touched are checked again,
/// so a batch costs its changes × log(sets) plus one copy of the set list. `delta` gets what
/// changed (empty on an error).
Result<ZoneData> apply_changes_to_valid(const ZoneData& z, const std::vector<Change>& changes,
                                        ZoneDelta& delta);
/// A new zone's data: SOA (mname = first name server, rname hostmaster.<zone>) and NS set.
ZoneData new_zone(std::string_view name, const std::vector<std::string>& nameservers,
                  uint32_t serial);

// ---- Zone files (zonefile.cc) ---------------------------------------------------------------
/// Parses a BIND master file ($ORIGIN, $TTL, $INCLUDE refused, relative names, @, blank owner
/// = previous owner, parentheses, comments, quoted strings and escapes, class IN optional,
/// TTL units like 1h30m). Records are grouped into sets by name and type. berth's own ALIAS
/// records are read as "name ttl IN ALIAS target." and "name ttl IN ALIAS service:web".
/// Errors: "line N: ..." and nothing is returned.
Result<ZoneData> parse_zone_file(std::string_view text, std::string_view zone);
/// Writes the zone as a master file: $ORIGIN, SOA first, then sets in canonical order, names
/// relative to the origin. export → import → export is identical.
std::string export_zone_file(const ZoneData& z);

// ---- The hosted zones (service.cc) ----------------------------------------------------------

struct Settings {
  /// Name servers every zone lists (config dns.nameservers). Empty: "ns1.<zone>", whose
  /// address records (and glue in a parent) are nameserver_addresses.
  std::vector<std::string> nameservers;
  /// Addresses of berth's name servers (config::dns_nameserver_addresses).
  std::vector<std::string> nameserver_addresses;
  /// What an ALIAS to a service answers (config::dns_service_addresses).
  std::vector<std::string> service_addresses;
  /// Largest zone, in record sets (config dns.max_record_sets_per_zone).
  size_t max_record_sets = 100000;
};

/// Hosted zones: the store is the truth; every change is validated, written under the
/// zone's serial, and then published as a new immutable Snapshot that queries read without
/// locks. Blocking (store I/O): call from the blocking pool. Authorization is the caller's.
class Service {
 public:
  Service(store::MetadataStore& store, Settings settings);
  ~Service();

  /// Reads every zone from the store and publishes the first snapshot. A stored zone that no
  /// longer validates is skipped with an error in the log (the others still answer).
  Status load();
  /// The zones queries are answered from now. Never null after construction.
  std::shared_ptr<const Snapshot> snapshot() const;

  /// Creates a zone with its SOA and NS (and the name servers' addresses when they lie inside
  /// it). When berth hosts a parent zone, the delegation (NS, and glue for name servers
  /// inside the new zone) is added to the parent in the same transaction.
  Result<ZoneData> create_zone(std::string_view name);
  /// Deletes a zone and the delegation its parent holds for it (if berth hosts the parent).
  Status delete_zone(std::string_view name);
  Result<std::vector<ZoneData>> list_zones() const;
  /// The hosted zones' names, sorted; no record set is copied.
  std::vector<std::string> zone_names() const;
  Result<ZoneData> get_zone(std::string_view name) const;
  /// Applies a batch all or nothing; returns the zone as it is after the batch (shared with
  /// the published snapshot, not copied: a zone may hold 100 000 sets).
  Result<std::shared_ptr<const ZoneData>> change(std::string_view zone,
                                                 const std::vector<Change>& changes);
  Result<std::string> export_zone(std::string_view zone) const;
  /// Loads a zone file. replace: the zone becomes exactly the file (serial bumped); else every
  /// set in the file other than the SOA is upserted. Nothing changes on any error.
  Result<std::shared_ptr<const ZoneData>> import_zone(std::string_view zone, std::string_view text,
                                                      bool replace);

  /// Sets who may transfer the zone (AXFR) and who is sent NOTIFY on every change. Entries
  /// are "ADDR" or "ADDR:PORT" ("[v6]:PORT"); NOTIFY goes to port 53 when none is given.
  Result<ZoneData> set_transfer(std::string_view zone, std::vector<std::string> allow_transfer,
                                std::vector<std::string> also_notify);
  /// Called after every published change of a zone (the server sends NOTIFY from it).
  void set_on_change(std::function<void(const ZoneData&)> fn);

  /// The services an ALIAS may name; others answer NODATA (the deploy controller's list).
  void set_services(std::vector<std::string> names);
  /// Health checks now failing (their sets are left out of answers).
  void set_unhealthy(std::vector<std::string> check_ids);
  const Settings& settings() const { return settings_; }

 private:
  struct State;
  void publish_locked();
  Result<ZoneData> read_zone(std::string_view name) const;

  store::MetadataStore& store_;
  Settings settings_;
  std::function<void(const ZoneData&)> on_change_;
  mutable std::mutex mu_;  // serialises writers; readers use the snapshot
  std::unique_ptr<State> state_;
  std::shared_ptr<const Snapshot> snapshot_;  // atomic_load / atomic_store
};

// ---- The server (server.cc) -----------------------------------------------------------------

struct ServerSettings {
  /// "127.0.0.1:5353", "[::1]:5353": UDP and TCP on each (config dns.listen, --dns-listen).
  std::vector<std::string> listen;
  /// UDP sockets (and threads) per address, sharing the port with SO_REUSEPORT. 0: one per
  /// core.
  int udp_threads = 0;
  size_t max_tcp_connections = 512;
  size_t max_tcp_connections_per_address = 64;
  /// A TCP connection with no complete query for this long is closed (RFC 7766 §6.2.3).
  int tcp_idle_timeout_seconds = 10;
  /// Handles UPDATE messages (RFC 2136 + TSIG, update.h); null: they are answered NOTIMP.
  UpdateHandler* updates = nullptr;
};

/// Answers queries on UDP and TCP from the Service's current snapshot; AXFR on TCP to the
/// addresses a zone allows. Threads of its own: UDP workers (recvmmsg/sendmmsg batches) and
/// one TCP I/O thread.
class Server {
 public:
  /// Binds every address (port 0 picks a free port, the same for UDP and TCP) and starts.
  static Result<std::unique_ptr<Server>> start(Service& service, ServerSettings settings);
  ~Server();
  void stop();
  /// The bound addresses, ports resolved: "127.0.0.1:40123", "[::1]:40123".
  std::vector<std::string> addresses() const;
  struct Counters {
    uint64_t udp_queries = 0, tcp_queries = 0, dropped = 0, truncated = 0;
  };
  Counters counters() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The normalised API form of a zone name ("Example.COM." → "example.com"); InvalidArgument
/// for a name that is not one.
Result<std::string> normalize_zone_name(std::string_view name);
/// A record set as the store keeps it (record_set_to_json's JSON, written without a DOM).
std::string record_set_document(const RecordSet& s);

// ---- Health checks (health.cc) --------------------------------------------------------------

/// A health check berth runs itself (Route 53's): a probe of ADDR:PORT every interval.
struct HealthCheck {
  std::string id;             // the user's name: letters, digits, '.', '_', '-'
  std::string type = "HTTP";  // "HTTP", "HTTPS" or "TCP"
  std::string target;         // "127.0.0.1:8080", "[::1]:8443"
  std::string host;           // HTTP(S): Host header and TLS SNI ("" = the target's address)
  std::string path = "/";     // HTTP(S): the request path
  uint32_t interval_seconds = 10;
  uint32_t timeout_seconds = 2;
  /// Consecutive failures that make a healthy check unhealthy (and successes, back).
  uint32_t failure_threshold = 3;
  int64_t created_at = 0;

  bool operator==(const HealthCheck&) const = default;
};

/// {"Id","Type","Target","Host","Path","Interval","Timeout","FailureThreshold","CreatedAt"}
/// (Interval and Timeout in seconds).
nlohmann::json health_check_to_json(const HealthCheck& c);
/// Parses and validates (defaults for missing fields); InvalidArgument naming the field.
Result<HealthCheck> health_check_from_json(const nlohmann::json& j);
/// Every rule a check must keep; InvalidArgument naming the field.
Status validate_health_check(const HealthCheck& c);

enum class HealthState { Unknown, Healthy, Unhealthy };
std::string_view health_state_name(HealthState s);  // "UNKNOWN", "HEALTHY", "UNHEALTHY"

/// What a check's results so far add up to.
struct HealthStatus {
  HealthState state = HealthState::Unknown;
  bool last_ok = false;
  uint32_t consecutive = 0;  // results in a row equal to the last one
  int64_t last_checked = 0;  // unix seconds of the last result (0: none yet)
  std::string last_error;    // of the last failure ("" when the last result was a success)
};

/// The state machine (pure): the first result decides UNKNOWN → HEALTHY | UNHEALTHY; after
/// that the state flips only after `threshold` consecutive results that disagree with it.
HealthStatus next_health_status(const HealthStatus& s, bool ok, std::string error,
                                uint32_t threshold, int64_t now);

struct HealthCheckInfo {
  HealthCheck check;
  HealthStatus status;
};

/// Runs the health checks on a thread of its own (one Asio coroutine per check, probing at
/// its interval with jitter) and publishes the failing ones with Service::set_unhealthy on
/// every change of state. The store holds the checks (objects, kind "healthcheck").
/// Create/remove/list are thread-safe and block on the store: call from the blocking pool.
class HealthChecker {
 public:
  HealthChecker(store::MetadataStore& store, Service& service);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  /// Reads the stored checks and starts probing them. A stored check that no longer
  /// validates is skipped with an error in the log.
  Status start();
  /// Stops probing and joins the thread; the statuses stay readable.
  void stop();

  /// Validates, stores and starts probing a check. AlreadyExists when the id is taken.
  Result<HealthCheckInfo> create(HealthCheck check);
  /// Deletes a check. FailedPrecondition naming a record set that still references it.
  Status remove(std::string_view id);
  Result<HealthCheckInfo> get(std::string_view id) const;
  std::vector<HealthCheckInfo> list() const;  // sorted by id
  /// InvalidArgument when a CREATE or UPSERT of the batch names a check that does not exist.
  Status check_references(const std::vector<Change>& changes) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Where `name` points according to its zone's own name servers, as `berth domain link` checks
/// records the user made at another DNS host: the zone's NS set is found through `resolver`
/// (a recursive resolver, "ADDR" or "ADDR:PORT"; empty: the first `nameserver` of
/// /etc/resolv.conf), each name server's address through it too, and each name server is then
/// asked for A and AAAA directly (no recursion, port 53); an answer without the AA bit (a lame
/// server) does not count. A CNAME to a name in another zone (a `www` pointed at a host name of
/// a provider's, say) is followed the same way. Returns the addresses in the answers (none while
/// the records are missing) and the CNAMEs followed; FailedPrecondition, naming the chain, for a
/// CNAME loop or more than 8 CNAMEs; Unavailable, saying why, when no name server could be found or
/// none answered. Blocking: every query waits at most `timeout`.
struct PointsAt {
  std::vector<std::string> addresses;
  std::vector<std::string> cnames;  // each CNAME's target from the name on, in order
};
Result<PointsAt> authoritative_addresses(const std::string& name, const std::string& resolver,
                                         std::chrono::milliseconds timeout);

}  // namespace berth::dns
