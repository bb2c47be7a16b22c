// rbox exec|run|shell|test: run a command in a container, the way Apptainer does.
#include "cli/app.hpp"

namespace rbox::cli {

namespace {

struct ActionOpts {
  std::string image, home, pwd, hostname, overlay, env_file, app, workdir, shell;
  std::vector<std::string> args, binds, mounts, envs, no_mount;
  bool no_home = false, contain = false, containall = false, cleanenv = false, writable = false;
  bool writable_tmpfs = false, fakeroot = false, pid = false, ipc = false, net = false, uts = false;
  bool unsquash = false, no_init = false, no_eval = false, ignore_subuid = false, userns = false;
};

void add_action_flags(CLI::App* sub, ActionOpts& o) {
  sub->add_option("-B,--bind", o.binds, "Bind a host path: src[:dst[:ro|rw]], comma lists allowed");
  sub->add_option("--mount", o.mounts, "Mount: type=bind,src=…,dst=…[,ro]");
  sub->add_option("-H,--home", o.home, "Home directory to bind: src[:dst]");
  sub->add_flag("--no-home", o.no_home, "Do not bind the home directory");
  sub->add_flag("-c,--contain", o.contain, "Use empty /tmp, /var/tmp and home instead of the host's");
  sub->add_flag("-C,--containall", o.containall, "--contain plus PID and IPC namespaces and --cleanenv");
  sub->add_flag("-e,--cleanenv", o.cleanenv, "Do not pass the host environment");
  sub->add_option("--env", o.envs, "Set an environment variable in the container (K=V)");
  sub->add_option("--env-file", o.env_file, "File of K=V lines to set in the container");
  sub->add_option("--pwd,--cwd", o.pwd, "Initial working directory in the container");
  sub->add_flag("-w,--writable", o.writable, "Write into a sandbox directory image");
  sub->add_flag("--writable-tmpfs", o.writable_tmpfs, "Writable in-memory layer over the image");
  sub->add_option("-o,--overlay", o.overlay, "Overlay directory: DIR[:ro]");
  sub->add_flag("-f,--fakeroot", o.fakeroot, "Run as root inside a user namespace");
  sub->add_flag("-u,--userns", o.userns,
                "Use a user namespace (always on; accepted for Apptainer compatibility)");
  sub->add_flag("-p,--pid", o.pid, "New PID namespace");
  sub->add_flag("-i,--ipc", o.ipc, "New IPC namespace");
  sub->add_flag("-n,--net", o.net, "New network namespace with loopback only");
  sub->add_flag("--uts", o.uts, "New UTS namespace");
  sub->add_option("--hostname", o.hostname, "Hostname in a new UTS namespace");
  sub->add_option("--no-mount", o.no_mount, "Skip default mounts: proc,sys,dev,home,tmp,cwd,…");
  sub->add_option("--app", o.app, "Run this SCIF app");
  sub->add_flag("--unsquash", o.unsquash,
                "Extract the image to a temporary directory instead of mounting it");
  sub->add_flag("--no-init", o.no_init, "No init process in the PID namespace");
  sub->add_flag("--no-eval", o.no_eval, "Do not shell-evaluate environment values");
  sub->add_flag("--ignore-subuid", o.ignore_subuid, "With --fakeroot, map only your own uid");
  sub->add_option("-W,--workdir", o.workdir, "Directory for --contain's /tmp, /var/tmp and home");
}

}  // namespace

void register_actions(CLI::App& app, Context& ctx) {
  struct Verb {
    const char* name;
    const char* summary;
    std::vector<std::string> examples;
  };
  const Verb verbs[] = {
      {"exec",
       "Run a command in a container",
       {"rbox exec env.sif python3 script.py", "rbox exec -B /data:/data --cleanenv env.sif ls /data"}},
      {"run",
       "Run the image's runscript with arguments",
       {"rbox run env.sif", "rbox run env.sif --port 8080"}},
      {"shell",
       "Start an interactive shell in a container",
       {"rbox shell env.sif", "rbox shell --contain --pwd /work env.sif"}},
      {"test", "Run the image's %test section", {"rbox test env.sif", "rbox test --cleanenv env.sif"}},
  };
  for (const auto& v : verbs) {
    auto o = std::make_shared<ActionOpts>();
    auto* sub = add_command(app, v.name, v.summary, v.examples);
    sub->add_option("image", o->image, "SIF file, sandbox directory, docker://REF or instance://NAME")
        ->required();
    if (std::string(v.name) == "exec")
      sub->add_option("command", o->args, "Command and arguments")->required();
    else
      sub->add_option("args", o->args, "Arguments");
    if (std::string(v.name) == "shell") sub->add_option("-s,--shell", o->shell, "Shell to run");
    add_action_flags(sub, *o);
    sub->prefix_command();
    std::string name = v.name;
    on_run(sub, ctx, [name] { return not_implemented(name); });
  }
}

}  // namespace rbox::cli
