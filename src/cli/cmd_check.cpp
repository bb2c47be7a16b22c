// rbox check: run every step rbox needs on this host and report which one fails, with what to
// do about it. Exit 0 when containers can run (warnings allowed), 253 otherwise.
#include <unistd.h>

#include <iostream>

#include "cli/app.hpp"
#include "container/host_check.hpp"
#include "util/exit_codes.hpp"
#include "util/subprocess.hpp"

namespace rbox::cli {

namespace {

int run_check() {
  using container::CheckResult;
  using container::CheckStatus;
  std::vector<CheckResult> all = container::check_sysctls();
  all.push_back(container::check_dev_fuse());
  for (auto& r : container::check_namespaces()) all.push_back(r);
  {
    CheckResult r{"--fakeroot id ranges", CheckStatus::kOk, "", ""};
    bool tools = !proc::which("newuidmap").empty() && !proc::which("newgidmap").empty();
    r.status = tools ? CheckStatus::kOk : CheckStatus::kWarn;
    r.detail = tools ? "newuidmap and newgidmap installed" : "newuidmap/newgidmap not installed";
    if (!tools)
      r.fix =
          "install the uidmap package for full /etc/subuid ranges; without it --fakeroot emulates other ids";
    all.push_back(r);
  }
  bool failed = false;
  for (const auto& r : all) {
    const char* tag = r.status == CheckStatus::kOk     ? "ok  "
                      : r.status == CheckStatus::kWarn ? "warn"
                                                       : "FAIL";
    std::cout << tag << "  " << r.name << ": " << r.detail << "\n";
    if (!r.fix.empty() && r.status != CheckStatus::kOk) std::cout << "      fix: " << r.fix << "\n";
    failed = failed || r.status == CheckStatus::kFail;
  }
  if (::getuid() == 0)
    std::cout << "note: checked as root; an unprivileged user may be restricted further (run 'rbox check' as "
                 "that user)\n";
  std::cout << (failed ? "rbox cannot run containers on this host as this user (see FAIL above)\n"
                       : "rbox can run containers on this host\n");
  return failed ? exit_code::kHostUnsupported : exit_code::kOk;
}

}  // namespace

void register_check(CLI::App& app, Context& ctx) {
  auto* sub =
      add_command(app, "check", "Check that this host allows rootless containers (user namespaces, FUSE, …)",
                  {"rbox check", "rbox --verbose check"});
  on_run(sub, ctx, [] { return run_check(); });
}

}  // namespace rbox::cli
