// rbox exec|run|shell|test: run a command in a container, the way Apptainer does. Flags become
// container::LaunchOptions; container::make_plan decides, container::run_container acts.
#include <cstdlib>

#include "build/pull_sif.hpp"
#include "cli/app.hpp"
#include "container/environment.hpp"
#include "container/image_ref.hpp"
#include "container/launch.hpp"
#include "container/options.hpp"
#include "container/plan.hpp"
#include "oci/pull.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/strings.hpp"

namespace rbox::cli {

namespace {

using container::LaunchOptions;

void add_action_flags(CLI::App* sub, LaunchOptions& o) {
  sub->add_option("-B,--bind", o.binds, "Bind a host path: src[:dst[:ro|rw]], comma lists allowed")
      ->allow_extra_args(false);
  sub->add_option("--mount", o.mounts, "Mount: type=bind,src=…,dst=…[,ro]")->allow_extra_args(false);
  sub->add_option("-H,--home", o.home, "Home directory to bind: src[:dst]");
  sub->add_flag("--no-home", o.no_home, "Do not bind the home directory");
  sub->add_flag("-c,--contain", o.contain,
                "Use empty /tmp, /var/tmp, home and a minimal /dev instead of the host's");
  sub->add_flag("-C,--containall", o.containall, "--contain plus PID and IPC namespaces and --cleanenv");
  sub->add_flag("-e,--cleanenv", o.cleanenv, "Do not pass the host environment");
  sub->add_option("--env", o.envs, "Set a variable in the container: K=V (repeatable, or K=V,K2=V2)")
      ->allow_extra_args(false);
  sub->add_option("--env-file", o.env_files, "File of K=V lines to set in the container")
      ->allow_extra_args(false);
  sub->add_option("--pwd,--cwd", o.pwd, "Initial working directory in the container");
  sub->add_flag("-w,--writable", o.writable, "Write into a sandbox directory image");
  sub->add_flag("--writable-tmpfs", o.writable_tmpfs,
                "Writable in-memory layer over the image (see --tmpfs-size)");
  sub->add_option("--tmpfs-size", o.tmpfs_size_mib,
                  "Size limit in MiB of --writable-tmpfs and of --contain's /tmp (default " +
                      std::to_string(container::kDefaultTmpfsSizeMib) + "; Apptainer's is 64)");
  sub->add_option("-o,--overlay", o.overlays, "Overlay directory on top of the image: DIR[:ro]")
      ->allow_extra_args(false);
  sub->add_flag("-f,--fakeroot", o.fakeroot, "Run as root inside a user namespace");
  sub->add_flag("-u,--userns", o.userns,
                "Use a user namespace (always on; accepted for Apptainer compatibility)");
  sub->add_flag("-p,--pid", o.pid, "New PID namespace");
  sub->add_flag("-i,--ipc", o.ipc, "New IPC namespace");
  sub->add_flag("-n,--net", o.net, "New network namespace with loopback only");
  sub->add_flag("--uts", o.uts, "New UTS namespace");
  sub->add_option("--hostname", o.hostname, "Hostname in a new UTS namespace");
  sub->add_option("--no-mount", o.no_mount,
                  "Skip default mounts: proc,sys,dev,home,tmp,cwd,bind-paths or a path")
      ->allow_extra_args(false);
  sub->add_option("--app", o.app, "Run this SCIF app");
  sub->add_flag("--unsquash", o.unsquash,
                "Extract the image to a temporary directory instead of mounting it");
  sub->add_flag("--no-init", o.no_init, "No init process in the PID namespace");
  sub->add_flag("--no-eval", o.no_eval, "Do not shell-evaluate environment values");
  sub->add_flag("--ignore-subuid", o.ignore_subuid, "With --fakeroot, map only your own uid");
  sub->add_option("-W,--workdir", o.workdir, "Directory for --contain's /tmp, /var/tmp and home");
}

// Apptainer's --env takes K=V,K2=V2; a comma starts a new pair only when NAME= follows it.
std::vector<std::string> split_env_list(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    std::string cur;
    for (const auto& piece : str::split(v, ',')) {
      auto eq = piece.find('=');
      bool starts_pair = eq != std::string::npos && container::is_shell_name(piece.substr(0, eq));
      if (!cur.empty() && starts_pair) {
        out.push_back(cur);
        cur = piece;
      } else {
        cur = cur.empty() && starts_pair ? piece : cur + (cur.empty() ? "" : ",") + piece;
      }
    }
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

int run_action(LaunchOptions o) {
  o.envs = split_env_list(o.envs);
  if (o.shell.empty() && o.action == container::Action::kShell) {
    for (const char* var : {"RBOX_SHELL", "APPTAINER_SHELL", "SINGULARITY_SHELL"})
      if (const char* v = std::getenv(var); v && *v) {
        o.shell = v;
        break;
      }
  }
  // docker://, oci:, oci-archive:, docker-archive: run from a SIF kept in the cache, as Apptainer
  // does (it converts into its oci-tmp cache first).
  container::set_remote_image_resolver([](const std::string& ref) {
    for (const char* p : {"docker://", "oci:", "oci-archive:", "docker-archive:"})
      if (str::starts_with(ref, p)) return build::cached_sif(ref, oci::PullOptions{});
    throw Error("'" + ref + "': rbox runs docker://, oci:, oci-archive: and docker-archive: references; " +
                "for other transports pull or build a SIF first");
  });
  container::ImageInfo image = container::resolve_image(o.image);
  container::HostFacts host = container::gather_host_facts(o.fakeroot);
  container::Plan plan = container::make_plan(o, image, host);
  return container::run_container(plan);
}

}  // namespace

void register_actions(CLI::App& app, Context& ctx) {
  struct Verb {
    const char* name;
    container::Action action;
    const char* summary;
    std::vector<std::string> examples;
  };
  const Verb verbs[] = {
      {"exec",
       container::Action::kExec,
       "Run a command in a container",
       {"rbox exec env.sif python3 script.py", "rbox exec -B /data:/data --cleanenv env.sif ls /data"}},
      {"run",
       container::Action::kRun,
       "Run the image's runscript with arguments",
       {"rbox run env.sif", "rbox run env.sif --port 8080"}},
      {"shell",
       container::Action::kShell,
       "Start an interactive shell in a container",
       {"rbox shell env.sif", "rbox shell --contain --pwd /work env.sif"}},
      {"test",
       container::Action::kTest,
       "Run the image's %test section",
       {"rbox test env.sif", "rbox test --cleanenv env.sif"}},
  };
  for (const auto& v : verbs) {
    auto o = std::make_shared<LaunchOptions>();
    o->action = v.action;
    auto* sub = add_command(app, v.name, v.summary, v.examples);
    sub->add_option("image", o->image,
                    std::string("SIF file or sandbox directory; what follows it is ") +
                        (v.action == container::Action::kExec ? "the COMMAND and its arguments"
                                                              : "passed as arguments"))
        ->required();
    if (v.action == container::Action::kShell) sub->add_option("-s,--shell", o->shell, "Shell to run");
    add_action_flags(sub, *o);
    // Everything after IMAGE belongs to the command, options included (`exec img sh -c x`):
    // as a prefix command the first word without a positional slot ends rbox's parsing.
    sub->prefix_command();
    sub->allow_extras();
    sub->fallthrough(false);
    on_run(sub, ctx, [o, sub, action = v.action] {
      o->args = sub->remaining();
      if (action == container::Action::kExec && o->args.empty())
        throw Error("exec needs a command to run: rbox exec IMAGE COMMAND [ARGS...]", exit_code::kUsage);
      return run_action(*o);
    });
  }
}

}  // namespace rbox::cli
