// SPDX-License-Identifier: Apache-2.0
#include "cli/login.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/util.h"
#include "common/fs.h"
#include "common/json.h"

namespace berth::cli {

struct LoginCommands {
  CLI::App* login = nullptr;
  CLI::App* logout = nullptr;
  std::string key_id;
  bool secret_stdin = false;
  bool json = false;
};

namespace {

std::string getenv_str(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string trim(std::string s) {
  auto sp = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && sp(s.back())) {
    s.pop_back();
  }
  size_t i = 0;
  while (i < s.size() && sp(s[i])) {
    ++i;
  }
  return s.substr(i);
}

// ~/.config/berth/credentials ("" when HOME is unset).
std::string credentials_path() {
  std::string home = getenv_str("HOME");
  return home.empty() ? "" : home + "/.config/berth/credentials";
}

// Reads the credentials file: KEY=VALUE lines (blank lines and # comments skipped).
// nullopt when the file does not exist; InvalidArgument when it is unreadable or incomplete.
Result<std::optional<Credentials>> read_credentials_file(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) {
    return std::optional<Credentials>{};
  }
  auto text = fs::read_file(path);
  if (!text) {
    return Error(Errc::InvalidArgument, "cannot read " + path + ": " + text.error().message());
  }
  std::map<std::string, std::string> kv;
  size_t pos = 0;
  while (pos <= text->size()) {
    size_t eol = text->find('\n', pos);
    std::string line =
        trim(text->substr(pos, eol == std::string::npos ? std::string::npos : eol - pos));
    if (!line.empty() && line[0] != '#') {
      auto eq = line.find('=');
      if (eq != std::string::npos) {
        kv[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
      }
    }
    if (eol == std::string::npos) {
      break;
    }
    pos = eol + 1;
  }
  Credentials c{kv["BERTH_SERVER"], kv["BERTH_ACCESS_KEY_ID"], kv["BERTH_SECRET_ACCESS_KEY"]};
  if (c.key_id.empty() || c.secret.empty()) {
    return Error(Errc::InvalidArgument,
                 path +
                     " must set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY (run "
                     "berth login again)");
  }
  return std::optional<Credentials>{c};
}

// Writes the credentials file with mode 0600, creating ~/.config/berth with mode 0700.
Status write_credentials_file(const std::string& path, const Credentials& c) {
  if (path.empty()) {
    return Error(Errc::InvalidArgument, "HOME is not set: nowhere to keep credentials");
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir.parent_path(), ec);
  if (ec) {
    return Error(Errc::Internal,
                 "cannot create " + dir.parent_path().string() + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error(Errc::Internal, "cannot create " + dir.string() + ": " + std::strerror(errno));
  }
  return fs::write_atomic(path,
                          "BERTH_SERVER=" + c.server + "\nBERTH_ACCESS_KEY_ID=" + c.key_id +
                              "\nBERTH_SECRET_ACCESS_KEY=" + c.secret + "\n",
                          0600);
}

// One line from stdin without its newline; with hide, and stdin a terminal, echo is off.
std::optional<std::string> read_line(const char* prompt, bool hide) {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  if (tty && prompt) {
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
  }
  termios old{};
  bool restore = false;
  if (tty && hide && ::tcgetattr(STDIN_FILENO, &old) == 0) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    restore = ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
  }
  std::string line;
  bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  if (!ok && line.empty()) {
    return std::nullopt;
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  return line;
}

}  // namespace

std::shared_ptr<LoginCommands> add_login_commands(CLI::App& app) {
  auto c = std::make_shared<LoginCommands>();
  c->login = app.add_subcommand(
      "login", "verify an access key with the server and keep it in ~/.config/berth/credentials");
  c->login->add_option("--access-key-id", c->key_id, "access key id (BK...); else prompted");
  c->login->add_flag("--secret-access-key-stdin", c->secret_stdin,
                     "read the secret as one line from stdin (without a prompt)");
  add_json_flag(c->login, c->json, "print the server and principal as JSON");
  c->logout = app.add_subcommand("logout", "forget the credentials kept by berth login");
  add_json_flag(c->logout, c->json, "print what was removed as JSON");
  return c;
}

bool login_chosen(const LoginCommands& c) { return c.login->parsed(); }

std::optional<int> run_logout(LoginCommands& c) {
  if (!c.logout->parsed()) {
    return std::nullopt;
  }
  const std::string path = credentials_path();
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) {
    if (c.json) {
      return print_json(Json{{"logged_out", false}});
    }
    std::printf("not logged in\n");
    return 0;
  }
  if (!std::filesystem::remove(path, ec) || ec) {
    return fail(Error(Errc::Internal,
                      "cannot remove " + path + ": " + (ec ? ec.message() : "unknown error")));
  }
  if (c.json) {
    return print_json(Json{{"logged_out", true}, {"removed", path}});
  }
  std::printf("logged out (removed %s)\n", path.c_str());
  return 0;
}

Result<std::optional<Credentials>> find_credentials(bool server_given, std::string& server) {
  const std::string id = getenv_str("BERTH_ACCESS_KEY_ID");
  const std::string secret = getenv_str("BERTH_SECRET_ACCESS_KEY");
  const bool from_env = !id.empty() || !secret.empty();
  if (from_env && (id.empty() || secret.empty())) {
    return Error(Errc::InvalidArgument,
                 "set both BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, or neither");
  }
  auto file = read_credentials_file(credentials_path());
  if (!file && !from_env) {
    return file.error();
  }
  // The file's server counts when neither --server nor BERTH_SERVER names one (also when the
  // key comes from the environment).
  if (file && *file && !server_given && !(*file)->server.empty()) {
    server = (*file)->server;
  }
  if (from_env) {
    return std::optional<Credentials>{Credentials{"", id, secret}};
  }
  return file ? *file : std::optional<Credentials>{};
}

std::optional<int> run_login(LoginCommands& c, api::Client& client) {
  if (!c.login->parsed()) {
    return std::nullopt;
  }
  if (c.key_id.empty()) {
    auto id = read_line("Access key ID: ", false);
    c.key_id = id ? trim(*id) : "";
  }
  if (c.key_id.empty()) {
    return fail(Error(Errc::InvalidArgument, "no access key id given"));
  }
  auto secret = read_line(c.secret_stdin ? nullptr : "Secret access key: ", true);
  std::string secret_str = secret ? trim(*secret) : "";
  if (secret_str.empty()) {
    return fail(Error(Errc::InvalidArgument, "no secret access key on stdin"));
  }
  client.set_credentials(c.key_id, secret_str);
  auto who = client.call("GET", "/api/v1/auth/whoami");
  if (!who) {
    if (who.error().code() == Errc::Unauthenticated) {
      std::fprintf(stderr, "berth: login failed: %s refused access key %s or its secret\n",
                   client.server().c_str(), c.key_id.c_str());
      return exit_code(Errc::Unauthenticated);
    }
    if (who.error().code() == Errc::NotFound) {
      return fail(Error(Errc::FailedPrecondition,
                        "could not verify the credentials: " + client.server() +
                            " does not answer /api/v1/auth/whoami (berthd too old?); "
                            "nothing was saved"));
    }
    return fail(who.error());
  }
  std::string principal = who->contains("principal") && (*who)["principal"].is_string()
                              ? (*who)["principal"].get<std::string>()
                              : "";
  if (principal.empty()) {
    return fail(
        Error(Errc::Internal, "could not verify the credentials: whoami named no principal"));
  }
  auto st = write_credentials_file(credentials_path(),
                                   Credentials{client.server(), c.key_id, secret_str});
  if (!st) {
    return fail(st.error());
  }
  if (c.json) {
    return print_json(Json{{"server", client.server()}, {"principal", principal}});
  }
  std::printf("logged in to %s as %s\n", client.server().c_str(), principal.c_str());
  return 0;
}

}  // namespace berth::cli
