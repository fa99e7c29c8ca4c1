// SPDX-License-Identifier: Apache-2.0
#include "cli/args.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <regex>

#include "common/ascii.h"

namespace berth::cli {

namespace {

// The chain of subcommands that were parsed, root excluded ("service update").
std::vector<CLI::App*> parsed_chain(CLI::App& app) {
  std::vector<CLI::App*> chain;
  CLI::App* at = &app;
  while (true) {
    auto subs = at->get_subcommands();
    if (subs.empty()) {
      return chain;
    }
    at = subs.front();
    chain.push_back(at);
  }
}

std::vector<std::string> subcommand_names(CLI::App& app) {
  std::vector<std::string> names;
  for (const auto* s : app.get_subcommands([](CLI::App*) { return true; })) {
    names.push_back(s->get_name());
  }
  return names;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) {
    out += (out.empty() ? "" : sep) + s;
  }
  return out;
}

// CLI11's message in docs/cli.md's words; `cmd` is "berth service update".
std::string rephrase(const CLI::ParseError& e, const std::string& cmd,
                     const std::vector<std::string>& extras) {
  std::string what = e.what();
  std::smatch m;
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && !extras.empty()) {
    const std::string& x = extras.front();
    return (x.rfind('-', 0) == 0 ? "unknown option '" : "unexpected argument '") + x + "' for " +
           cmd;
  }
  if (std::regex_match(what, m, std::regex("Could not convert: (\\S+) = (.*)"))) {
    std::string name = m[1];
    if (name.rfind('-', 0) != 0) {
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    }
    return name + " expects a whole number, got '" + m[2].str() + "'";
  }
  if (std::regex_match(what, m, std::regex("(\\S+): \\d+ required \\S+ missing"))) {
    return m[1].str() + " needs a value";
  }
  if (std::regex_match(what, m, std::regex("(\\S+) excludes (\\S+)"))) {
    return m[1].str() + " cannot be given with " + m[2].str();
  }
  if (std::regex_match(what, m, std::regex("(\\S+) is required"))) {
    std::string name = m[1];
    if (name.rfind('-', 0) != 0) {
      // A positional argument: named as in the usage line (NAME, KEY_ID).
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    }
    return cmd + ": " + name + " is required";
  }
  if (!what.empty()) {
    what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
  }
  return what;
}

}  // namespace

std::string closest(const std::string& word, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& k : known) {
    size_t d = ascii::edit_distance(word, k);
    if (k.rfind(word, 0) == 0 && word.size() >= 2) {
      d = std::min<size_t>(d, 1);  // a prefix: `berth serv`
    }
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

std::optional<int> parse_args(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    auto chain = parsed_chain(app);
    CLI::App& at = chain.empty() ? app : *chain.back();
    std::string path;
    for (const auto* c : chain) {
      path += (path.empty() ? "" : " ") + c->get_name();
    }
    std::string cmd = "berth" + (path.empty() ? "" : " " + path);
    std::vector<std::string> extras = app.remaining();
    std::string message;
    auto names = subcommand_names(at);
    // A word where a command was expected: an unknown command, whatever CLI11 calls it.
    auto word = std::find_if(extras.begin(), extras.end(),
                             [](const std::string& x) { return x.rfind('-', 0) != 0; });
    if (!names.empty() && at.get_subcommands().empty() && word != extras.end()) {
      std::string full = path.empty() ? *word : path + " " + *word;
      message = "unknown command '" + full + "'";
      std::string near = closest(*word, names);
      if (!near.empty()) {
        message += "; did you mean '" + (path.empty() ? near : path + " " + near) + "'?";
      }
    } else if (!names.empty() && at.get_subcommands().empty() &&
               dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      message =
          chain.empty() ? "a command is required" : cmd + " needs a command: " + join(names, ", ");
    } else {
      message = rephrase(e, cmd, extras);
    }
    std::fprintf(stderr, "berth: %s (see %s --help)\n", message.c_str(), cmd.c_str());
    return 2;
  }
}

}  // namespace berth::cli
