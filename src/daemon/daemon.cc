// SPDX-License-Identifier: Apache-2.0
#include "daemon/daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "api/api.h"
#include "builder/build.h"
#include "common/async.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secret_box.h"
#include "common/url.h"
#include "console/console.h"
#include "daemon/impl.h"
#include "deploy/deploy.h"
#include "dns/dns.h"
#include "dns/tsig.h"
#include "dns/update.h"
#include "domains/domains.h"
#include "http/http.h"
#include "iam/iam.h"
#include "registry/registry.h"
#include "router/router.h"
#include "runtime/runtime.h"
#include "storage/s3.h"
#include "store/store.h"

namespace berth::daemon {

namespace {

// DATA/berthd.lock, held (flock, exclusive) for as long as the returned fd is open: by a
// serving berthd, and by fsck. FailedPrecondition when another process holds it.
Result<int> lock_data_dir(const std::string& data_dir) {
  std::string lock_path = data_dir + "/berthd.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && (errno == EROFS || errno == EACCES)) {
    fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);  // fsck of a read-only copy
  }
  if (fd < 0) {
    return Error(Errc::Internal, "cannot open " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return Error(Errc::FailedPrecondition,
                   "data directory " + data_dir + " is in use by another berthd (or berthd fsck)");
    }
    return Error(Errc::Internal, "cannot lock " + lock_path + ": " + std::strerror(e));
  }
  return fd;
}

// Blocking. What lifecycle rules must never expire: every revision's digest of every service
// (the current one, and older ones a rollback may return to) and what running builds push.
// (The base images running builds use come from builder::Service::base_digests_in_use.)
// A store error answers "*" (protect everything): guessing could expire a deployed image.
std::vector<std::string> pinned_digests(store::MetadataStore& st) {
  std::vector<std::string> out;
  auto services = st.list_services();
  auto running = st.list_builds_by_status("IN_PROGRESS");
  if (!services || !running) {
    log::get("registry")->warn("lifecycle: cannot list what is pinned; expiring nothing");
    return {"*"};
  }
  for (const auto& sv : *services) {
    // Revisions are numbered 1, 2, ... and never deleted one by one.
    for (int64_t n = 1;; ++n) {
      auto r = st.get_revision(sv.name, n);
      if (!r && r.error().code() == Errc::NotFound) {
        break;
      }
      if (!r) {
        return {"*"};
      }
      out.push_back(r->digest);
    }
  }
  for (const auto& b : *running) {
    if (!b.digest.empty()) {
      out.push_back(b.digest);
    }
  }
  return out;
}

}  // namespace

// Binds the router's plain and TLS listeners. A busy *default* TLS address is logged and
// the router serves without TLS (as DNS does on its default port); an address the operator
// gave must bind, or the start fails.
Status Daemon::Impl::listen_router(Impl* self) {
  auto& s = *self;
  for (const auto& a : s.cfg.router_listen) {
    BERTH_ASSIGN_OR_RETURN(auto hp, config::split_host_port(a));
    BERTH_ASSIGN_OR_RETURN(auto port, s.router->listen(hp.first, hp.second));
    s.log->info("router listening addr={} http", config::join_host_port(hp.first, port));
    if (s.router_port == 0) {
      s.router_port = port;
    }
  }
  if (!s.cfg.router_tls_enabled) {
    return {};
  }
  bool defaulted = s.cfg.router_tls_listen.empty();
  std::vector<std::string> tls_listen = s.cfg.router_tls_listen;
  if (defaulted) {
    tls_listen = {config::kDefaultRouterTlsListen};
  }
  for (const auto& a : tls_listen) {
    BERTH_ASSIGN_OR_RETURN(auto hp, config::split_host_port(a));
    auto port = s.router->listen_tls(hp.first, hp.second);
    if (!port && defaulted) {
      s.log->error(
          "HTTPS is not served: {} (set --router-tls-listen or router_tls_listen to a free "
          "address)",
          port.error().message());
      return {};
    }
    if (!port) {
      return Error(port.error().code(),
                   port.error().message() +
                       " (set --router-tls-listen or router_tls_listen to a free address, or "
                       "off)");
    }
    s.log->info("router listening addr={} https", config::join_host_port(hp.first, *port));
    if (s.router_tls_port == 0) {
      s.router_tls_port = *port;
    }
  }
  return {};
}

Daemon::Daemon() : impl_(std::make_unique<Impl>()) {}

Daemon::~Daemon() { stop(); }

Result<std::unique_ptr<Daemon>> Daemon::create(config::Config cfg) {
  BERTH_TRY(config::validate(cfg));
  // Once, here: everything below derives its paths from these, and runc, git and the build's
  // children run in other directories, where "./var/..." means something else.
  BERTH_TRY(config::make_paths_absolute(cfg));
  log::set_level(cfg.log_level);
  std::unique_ptr<Daemon> d(new Daemon());
  auto& s = *d->impl_;
  s.cfg = cfg;
  BERTH_TRY(fs::make_dirs(cfg.data_dir));
  BERTH_ASSIGN_OR_RETURN(s.lock_fd, lock_data_dir(cfg.data_dir));
  BERTH_ASSIGN_OR_RETURN(s.store, open_store(cfg));
  s.pool = std::make_unique<BlockingPool>(static_cast<size_t>(cfg.blocking_threads));
  // Secret values at rest (upstream credentials, secret env, webhook secrets, TSIG keys).
  BERTH_ASSIGN_OR_RETURN(auto box, SecretBox::load_or_create(cfg.data_dir + "/secrets.key"));
  registry::Options ropts;
  ropts.data_dir = cfg.data_dir;
  BERTH_ASSIGN_OR_RETURN(ropts.blob_storage, open_blob_storage(cfg));
  storage::BlobStoragePtr blobs = ropts.blob_storage;
  ropts.redirect_pulls = cfg.storage.driver == "s3" && cfg.storage.s3.redirect_pulls;
  ropts.secrets = box;
  ropts.auto_create_repositories = cfg.registry.auto_create_repositories;
  ropts.fsync = cfg.storage.fsync;
  ropts.upload_ttl = cfg.registry.upload_ttl;
  ropts.gc_grace = cfg.registry.gc_grace;
  ropts.max_manifest_bytes = cfg.registry.max_manifest_bytes;
  ropts.max_upstream_fetches = cfg.registry.max_upstream_fetches;
  ropts.upstream_timeout = cfg.registry.upstream_timeout;
  s.audit = std::make_unique<iam::AuditLog>(*s.store);
  ropts.audit = s.audit.get();
  ropts.pinned_digests = [st = s.store.get(), build = &s.build] {
    auto out = pinned_digests(*st);
    if (*build) {
      auto bases = (*build)->base_digests_in_use();
      out.insert(out.end(), bases.begin(), bases.end());
    }
    return out;
  };
  // "HOST/web/app" in a Dockerfile means the local web/app when HOST is this berthd: its
  // listen address, or a name linked to it with `berth domain link --registry`.
  ropts.is_own_host = [listen = cfg.listen, domains = &s.domains](const std::string& host) {
    if (host == listen) {
      return true;
    }
    if (!*domains) {
      return false;
    }
    auto linked = (*domains)->get(host.substr(0, host.find(':')));
    return linked && linked->registry;
  };
  iam::AuthorizerPtr authz = iam::allow_all();
  if (cfg.iam.enforce) {
    s.policy_authz = std::make_shared<iam::PolicyAuthorizer>(*s.store);
    BERTH_ASSIGN_OR_RETURN(s.signer, iam::TokenSigner::load_or_create(cfg.data_dir + "/token.key"));
    authz = s.policy_authz;
    ropts.require_auth = true;
  }
  s.registry = std::make_unique<registry::Registry>(ropts, *s.store, *s.pool, authz, s.bus);
  BERTH_TRY(s.registry->init());
  s.log->info("blob storage {}", blobs->describe());
  s.registry->start_replication();
  std::function<void()> on_change;
  if (s.policy_authz) {
    on_change = [authz = s.policy_authz] {
      if (auto r = authz->reload(); !r) {
        log::get("iam")->error("iam reload failed error={}", r.error().message());
      }
    };
  }
  s.iam = std::make_unique<iam::Service>(*s.store, *s.pool, authz, on_change, s.audit.get());
  BERTH_TRY(s.iam->bootstrap(cfg.data_dir));
  if (s.policy_authz) {
    BERTH_TRY(s.policy_authz->reload());
  } else {
    s.log->warn("iam.enforce is off: every request is allowed; keep berthd on loopback");
  }
  api::AuthSettings auth;
  auth.require_auth = cfg.iam.enforce;
  auth.authorizer = s.policy_authz.get();
  auth.signer = s.signer.get();
  auth.token_ttl = cfg.iam.token_ttl;
  s.api = std::make_unique<api::Api>(*s.registry, *s.iam, auth);
  s.api->set_registry_pool(s.pool.get());
  if (cfg.console.enabled) {
    s.sessions = std::make_unique<console::Sessions>(cfg.console.session_ttl);
    api::ConsoleSettings console;
    console.sessions = s.sessions.get();
    console.pool = s.pool.get();
    console.secure_cookie = !cfg.tls.cert_file.empty();
    Impl* self = &s;
    console.check_key = [self](const std::string& id, const std::string& secret,
                               const std::string& peer,
                               std::chrono::seconds* retry_after) -> Result<std::string> {
      if (!self->policy_authz) {
        return std::string("anonymous");  // iam.enforce off: everyone may do everything
      }
      return self->check_key(id, secret, peer, retry_after);
    };
    s.api->set_console(std::move(console));
  }
  // Both listeners' connection caps must fit in the descriptor limit, or one client holding
  // connections could starve the other listener, the blob files and SQLite of descriptors.
  // A registry, router and runc instances keep many files open: take every descriptor the
  // hard limit allows (the soft limit is often 1024) rather than fail with EMFILE under load.
  auto lim = net::raise_fd_limit();
  if (lim.error != 0) {
    s.log->warn("cannot raise the open files limit soft={} hard={}: {}", lim.soft, lim.hard,
                std::strerror(lim.error));
  } else {
    s.log->info("open files limit soft={} hard={}", lim.soft, lim.hard);
  }
  uint64_t fd_limit = lim.soft;
  auto fds = net::plan_fd_budget(fd_limit, cfg.http.max_connections, cfg.router.max_connections);
  s.log->info("connection caps http.max_connections={} router.max_connections={}", fds.http,
              fds.router);
  if (fds.lowered) {
    s.log->warn(
        "connection caps lowered to fit the file descriptor limit of {} (raise it with "
        "`ulimit -n` or LimitNOFILE=, or lower http.max_connections / router.max_connections)",
        fd_limit);
  }
  http::ServerOptions sopts;
  sopts.access_log = cfg.access_log;
  sopts.tls_cert_file = cfg.tls.cert_file;
  sopts.tls_key_file = cfg.tls.key_file;
  sopts.header_timeout = cfg.http.header_timeout;
  sopts.keepalive_timeout = cfg.http.keepalive_timeout;
  sopts.body_timeout = cfg.http.body_timeout;
  sopts.max_header_bytes = cfg.http.max_header_bytes;
  sopts.max_header_fields = cfg.http.max_header_fields;
  sopts.limits = {fds.http, cfg.http.max_connections_per_address};
  unsigned n = cfg.io_threads > 0 ? static_cast<unsigned>(cfg.io_threads)
                                  : std::max(1u, std::thread::hardware_concurrency());
  std::vector<asio::io_context*> contexts;
  for (unsigned i = 0; i < n; ++i) {
    s.iocs.push_back(std::make_unique<asio::io_context>(1));
    contexts.push_back(s.iocs.back().get());
  }
  Impl* impl = d->impl_.get();
  s.server = std::make_unique<http::Server>(
      contexts, [impl](http::Exchange& ex) { return impl->handle(ex); }, sopts);

  // Services.
  if (s.cfg.router_listen.empty()) {
    s.cfg.router_listen = {config::kDefaultRouterListen};
  }
  router::RouterOptions ropts2;
  ropts2.access_log = cfg.access_log;
  ropts2.connect_timeout = cfg.router.connect_timeout;
  ropts2.response_timeout = cfg.router.response_timeout;
  ropts2.idle_timeout = cfg.router.idle_timeout;
  ropts2.keepalive_timeout = cfg.router.keepalive_timeout;
  ropts2.header_timeout = cfg.router.header_timeout;
  ropts2.body_timeout = cfg.router.body_timeout;
  ropts2.limits = {fds.router, cfg.router.max_connections_per_address};
  ropts2.hsts_max_age = cfg.router.hsts_max_age;
  ropts2.max_idle_per_upstream = cfg.router.max_idle_per_upstream;
  s.router = std::make_unique<router::Router>(contexts, ropts2);
  api::ServicesSettings services;
  services.router = s.router.get();
  services.pool = s.pool.get();
  if (cfg.runtime.enabled) {
    runtime::RuntimeOptions rt;
    rt.root = cfg.data_dir + "/runtime";
    rt.oci_runtime = cfg.runtime.oci_runtime;
    rt.userns = cfg.runtime.userns;
    s.runtime = std::make_unique<runtime::Runtime>(rt, *s.iocs.front());
    if (Status ok_rt = s.runtime->check(); !ok_rt) {
      services.unavailable_reason = "services are not available: " + ok_rt.error().message();
      s.log->warn("{}", services.unavailable_reason);
      s.runtime.reset();
    }
  } else {
    services.unavailable_reason = "services are off on this berthd (runtime.enabled: false)";
  }
  if (s.runtime) {
    s.image_source = std::make_unique<RegistryImageSource>(*s.store, *s.registry);
    s.preparer =
        std::make_unique<runtime::ImagePreparer>(cfg.data_dir + "/runtime", *s.image_source);
    deploy::ControllerDeps deps{
        *s.store,     *s.runtime,      *s.preparer, *s.router, s.policy_authz.get(),
        cfg.data_dir, cfg.apps_domain, "",          {}};
    deps.pull = [reg = s.registry.get()](
                    const std::string& repository,
                    const std::string& ref) -> std::optional<Result<std::string>> {
      if (!reg->pulls_through(repository)) {
        return std::nullopt;
      }
      // Whoever may create or deploy the service was authorized by the API; berth pulls.
      auto p = reg->pull_image("system:build", repository, ref, runtime::host_platform().str());
      if (!p) {
        return Result<std::string>(p.error());
      }
      return Result<std::string>(p->digest);
    };
    s.controller = std::make_unique<deploy::Controller>(std::move(deps));
    services.controller = s.controller.get();
    services.fetches_upstream = [reg = s.registry.get(), st = s.store.get()](
                                    const std::string& repository, const std::string& ref) {
      if (!reg->pulls_through(repository)) {
        return false;
      }
      auto repo = st->get_repository(repository);
      return !repo || !st->get_manifest(repo->id, ref);
    };
  }
  s.api->set_services(services);

  // DNS. The addresses it gives out default to the listen addresses (config::dns_*_addresses).
  s.dns_listen_defaulted = cfg.dns.enabled && cfg.dns.listen.empty();
  if (s.dns_listen_defaulted) {
    s.cfg.dns.listen = {config::kDefaultDnsListen};
  }
  dns::Settings dns_settings;
  dns_settings.nameservers = cfg.dns.nameservers;
  dns_settings.nameserver_addresses = config::dns_nameserver_addresses(cfg);
  dns_settings.service_addresses = config::dns_service_addresses(cfg);
  dns_settings.max_record_sets = cfg.dns.max_record_sets_per_zone;
  s.dns = std::make_unique<dns::Service>(*s.store, dns_settings);
  BERTH_TRY(s.dns->load());
  s.dns_health = std::make_unique<dns::HealthChecker>(*s.store, *s.dns);

  // Builds: projects, webhooks and the git remote work without a runtime; builds then fail
  // with the reason.
  // Dynamic updates: TSIG keys sealed like the other secrets; updates audited as tsig/NAME.
  s.dns_tsig = std::make_unique<dns::TsigKeyring>(*s.store, box);
  BERTH_TRY(s.dns_tsig->load());
  s.dns_updates = std::make_unique<dns::UpdateHandler>(
      *s.dns, *s.dns_tsig,
      [audit = s.audit.get()](const std::string& principal, const std::string& action,
                              const std::string& resource, bool allowed, const std::string& peer) {
        audit->record(iam::Request{principal, action, resource}, allowed, peer);
      });
  s.api->set_dns(api::DnsSettings{s.dns.get(), s.pool.get(), s.dns_health.get(), s.dns_tsig.get()});
  // Custom domains: berth's CA or ACME, renewals; routes go to the controller, certificates
  // and HTTP-01 challenges to the router.
  domains::Settings dset;
  dset.issuer = cfg.tls.issuer;
  dset.acme_directory_url = cfg.acme.directory_url;
  dset.acme_email = cfg.acme.email;
  dset.acme_ca_bundle = cfg.acme.ca_bundle;
  dset.acme_challenge = cfg.acme.challenge;
  dset.internal_lifetime = cfg.tls.internal_lifetime;
  dset.dns_check = cfg.tls.dns_check;
  dset.dns_check_resolver = cfg.tls.dns_check_resolver;
  dset.redirect_http = cfg.router.redirect_http;
  dset.https = cfg.router_tls_enabled;
  dset.hsts = cfg.router.hsts;
  dset.service_addresses = dns_settings.service_addresses;
  dset.registry_addresses = config::dns_registry_addresses(cfg);
  domains::Hooks dhooks;
  dhooks.service_exists = [c = s.controller.get(), st = s.store.get(),
                           dns = s.dns.get()](const std::string& name) {
    if (c == nullptr || !c->get(name).has_value()) {
      return false;
    }
    // The ALIAS link is about to write answers only for services DNS knows: a service made
    // a moment ago must not wait for dns_sync's next round.
    if (auto all = st->list_services(); all) {
      std::vector<std::string> names;
      for (const auto& sv : *all) {
        names.push_back(sv.name);
      }
      dns->set_services(std::move(names));
    }
    return true;
  };
  dhooks.publish_routes = [c = s.controller.get()](std::map<std::string, domains::HostRoute> m) {
    if (c == nullptr) {
      return;
    }
    std::map<std::string, deploy::DomainRoute> hosts;
    for (auto& [host, r] : m) {
      hosts[host] = deploy::DomainRoute{r.service, r.https_redirect, r.hsts};
    }
    c->set_domains(std::move(hosts));
  };
  // A set for each listener: the router's HTTPS serves services' names, the registry/API
  // listener the names linked with --registry (and plain HTTP only while there are none).
  dhooks.publish_certificates = [r = s.router.get(), api = s.server.get(), log = s.log](
                                    std::vector<tls::Certificate> router,
                                    std::vector<tls::Certificate> registry) {
    if (auto st = api->publish_certificates(std::move(registry)); !st) {
      log->error("the registry listener refused the certificates: {}", st.error().message());
    }
    if (auto st = r->publish_certificates(std::move(router)); !st) {
      log->error("router refused the certificates: {}", st.error().message());
    }
  };
  dhooks.publish_challenges = [r = s.router.get()](auto m) { r->publish_challenges(std::move(m)); };
  s.domains = std::make_unique<domains::Manager>(*s.store, s.dns.get(), box, dset, dhooks);
  s.api->set_domains(api::DomainsSettings{s.domains.get(), s.pool.get(), ""});
  std::string build_unavailable;
  if (!s.runtime) {
    build_unavailable = services.unavailable_reason;
    const std::string services_prefix = "services are";
    if (build_unavailable.rfind(services_prefix, 0) == 0) {
      build_unavailable.replace(0, services_prefix.size(), "builds are");
    }
  }
  builder::ServiceDeps bdeps{.store = *s.store,
                             .registry = *s.registry,
                             .runtime = s.runtime.get(),
                             .preparer = s.preparer.get(),
                             .authorizer = s.policy_authz.get(),
                             .box = box,
                             .data_dir = cfg.data_dir,
                             .max_concurrent = cfg.build.max_concurrent,
                             .allow_file_remotes = cfg.build.allow_file_remotes,
                             .builder_image = cfg.build.builder_image,
                             .timeout = cfg.build.timeout,
                             .unavailable_reason = build_unavailable};
  api::BuildSettings bsettings;
  bsettings.allow_file_remotes = bdeps.allow_file_remotes;
  s.build = std::make_unique<builder::Service>(std::move(bdeps));
  bsettings.service = s.build.get();
  bsettings.pool = s.pool.get();
  s.api->set_build(bsettings);
  return d;
}

Result<uint16_t> Daemon::start() {
  auto& s = *impl_;
  BERTH_ASSIGN_OR_RETURN(auto hp, config::split_host_port(s.cfg.listen));
  BERTH_ASSIGN_OR_RETURN(s.port, s.server->listen(hp.first, hp.second));
  s.server->start();
  for (auto& ioc : s.iocs) {
    s.work.push_back(asio::make_work_guard(*ioc));
  }
  BERTH_TRY(Impl::listen_router(&s));
  BERTH_ASSIGN_OR_RETURN(auto rhp, config::split_host_port(s.cfg.router_listen.front()));
  s.router->start();
  if (s.cfg.dns.enabled) {
    dns::ServerSettings ds;
    ds.listen = s.cfg.dns.listen;
    ds.udp_threads = s.cfg.dns.udp_threads;
    ds.max_tcp_connections = s.cfg.dns.max_tcp_connections;
    ds.max_tcp_connections_per_address = s.cfg.dns.max_tcp_connections_per_address;
    ds.tcp_idle_timeout_seconds = static_cast<int>(s.cfg.dns.tcp_idle_timeout.count());
    ds.updates = s.dns_updates.get();
    auto server = dns::Server::start(*s.dns, ds);
    if (server) {
      s.dns_server = std::move(*server);
    } else if (s.dns_listen_defaulted) {
      // Nobody asked for DNS on the default port (an mDNS responder may hold 5353): serve the
      // rest, say why DNS is off and how to turn it on.
      s.log->error("DNS is not served: {} (set --dns-listen or dns.listen to a free address)",
                   server.error().message());
    } else {
      return Error(server.error().code(), server.error().message() +
                                              " (set --dns-listen or dns.listen to a free "
                                              "address, or dns.listen: [] to turn DNS off)");
    }
  }
  BERTH_TRY(s.dns_health->start());
  spawn_logged(s.iocs.front()->get_executor(), Impl::maintenance(&s), "daemon.maintenance");
  spawn_logged(s.iocs.front()->get_executor(), Impl::dns_sync(&s), "daemon.dns");
  spawn_logged(s.iocs.front()->get_executor(), Impl::audit_flusher(&s), "daemon.audit");
  spawn_logged(s.iocs.front()->get_executor(), Impl::metrics_sampler(&s), "daemon.metrics");
  size_t n = s.iocs.size();
  for (auto& ioc : s.iocs) {
    asio::io_context* raw = ioc.get();
    s.threads.emplace_back([raw] { raw->run(); });
  }
  s.log->info("berthd listening addr={}:{} router={}:{} router_tls_port={} data={} io_threads={}",
              hp.first, s.port, rhp.first, s.router_port, s.router_tls_port, s.cfg.data_dir, n);
  if (s.build) {
    if (Status bs = s.build->start(); !bs) {
      s.log->error("build service did not start: {}", bs.error().message());
    }
  }
  if (Status ds = s.domains->start(); !ds) {
    return Error(ds.error().code(), "custom domains: " + ds.error().message());
  }
  if (s.controller) {
    s.controller->set_url_base("http://" + rhp.first + ":" + std::to_string(s.router_port));
    if (Status cs = s.controller->start(s.bus); !cs) {
      s.log->error("deploy controller did not start: {}", cs.error().message());
    }
  }
  return s.port;
}

void Daemon::stop() {
  auto& s = *impl_;
  if (s.stopped) {
    return;
  }
  s.stopped = true;
  if (s.api) {
    s.api->shutdown();  // followed build logs end rather than hold the grace period
  }
  if (s.domains) {
    s.domains->stop();  // an ACME order in progress is abandoned; the next start resumes it
  }
  if (s.build) {
    s.build->stop();  // running builds are killed (and queued again for the next start)
  }
  if (s.controller) {
    s.controller->stop();  // instances stop while the I/O threads still read their output
  }
  if (s.router) {
    s.router->stop();
  }
  if (s.dns_server) {
    s.dns_server->stop();
  }
  if (s.dns_health) {
    s.dns_health->stop();
  }
  if (s.server) {
    s.server->stop();
    // Let in-flight requests finish, within a grace period.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (s.server->active_connections() > 0 && std::chrono::steady_clock::now() < deadline &&
           !s.threads.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  s.work.clear();
  for (auto& ioc : s.iocs) {
    ioc->stop();
  }
  for (auto& t : s.threads) {
    t.join();
  }
  s.threads.clear();
  if (s.pool) {
    s.pool->join();
  }
  if (s.audit) {
    if (auto r = s.audit->flush(); !r) {
      s.log->warn("audit flush at shutdown failed error={}", r.error().message());
    }
  }
  s.log->info("berthd stopped");
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
}

void Daemon::run_until_signal() {
  asio::io_context sig_ioc;
  asio::signal_set signals(sig_ioc, SIGINT, SIGTERM);
  int got = 0;
  signals.async_wait([&](const beast::error_code&, int sig) { got = sig; });
  // main() blocked these until now; one that arrived meanwhile is delivered here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  sig_ioc.run();
  impl_->log->info("signal received signal={} shutting down", got);
  stop();
}

uint16_t Daemon::port() const { return impl_->port; }
uint16_t Daemon::router_port() const { return impl_->router_port; }
uint16_t Daemon::router_tls_port() const { return impl_->router_tls_port; }
router::Router& Daemon::router() { return *impl_->router; }
std::vector<std::string> Daemon::dns_addresses() const {
  return impl_->dns_server ? impl_->dns_server->addresses() : std::vector<std::string>{};
}
EventBus& Daemon::events() { return impl_->bus; }
registry::Registry& Daemon::registry() { return *impl_->registry; }

domains::Manager* Daemon::domains() { return impl_->domains.get(); }

Result<std::unique_ptr<store::MetadataStore>> open_store(const config::Config& cfg) {
  if (cfg.store.driver != "postgres") {
    return store::open_sqlite(cfg.data_dir + "/berth.db");
  }
  store::PostgresOptions o;
  o.dsn = cfg.store.postgres.dsn;
  o.max_connections = cfg.store.postgres.max_connections;
  o.query_timeout = cfg.store.postgres.query_timeout;
  if (!cfg.store.postgres.password_file.empty()) {
    auto pw = fs::read_file(cfg.store.postgres.password_file);
    if (!pw) {
      return pw.error().with_context("store.postgres.password_file");
    }
    o.password = *pw;
    // A file written by `echo` ends in a newline that is not part of the password.
    while (!o.password.empty() && (o.password.back() == '\n' || o.password.back() == '\r')) {
      o.password.pop_back();
    }
  }
  return store::open_postgres(o);
}

namespace {

// A key file's content: `echo KEY > file` ends in a newline that is not part of the key.
Result<std::string> read_key_file(const std::string& path, const std::string& setting) {
  auto text = fs::read_file(path);
  if (!text) {
    return text.error().with_context(setting);
  }
  std::string key = *text;
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
    key.pop_back();
  }
  if (key.empty()) {
    return Error(Errc::InvalidArgument, setting + ": " + path + " is empty");
  }
  return key;
}

}  // namespace

Result<storage::BlobStoragePtr> open_blob_storage(const config::Config& cfg) {
  if (cfg.storage.driver != "s3") {
    return storage::make_fs_blob_storage(cfg.data_dir, cfg.storage.fsync);
  }
  const auto& c = cfg.storage.s3;
  storage::S3Options o;
  o.endpoint = c.endpoint;
  o.region = c.region;
  o.bucket = c.bucket;
  o.path_style = c.path_style;
  BERTH_ASSIGN_OR_RETURN(o.access_key_id,
                         read_key_file(c.access_key_id_file, "storage.s3.access_key_id_file"));
  BERTH_ASSIGN_OR_RETURN(o.secret_access_key, read_key_file(c.secret_access_key_file,
                                                            "storage.s3.secret_access_key_file"));
  storage::LocalCacheOptions cache;
  cache.max_bytes = c.cache_size;
  cache.keep_pushed = c.cache_pushed;
  cache.min_free_percent = static_cast<unsigned>(c.cache_min_free_percent);
  return storage::make_s3_blob_storage(std::make_shared<storage::S3Client>(std::move(o)),
                                       cfg.data_dir, cache);
}

int run_fsck(const std::string& data_dir_arg, bool force) {
  config::Config cfg;
  cfg.data_dir = data_dir_arg;
  return run_fsck(cfg, force);
}

int run_fsck(const config::Config& cfg_arg, bool force) {
  config::Config paths = cfg_arg;
  if (auto s = config::make_paths_absolute(paths); !s) {
    std::fprintf(stderr, "berthd fsck: %s\n", s.error().message().c_str());
    return 2;
  }
  const std::string& data_dir = paths.data_dir;
  if (paths.store.driver != "postgres" && ::access((data_dir + "/berth.db").c_str(), F_OK) != 0) {
    std::fprintf(stderr, "berthd fsck: %s has no berth.db; is it a berth data directory?\n",
                 data_dir.c_str());
    return 2;
  }
  // Offline: a serving berthd moves uploads into blobs and deletes them (gc) while fsck reads,
  // which shows up as problems that are not there. Holding the lock also keeps one from
  // starting until fsck is done.
  int lock_fd = -1;
  if (auto l = lock_data_dir(data_dir); l) {
    lock_fd = *l;
  } else if (l.error().code() == Errc::FailedPrecondition && !force) {
    std::fprintf(stderr,
                 "berthd fsck: %s is in use by a running berthd; fsck works offline: stop berthd "
                 "first, or pass --force to check it anyway (blobs written or deleted meanwhile "
                 "may be reported as problems)\n",
                 data_dir.c_str());
    return 2;
  } else if (l.error().code() != Errc::FailedPrecondition) {
    std::fprintf(stderr, "berthd fsck: warning: %s; cannot tell whether a berthd is using it\n",
                 l.error().message().c_str());
  }
  struct CloseLock {
    int fd;
    ~CloseLock() {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  } close_lock{lock_fd};
  auto st = open_store(paths);
  if (!st) {
    std::fprintf(stderr, "berthd fsck: %s\n", st.error().message().c_str());
    return 2;
  }
  auto blobs = open_blob_storage(paths);
  if (!blobs) {
    std::fprintf(stderr, "berthd fsck: %s\n", blobs.error().message().c_str());
    return 2;
  }
  auto rep = registry::Registry::fsck(**blobs, **st);
  if (!rep) {
    std::fprintf(stderr, "berthd fsck: %s\n", rep.error().message().c_str());
    return 2;
  }
  for (const auto& p : rep->problems) {
    std::printf("PROBLEM %s\n", p.c_str());
  }
  std::printf("checked %lld blobs and %lld manifests: %zu problem(s)\n",
              static_cast<long long>(rep->blobs_checked),
              static_cast<long long>(rep->manifests_checked), rep->problems.size());
  return rep->problems.empty() ? 0 : 1;
}

}  // namespace berth::daemon
