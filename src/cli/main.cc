// SPDX-License-Identifier: Apache-2.0
// berth: the command-line client. Talks only to the control API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "api/client.h"
#include "common/json.h"
#include "common/url.h"

namespace {

using berth::Errc;
using berth::Json;

// Exit codes by error class (documented in docs/cli.md).
int exit_code(Errc c) {
  switch (c) {
    case Errc::InvalidArgument:
      return 2;
    case Errc::NotFound:
      return 3;
    case Errc::AlreadyExists:
    case Errc::Conflict:
      return 4;
    case Errc::Unauthenticated:
    case Errc::PermissionDenied:
      return 5;
    case Errc::Unavailable:
      return 6;
    default:
      return 1;
  }
}

int fail(const berth::Error& e) {
  std::fprintf(stderr, "berth: %s\n", e.message().c_str());
  return exit_code(e.code());
}

std::string human_size(int64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string when(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::gmtime(&tt));
  return buf;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows) {
    w.resize(std::max(w.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) {
      w[i] = std::max(w[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(w[i] - r[i].size() + 2, ' ');
      }
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth: push to deploy, on your own machine"};
  app.require_subcommand(1);
  std::string server;
  const char* env_server = std::getenv("BERTH_SERVER");
  server = env_server && *env_server ? env_server : "http://127.0.0.1:5000";
  app.add_option("--server", server, "berthd URL (env BERTH_SERVER)")->capture_default_str();
  bool as_json = false;

  auto* repo = app.add_subcommand("repo", "repositories");
  repo->require_subcommand(1);
  auto* repo_create = repo->add_subcommand("create", "create a repository");
  std::string repo_name;
  bool immutable = false;
  std::vector<std::string> mutable_globs;
  repo_create->add_option("name", repo_name, "repository name, e.g. web/app")->required();
  repo_create->add_flag("--immutable-tags", immutable, "refuse to move an existing tag");
  repo_create
      ->add_option("--mutable-tags", mutable_globs,
                   "tag globs that stay mutable in an immutable repository (e.g. latest)")
      ->needs(repo_create->get_option("--immutable-tags"));
  repo_create->add_flag("--json", as_json, "print JSON");
  auto* repo_ls = repo->add_subcommand("ls", "list repositories");
  repo_ls->add_flag("--json", as_json, "print JSON");
  auto* repo_rm = repo->add_subcommand("rm", "delete a repository with its tags and manifests");
  repo_rm->add_option("name", repo_name, "repository name")->required();

  auto* image = app.add_subcommand("image", "images in a repository");
  image->require_subcommand(1);
  auto* image_ls = image->add_subcommand("ls", "list images: digest, tags, size, platform");
  image_ls->add_option("repo", repo_name, "repository name")->required();
  image_ls->add_flag("--json", as_json, "print JSON");
  auto* image_rm = image->add_subcommand("rm", "remove REPO:TAG (the tag) or REPO@DIGEST");
  std::string image_ref;
  image_rm->add_option("ref", image_ref, "REPO:TAG or REPO@DIGEST")->required();

  auto* gc = app.add_subcommand("gc", "delete blobs no manifest references (older than 1h)");
  gc->add_flag("--json", as_json, "print JSON");

  CLI11_PARSE(app, argc, argv);

  auto client = berth::api::Client::create(server);
  if (!client) {
    return fail(client.error());
  }
  auto repo_path = [](const std::string& name) {
    return "/api/v1/repositories/" + berth::url::encode(name);
  };

  if (*repo_create) {
    Json body{{"name", repo_name}, {"immutable_tags", immutable}, {"mutable_tags", mutable_globs}};
    auto r = client->call("POST", "/api/v1/repositories", body);
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
    } else {
      std::printf("created repository %s%s\n", repo_name.c_str(),
                  immutable ? " (immutable tags)" : "");
    }
    return 0;
  }
  if (*repo_ls) {
    auto r = client->call("GET", "/api/v1/repositories");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << (*r)["repositories"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "TAGS", "CREATED"}};
    for (const auto& x : (*r)["repositories"]) {
      std::string mode = x.value("immutable_tags", false) ? "immutable" : "mutable";
      auto globs = x.value("mutable_tags", std::vector<std::string>{});
      if (!globs.empty()) {
        mode += " (mutable:";
        for (auto& g : globs) {
          mode += " " + g;
        }
        mode += ")";
      }
      rows.push_back({x.value("name", ""), mode, when(x.value("created_at", int64_t{0}))});
    }
    print_table(rows);
    return 0;
  }
  if (*repo_rm) {
    auto r = client->call("DELETE", repo_path(repo_name));
    if (!r) {
      return fail(r.error());
    }
    std::printf("deleted repository %s\n", repo_name.c_str());
    return 0;
  }
  if (*image_ls) {
    auto r = client->call("GET", repo_path(repo_name) + "/images");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << (*r)["images"].dump(2) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows{{"DIGEST", "TAGS", "SIZE", "PLATFORM", "PUSHED"}};
    for (const auto& x : (*r)["images"]) {
      std::string tags;
      for (const auto& t : x["tags"]) {
        tags += (tags.empty() ? "" : ",") + t.get<std::string>();
      }
      std::string platform = x.value("platform", "");
      if (x.contains("artifact_type")) {
        platform = x.value("artifact_type", "");
      }
      rows.push_back({x.value("digest", ""), tags.empty() ? "<none>" : tags,
                      human_size(x.value("size", int64_t{0})), platform.empty() ? "-" : platform,
                      when(x.value("pushed_at", int64_t{0}))});
    }
    print_table(rows);
    return 0;
  }
  if (*image_rm) {
    std::string name, ref;
    auto at = image_ref.find('@');
    if (at != std::string::npos) {
      name = image_ref.substr(0, at);
      ref = image_ref.substr(at + 1);
    } else {
      auto colon = image_ref.rfind(':');
      if (colon == std::string::npos || image_ref.find('/', colon) != std::string::npos) {
        return fail(berth::Error(Errc::InvalidArgument,
                                 "'" + image_ref + "' must be REPO:TAG or REPO@DIGEST"));
      }
      name = image_ref.substr(0, colon);
      ref = image_ref.substr(colon + 1);
    }
    auto r = client->call("DELETE", repo_path(name) + "/images/" + berth::url::encode(ref));
    if (!r) {
      return fail(r.error());
    }
    std::printf("removed %s\n", image_ref.c_str());
    return 0;
  }
  if (*gc) {
    auto r = client->call("POST", "/api/v1/gc");
    if (!r) {
      return fail(r.error());
    }
    if (as_json) {
      std::cout << r->dump(2) << "\n";
    } else {
      std::printf(
          "gc: deleted %lld blob(s) and %lld orphan file(s), freed %s, removed %lld "
          "stale upload(s)\n",
          static_cast<long long>(r->value("blobs_deleted", int64_t{0})),
          static_cast<long long>(r->value("orphan_files_deleted", int64_t{0})),
          human_size(r->value("bytes_freed", int64_t{0})).c_str(),
          static_cast<long long>(r->value("uploads_removed", int64_t{0})));
    }
    return 0;
  }
  return 0;
}
