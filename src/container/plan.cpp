// Implementation of make_plan (container/plan.hpp): Apptainer's default mounts, option
// precedence and runtime variables, turned into plain data. Host access only through the
// HostFacts callbacks, so every rule here is unit-tested without root.
#include "container/plan.hpp"

#include <algorithm>

#include "container/bind_spec.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::container {

std::string_view action_name(Action a) {
  switch (a) {
    case Action::kExec:
      return "exec";
    case Action::kRun:
      return "run";
    case Action::kShell:
      return "shell";
    case Action::kTest:
      return "test";
  }
  return "exec";
}

std::string normalize_path(const std::string& path) {
  std::vector<std::string> parts;
  for (const auto& p : str::split(path, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  return "/" + str::join(parts, "/");
}

bool path_within(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && str::starts_with(path, dir) && path[dir.size()] == '/');
}

namespace {

std::string env_value(const HostFacts& h, const std::string& name) {
  std::string prefix = name + "=";
  for (const auto& e : h.environ)
    if (str::starts_with(e, prefix)) return e.substr(prefix.size());
  return "";
}

std::string absolute_from(const HostFacts& h, const std::string& p) {
  if (!p.empty() && p[0] == '/') return normalize_path(p);
  return normalize_path(h.cwd + "/" + p);
}

// --no-mount items: proc,sys,dev,devpts,home,tmp,hostfs,cwd,bind-paths or absolute targets.
struct NoMount {
  std::vector<std::string> items;
  bool has(const std::string& w) const { return std::find(items.begin(), items.end(), w) != items.end(); }
};

// cwd is not bound when it lies in a system directory that the image provides itself.
bool system_path(const std::string& p) {
  static const char* const dirs[] = {"/bin",    "/boot", "/dev", "/etc",  "/lib", "/lib32", "/lib64",
                                     "/libx32", "/proc", "/run", "/sbin", "/sys", "/usr"};
  if (p == "/") return true;
  return std::any_of(std::begin(dirs), std::end(dirs), [&](const char* d) { return path_within(p, d); });
}

}  // namespace

Plan make_plan(const LaunchOptions& in, const ImageInfo& image, const HostFacts& host) {
  Plan plan;
  LaunchOptions o = in;
  if (o.containall) {
    o.contain = o.pid = o.ipc = o.cleanenv = true;
  }
  plan.action = o.action;
  plan.args = o.args;
  plan.app = o.app;

  // ---- ids and namespaces
  plan.ids.host_uid = host.uid;
  plan.ids.host_gid = host.gid;
  plan.ids.fakeroot = o.fakeroot;
  plan.ids.uid = o.fakeroot ? 0 : host.uid;
  plan.ids.gid = o.fakeroot ? 0 : host.gid;
  if (o.fakeroot && !o.ignore_subuid && host.have_newidmap && host.subuid && host.subgid && host.uid != 0) {
    plan.ids.subuid = host.subuid;
    plan.ids.subgid = host.subgid;
  }
  plan.ns.pid = o.pid;
  plan.ns.ipc = o.ipc;
  plan.ns.net = o.net;
  plan.ns.uts = o.uts || !o.hostname.empty();
  plan.ns.hostname = o.hostname;
  plan.ns.init = !o.no_init;

  // ---- root
  plan.root.image = image;
  if (o.writable && image.kind != ImageKind::kSandbox)
    throw Error(
        "--writable needs a sandbox directory image; for a SIF use --writable-tmpfs or --overlay DIR");
  if (o.writable && o.writable_tmpfs) {
    plan.warnings.push_back("--writable-tmpfs is ignored with --writable");
    o.writable_tmpfs = false;
  }
  if (o.writable && !o.overlays.empty()) throw Error("--overlay cannot be combined with --writable");
  plan.root.writable_sandbox = o.writable;
  plan.root.writable_tmpfs = o.writable_tmpfs;
  if (o.tmpfs_size_mib == 0) throw Error("--tmpfs-size must be at least 1 (MiB)");
  plan.root.tmpfs_size_mib = o.tmpfs_size_mib;
  plan.root.unsquash = o.unsquash && image.kind == ImageKind::kSif;
  int writable_overlays = 0;
  for (const auto& spec : o.overlays) {
    std::string path = spec;
    bool ro = false;
    if (str::ends_with(spec, ":ro")) {
      path = spec.substr(0, spec.size() - 3);
      ro = true;
    } else if (str::ends_with(spec, ":rw")) {
      path = spec.substr(0, spec.size() - 3);
    }
    auto real = host.realpath(absolute_from(host, path));
    if (!real) throw Error("--overlay " + spec + ": " + path + " does not exist; create the directory first");
    if (!host.is_dir(*real))
      throw Error("--overlay " + spec + ": only directories are supported as overlays (ext3 images are not)");
    if (!ro && ++writable_overlays > 1)
      throw Error("--overlay: only one writable overlay directory is allowed");
    plan.root.overlays.emplace_back(*real, ro);
  }
  if (writable_overlays && o.writable_tmpfs) {
    plan.warnings.push_back("--writable-tmpfs is ignored with a writable --overlay");
    plan.root.writable_tmpfs = false;
  }

  NoMount no;
  for (const auto& item : o.no_mount)
    for (const auto& w : str::split(item, ',')) no.items.push_back(str::trim(w));

  // ---- home
  std::string home_src = host.home, home_dst = o.fakeroot ? "/root" : host.home;
  if (!o.home.empty()) {
    auto parts = str::split(o.home, ':');
    if (parts.size() > 2 || parts[0].empty()) throw Error("--home '" + o.home + "': expected SRC[:DST]");
    home_src = absolute_from(host, parts[0]);
    home_dst = parts.size() == 2 ? parts[1] : home_src;
    if (home_dst.empty() || home_dst[0] != '/')
      throw Error("--home '" + o.home + "': the destination must be an absolute path");
  }
  home_dst = normalize_path(home_dst);
  plan.home = home_dst;

  auto& m = plan.mounts;
  auto add = [&](MountEntry e) {
    if (no.has(e.target)) return;
    m.push_back(std::move(e));
  };

  // ---- system mounts
  if (!no.has("proc")) add({MountKind::kProc, "/proc", "/proc", false, false, false, 0, "proc"});
  if (!no.has("sys")) add({MountKind::kSys, "/sys", "/sys", false, false, false, 0, "sys"});
  if (!no.has("dev"))
    add({o.contain ? MountKind::kDevMinimal : MountKind::kDev, "/dev", "/dev", false, false, false, 0,
         "dev"});
  if (!no.has("tmp")) {
    for (const char* t : {"/tmp", "/var/tmp"}) {
      std::string target = t;
      if (o.contain) {
        if (!o.workdir.empty()) {
          std::string sub = target == "/tmp" ? "tmp" : "var_tmp";
          add({MountKind::kBind, absolute_from(host, o.workdir) + "/" + sub, target, false, false, false, 0,
               "--workdir"});
        } else {
          add({MountKind::kSessionDir, "", target, false, false, false, 01777, "contain"});
        }
        continue;
      }
      auto real = host.realpath(target);
      if (!real) continue;
      if (target == "/var/tmp" && *real == host.realpath("/tmp").value_or("")) continue;
      add({MountKind::kBind, *real, target, false, true, false, 0, "tmp"});
    }
  }
  if (!no.has("bind-paths")) {
    for (const char* f : {"/etc/localtime", "/etc/hosts"}) {
      auto real = host.realpath(f);
      if (real) add({MountKind::kBind, *real, f, true, true, true, 0, "bind path"});
    }
  }
  if (auto real = host.realpath("/etc/resolv.conf"))
    add({MountKind::kBind, *real, "/etc/resolv.conf", true, true, true, 0, "resolv.conf"});
  if (plan.ns.uts && !plan.ns.hostname.empty())
    add({MountKind::kFile, plan.ns.hostname + "\n", "/etc/hostname", true, true, true, 0, "--hostname"});
  // The image's own root entry serves uid 0 (real or fake root); others get a line added.
  if (plan.ids.uid != 0) {
    add({MountKind::kPasswd, "", "/etc/passwd", true, true, true, 0, "passwd"});
    add({MountKind::kGroup, "", "/etc/group", true, true, true, 0, "group"});
  }
  plan.user = PasswdEntry{host.user_name, plan.ids.uid, plan.ids.gid, host.gecos, home_dst, host.shell};
  plan.groups = host.groups;

  // ---- home
  if (!o.no_home && !no.has("home") && home_dst != "/") {
    if (o.contain) {
      if (!o.workdir.empty())
        add({MountKind::kBind, absolute_from(host, o.workdir) + "/home", home_dst, false, false, false, 0,
             "--workdir"});
      else
        add({MountKind::kSessionDir, "", home_dst, false, false, false, 0700, "contain"});
    } else {
      auto real = host.realpath(home_src);
      if (!real) {
        if (!o.home.empty()) throw Error("--home " + o.home + ": " + home_src + " does not exist");
        plan.warnings.push_back("home directory " + home_src + " does not exist; not binding it");
      } else {
        add({MountKind::kBind, *real, home_dst, false, false, false, 0, "home"});
      }
    }
  }

  // ---- user binds: environment first, then the command line
  std::vector<BindSpec> binds;
  for (const char* var :
       {"SINGULARITY_BINDPATH", "SINGULARITY_BIND", "APPTAINER_BINDPATH", "APPTAINER_BIND", "RBOX_BIND"}) {
    std::string v = env_value(host, var);
    if (v.empty() || no.has("bind-paths")) continue;
    for (auto& b : parse_bind_list(v, std::string("$") + var)) binds.push_back(std::move(b));
  }
  for (const auto& v : o.binds)
    for (auto& b : parse_bind_list(v)) binds.push_back(std::move(b));
  for (const auto& v : o.mounts) binds.push_back(parse_mount_spec(v));
  std::vector<std::string> bind_dests;
  for (const auto& b : binds) {
    auto real = host.realpath(absolute_from(host, b.source));
    if (!real)
      throw Error("bind " + b.origin + ": source " + b.source +
                  " does not exist on the host; create it or fix the path");
    std::string dst = normalize_path(b.destination);
    add({MountKind::kBind, *real, dst, b.read_only, false, !host.is_dir(*real), 0, "--bind " + b.origin});
    bind_dests.push_back(dst);
  }

  // ---- working directory
  if (!o.pwd.empty()) {
    plan.cwd = normalize_path(o.pwd[0] == '/' ? o.pwd : home_dst + "/" + o.pwd);
    plan.cwd_required = true;
  } else if (o.contain) {
    plan.cwd = home_dst;
  } else {
    plan.cwd = host.cwd.empty() ? home_dst : host.cwd;
  }
  if (!o.contain && !no.has("cwd") && !host.cwd_real.empty() && !system_path(host.cwd_real)) {
    // Already visible through a bind of the same host directory at the same place?
    bool visible = false;
    for (const auto& e : plan.mounts) {
      if (e.kind != MountKind::kBind || e.file) continue;
      if (path_within(host.cwd_real, e.source) && e.source == e.target && host.cwd == host.cwd_real)
        visible = true;
      if (e.target == host.cwd) visible = true;  // the user bound something there
    }
    if (!visible && host.cwd == normalize_path(host.cwd))
      add({MountKind::kBind, host.cwd_real, host.cwd, false, true, false, 0, "cwd"});
  }

  // ---- environment
  EnvInputs env;
  env.host_environ = host.environ;
  env.cleanenv = o.cleanenv;
  for (const auto& f : o.env_files) {
    std::string path = absolute_from(host, f);
    for (auto& v : evaluate_env_file(f, host.read_file(path), host.environ)) env.env_file_vars.push_back(v);
  }
  for (const auto& e : o.envs) env.cli_envs.push_back(parse_env_assignment(e, "--env"));
  env.home = home_dst;
  env.pwd = plan.cwd;
  env.appname = o.app;
  env.shell = o.shell;
  env.no_eval = o.no_eval;
  std::string name = image.shown.substr(image.shown.find_last_of('/') + 1);
  for (const char* p : {"APPTAINER_", "SINGULARITY_"}) {
    std::string pre = p;
    env.runtime.push_back({pre + "CONTAINER", image.shown});
    env.runtime.push_back({pre + "NAME", name});
    env.runtime.push_back({pre + "COMMAND", std::string(action_name(o.action))});
    if (!bind_dests.empty()) env.runtime.push_back({pre + "BIND", str::join(bind_dests, ",")});
    if (!o.app.empty()) env.runtime.push_back({pre + "APPNAME", o.app});
    if (!o.shell.empty()) env.runtime.push_back({pre + "SHELL", o.shell});
  }
  env.runtime.push_back({"RBOX_CONTAINER", image.shown});
  env.runtime.push_back({"RBOX_NAME", name});
  env.runtime.push_back({"RBOX_COMMAND", std::string(action_name(o.action))});
  plan.env = plan_environment(env);
  for (const auto& w : plan.env.warnings) plan.warnings.push_back(w);
  return plan;
}

}  // namespace rbox::container
