// rbox entry point: global flags, the command tree, and the one place errors become exit codes.
// Invoked as "run-singularity" (the SIF launch line `#!/usr/bin/env run-singularity`), it acts as
// `rbox run IMAGE ARGS…`, so `./env.sif args` works where only rbox is installed.
#include <CLI/CLI.hpp>
#include <cstring>
#include <iostream>

#include "cli/app.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/nss.hpp"
#include "util/strings.hpp"

namespace rbox::cli {

CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& summary,
                      const std::vector<std::string>& examples) {
  CLI::App* sub = parent.add_subcommand(name, summary);
  std::string footer = "\nExamples:";
  for (const auto& e : examples) footer += "\n  " + e;
  sub->footer(footer);
  return sub;
}

void on_run(CLI::App* sub, Context& ctx, Action fn) {
  sub->callback([&ctx, fn = std::move(fn)] { ctx.action = fn; });
}

int not_implemented(const std::string& what) {
  std::cerr << "rbox: '" << what << "' is not implemented yet\n";
  return exit_code::kUsage;
}

static int run_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (fs::basename(argv[0]) == "run-singularity") args.insert(args.begin(), "run");

  CLI::App app("rbox: build and run Apptainer-compatible containers without root.", "rbox");
  app.footer(
      "\nExamples:\n  rbox build env.sif env.def\n  rbox exec env.sif python3 --version\n\n"
      "Run 'rbox COMMAND --help' for the options of a command.");
  app.require_subcommand(1);
  app.fallthrough();
  bool quiet = false, verbose = false, debug = false;
  app.add_flag("-q,--quiet", quiet, "Print only errors");
  app.add_flag("-v,--verbose", verbose, "Print more about what happens");
  app.add_flag("-d,--debug", debug, "Print debugging detail (implies --verbose)");
  app.set_version_flag("--version", std::string("rbox ") + RBOX_VERSION);

  // Only the command being run is registered: building CLI11's whole tree costs about 1 ms,
  // a fifth of `rbox exec`'s start-up budget. Help and unknown words register everything.
  struct Group {
    std::vector<std::string> names;
    void (*add)(CLI::App&, Context&);
  };
  static const Group kGroups[] = {
      {{"build"}, register_build},       {{"exec", "run", "shell", "test"}, register_actions},
      {{"inspect"}, register_inspect},   {{"pull"}, register_pull},
      {{"instance"}, register_instance}, {{"sif"}, register_sif},
      {{"cache"}, register_cache},       {{"registry"}, register_registry},
      {{"check"}, register_check},       {{"version"}, register_version},
  };
  std::string first;
  for (const auto& a : args) {
    if (!a.empty() && a[0] != '-') {
      first = a;
      break;
    }
  }
  Context ctx;
  const Group* only = nullptr;
  for (const auto& g : kGroups)
    if (std::find(g.names.begin(), g.names.end(), first) != g.names.end()) only = &g;
  if (only) {
    only->add(app, ctx);
  } else {
    std::vector<std::string> names;
    for (const auto& g : kGroups) {
      g.add(app, ctx);
      names.insert(names.end(), g.names.begin(), g.names.end());
    }
    // An unknown first word would otherwise read as "a subcommand is required".
    if (!first.empty()) {
      std::string hint = str::closest(first, names);
      log::error("unknown command '" + first + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                 "; run 'rbox --help' for the list");
      return exit_code::kUsage;
    }
  }

  if (args.empty()) {
    std::cerr << app.help();
    return exit_code::kUsage;
  }
  try {
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where;
    for (CLI::App* sub = &app; sub;) {
      auto subs = sub->get_subcommands();
      if (subs.empty()) break;
      sub = subs.front();
      where += " " + sub->get_name();
    }
    log::error(std::string(e.what()) + " (see 'rbox" + where + " --help')");
    return exit_code::kUsage;
  }
  log::set_level(quiet     ? log::Level::kQuiet
                 : debug   ? log::Level::kDebug
                 : verbose ? log::Level::kVerbose
                           : log::Level::kNormal);
  if (!ctx.action) return exit_code::kUsage;
  return ctx.action();
}

}  // namespace rbox::cli

int main(int argc, char** argv) {
  rbox::nss::pin_builtin_modules();
  try {
    return rbox::cli::run_main(argc, argv);
  } catch (const rbox::Error& e) {
    rbox::log::error(e.message());
    return e.exit_code();
  } catch (const std::exception& e) {
    rbox::log::error(e.what());
    return rbox::exit_code::kFailure;
  }
}
