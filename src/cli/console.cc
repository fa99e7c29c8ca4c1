// SPDX-License-Identifier: Apache-2.0
#include "cli/console.h"

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "cli/util.h"

extern char** environ;

namespace berth::cli {

struct ConsoleCommands {
  CLI::App* console = nullptr;
  bool no_open = false;
  bool json = false;
};

namespace {

// Opens url in the desktop's browser when there is a desktop; false when there is none or
// xdg-open is missing. The browser is not waited for.
bool open_in_browser(const std::string& url) {
  const char* display = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  if ((display == nullptr || *display == '\0') && (wayland == nullptr || *wayland == '\0')) {
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::string prog = "xdg-open";
  char* argv[] = {prog.data(), const_cast<char*>(url.c_str()), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "xdg-open", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0;
}

}  // namespace

std::shared_ptr<ConsoleCommands> add_console_commands(CLI::App& app) {
  auto c = std::make_shared<ConsoleCommands>();
  c->console = app.add_subcommand(
      "console", "print (and open) a one-time link that signs this key in to the web console");
  c->console->add_flag("--no-open", c->no_open, "only print the link");
  add_json_flag(c->console, c->json);
  return c;
}

std::optional<int> run_console_commands(ConsoleCommands& cmds, const api::Client& client) {
  if (!cmds.console->parsed()) {
    return std::nullopt;
  }
  auto r = client.call("POST", "/api/v1/console/links", Json::object());
  if (!r) {
    return fail(r.error());
  }
  if (cmds.json) {
    return print_json(*r);
  }
  std::string url = str(*r, "url");
  std::printf("%s\n", url.c_str());
  std::fprintf(stderr, "One-time link for %s, valid for 2 minutes.\n",
               str(*r, "principal").c_str());
  if (!cmds.no_open && open_in_browser(url)) {
    std::fprintf(stderr, "Opened in your browser.\n");
  }
  return 0;
}

}  // namespace berth::cli
