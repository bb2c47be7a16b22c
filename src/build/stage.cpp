// One build stage (stage.hpp). Script sections run as `/bin/sh -ex SCRIPT` (or `-c SHELL`),
// %post and %test through the image's own environment files via runtime/action.sh, exactly
// like `rbox exec`/`rbox test` would, with Apptainer's build variables.
#include "build/stage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>

#include "build/files_copy.hpp"
#include "build/launch.hpp"
#include "deffile/definition.hpp"
#include "image/sif_arch.hpp"
#include "util/embedded.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::build {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* kEnvFile = "/.singularity.d/env/91-environment.sh";
constexpr const char* kLabelsFile = "/.build.labels";
constexpr const char* kAptConf = "etc/apt/apt.conf.d/00rbox-fakeroot";
constexpr size_t kQuietKeep = 40;

std::deque<std::string>& quiet_lines() {
  static std::deque<std::string> lines;
  return lines;
}

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool starts_with_any(const std::string& s, std::initializer_list<const char*> prefixes) {
  for (const char* p : prefixes)
    if (str::starts_with(s, p)) return true;
  return false;
}

// The action driver that sources /.singularity.d/env/*.sh like `rbox exec` does.
std::string action_script() {
  if (const auto* f = embedded::find("action.sh")) return std::string(embedded::contents(*f));
  // Minimal stand-in (the container module's driver is the reference).
  return "for f in /.singularity.d/env/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n"
         "case \"$RBOX_ACTION\" in test) [ -x /.singularity.d/test ] && exec /.singularity.d/test \"$@\"; "
         "exit 0;; "
         "esac\nexec \"$@\"\n";
}

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return env;
}

void run_host_script(const BuildContext& ctx, const StagePlan& st, const std::string& name,
                     const deffile::Script& s) {
  if (s.script.empty() || !ctx.sections.runs(name)) return;
  const std::string path = ctx.ws.path() + "/" + name + "-" + std::to_string(st.index + 1) + ".sh";
  fs::write_file(path, s.script, 0755);
  auto argv = deffile::section_command(name, s, path);
  auto env = current_environment();
  for (const char* k : {"APPTAINER_ENVIRONMENT", "SINGULARITY_ENVIRONMENT"})
    env.push_back(std::string(k) + "=" + kEnvFile);
  for (const char* k : {"APPTAINER_ROOTFS", "SINGULARITY_ROOTFS", "RBOX_ROOTFS"})
    env.push_back(std::string(k) + "=" + st.rootfs);
  log::info("running %" + name + " on the host");
  int rc = run_host_command(argv, env, line_printer());
  ::unlink(path.c_str());
  if (rc != 0) {
    flush_quiet_lines();
    throw Error("%" + name + " failed (exit " + std::to_string(rc) + ")");
  }
}

std::vector<LaunchBind> session_binds(const BuildContext& ctx, const RootFs& root) {
  std::vector<LaunchBind> binds;
  if (!ctx.staged_resolv.empty()) binds.push_back({ctx.staged_resolv, "/etc/resolv.conf", false, true});
  if (!ctx.staged_hosts.empty()) binds.push_back({ctx.staged_hosts, "/etc/hosts", false, true});
  for (const auto& b : ctx.binds) {
    std::string src = fs::absolute(b.source);
    if (!fs::exists(src)) throw Error("-B " + b.origin + ": " + src + " does not exist on the host");
    if (!root.exists(b.destination) && !root.stat(b.destination, true)) {
      if (fs::is_dir(src)) {
        root.mkdirs(b.destination, 0755);
      } else {
        root.mkdirs(RootFs::split(b.destination).first, 0755);
        root.write_file(b.destination, "", 0644);
      }
    }
    binds.push_back({src, b.destination, b.read_only, false});
  }
  return binds;
}

void copy_files(const BuildContext& ctx, const StagePlan& st, const RootFs& root, bool from_stages) {
  if (!ctx.sections.runs("files")) return;
  for (const auto& section : st.def.files) {
    auto src = deffile::files_source(section);
    if (src.kind == deffile::FilesSource::Kind::kIgnored) {
      if (from_stages)
        log::warn("%files " + section.args + ": not 'from STAGE'; section ignored (as Apptainer does)");
      continue;
    }
    if ((src.kind == deffile::FilesSource::Kind::kStage) != from_stages) continue;
    if (from_stages) {
      std::string from_root;
      for (const auto& [n, path] : st.earlier)
        if (n == src.stage) from_root = path;
      if (from_root.empty())
        throw Error("%files from " + src.stage + ": no earlier stage is named " + src.stage);
      RootFs from(from_root);
      for (const auto& f : section.files) {
        if (f.source.empty()) continue;
        log::info("copying " + f.source + " from stage " + src.stage +
                  (f.destination.empty() ? "" : " to " + f.destination));
        copy_from_stage(f.source, f.destination, from, root);
      }
    } else {
      for (const auto& f : section.files) {
        if (f.source.empty()) continue;
        log::info("copying " + f.source + (f.destination.empty() ? "" : " to " + f.destination));
        copy_from_host(f.source, f.destination, root);
      }
    }
  }
}

int run_in_image(const BuildContext& ctx, const RootFs& root, const std::string& action,
                 const std::vector<std::string>& command, std::vector<std::string> env, bool writable) {
  LaunchSpec s;
  s.rootfs = root.path();
  s.argv = {"/bin/sh", "-c", action_script(), "/.singularity.d/actions/" + action};
  s.argv.insert(s.argv.end(), command.begin(), command.end());
  env.push_back("RBOX_ACTION=" + action);
  s.env = std::move(env);
  s.writable = writable;
  s.binds = session_binds(ctx, root);
  s.mode = ctx.plan.mode;
  s.filter = &ctx.filter;
  s.on_line = line_printer();
  if (!root.is_file("bin/sh") && !root.stat("bin/sh", true))
    throw Error("the image has no /bin/sh, which %" + std::string(action == "exec" ? "post" : "test") +
                " needs; add a shell (e.g. busybox) with %files first");
  return launch(s);
}

void run_post(const BuildContext& ctx, const StagePlan& st, const RootFs& root, const std::string& script) {
  // apt drops to its _apt user and checks the result; with a single mapped id that cannot work,
  // so the build tells apt to stay root (FAKEROOT.md §3). Removed again afterwards.
  bool apt = ctx.plan.mode != container::FakerootMode::kRealRoot && root.is_dir("etc/apt/apt.conf.d") &&
             !root.exists(kAptConf);
  if (apt) root.write_file(kAptConf, "APT::Sandbox::User \"root\";\n", 0644);
  root.write_file(".post.script", script, 0755);
  deffile::Script s = st.def.post;
  s.script = script;
  auto cmd = deffile::section_command("post", s, "/.post.script");
  log::info("running %post as " +
            std::string(ctx.plan.mode == container::FakerootMode::kRealRoot ? "root" : "fake root"));
  int rc = -1;
  try {
    rc = run_in_image(ctx, root, "exec", cmd, post_environment(root.path(), current_environment()), true);
  } catch (...) {
    root.remove(".post.script");
    if (apt) root.remove(kAptConf);
    throw;
  }
  root.remove(".post.script");
  if (apt) root.remove(kAptConf);
  if (rc != 0) {
    flush_quiet_lines();
    throw Error("%post failed (exit " + std::to_string(rc) + ")");
  }
}

void fix_perms(const RootFs& root, const std::string& rel) {
  auto st = root.stat(rel);
  if (!st || S_ISLNK(st->st_mode)) return;
  mode_t want = st->st_mode | S_IRUSR | S_IWUSR | (S_ISDIR(st->st_mode) ? S_IXUSR : 0);
  if (want != st->st_mode) {
    UniqueFd p = root.open(rel, O_PATH | O_NOFOLLOW);
    ::chmod(("/proc/self/fd/" + std::to_string(p.get())).c_str(), want & 07777);
  }
  if (S_ISDIR(st->st_mode))
    for (const auto& n : root.list(rel)) fix_perms(root, rel.empty() ? n : rel + "/" + n);
}

}  // namespace

std::function<void(std::string_view)> line_printer() {
  return [](std::string_view line) {
    // Progress meters redraw one line with carriage returns; show what a terminal would.
    if (size_t cr = line.find_last_of('\r'); cr != std::string_view::npos) {
      std::string_view tail = line.substr(cr + 1);
      line = tail.empty() ? line.substr(0, cr) : tail;
      if (size_t cr2 = line.find_last_of('\r'); cr2 != std::string_view::npos) line = line.substr(cr2 + 1);
    }
    if (log::level() == log::Level::kQuiet) {
      auto& q = quiet_lines();
      q.emplace_back(line);
      if (q.size() > kQuietKeep) q.pop_front();
      return;
    }
    std::string out = "  | ";
    out.append(line);
    out += '\n';
    ssize_t rc = ::write(STDERR_FILENO, out.data(), out.size());
    (void)rc;
  };
}

void flush_quiet_lines() {
  auto& q = quiet_lines();
  for (const auto& l : q) {
    std::string out = "  | " + l + "\n";
    ssize_t rc = ::write(STDERR_FILENO, out.data(), out.size());
    (void)rc;
  }
  q.clear();
}

std::vector<std::string> post_environment(const std::string& rootfs,
                                          const std::vector<std::string>& host_env) {
  std::vector<std::string> env = {std::string("PATH=") + kDefaultPath, "HOME=/root", "LANG=C", "PWD=/"};
  for (const auto& kv : host_env) {
    std::string key = kv.substr(0, kv.find('='));
    std::string lower = str::lower(key);
    if (key == "TERM" || lower == "http_proxy" || lower == "https_proxy" || lower == "ftp_proxy" ||
        lower == "no_proxy" || lower == "all_proxy")
      env.push_back(kv);
  }
  for (const char* p : {"APPTAINER_", "SINGULARITY_"}) {
    env.push_back(std::string(p) + "ENVIRONMENT=" + kEnvFile);
    env.push_back(std::string(p) + "LABELS=" + kLabelsFile);
    env.push_back(std::string(p) + "CONTAINER=" + rootfs);
    env.push_back(std::string(p) + "NAME=" + fs::basename(rootfs));
  }
  env.push_back("APPTAINER_COMMAND=exec");
  return env;
}

std::vector<std::string> test_environment(const std::string& rootfs,
                                          const std::vector<std::string>& host_env) {
  std::vector<std::string> env = {std::string("PATH=") + kDefaultPath, "HOME=/root", "PWD=/"};
  for (const auto& kv : host_env) {
    std::string key = kv.substr(0, kv.find('='));
    if (key == "PATH" || key == "HOME" || key == "PWD" || key == "LD_LIBRARY_PATH" || key == "RBOX_ACTION" ||
        starts_with_any(key, {"APPTAINER_", "SINGULARITY_", "APPTAINERENV_", "SINGULARITYENV_", "RBOX_ENV_"}))
      continue;
    env.push_back(kv);
  }
  for (const char* p : {"APPTAINER_", "SINGULARITY_"}) {
    env.push_back(std::string(p) + "CONTAINER=" + rootfs);
    env.push_back(std::string(p) + "NAME=" + fs::basename(rootfs));
  }
  env.push_back("APPTAINER_COMMAND=test");
  return env;
}

StageResult run_stage(const BuildContext& ctx, const StagePlan& st) {
  StageResult res;
  const auto& def = st.def;
  auto step = [&](const char* name, Clock::time_point t) { res.seconds.emplace_back(name, since(t)); };

  auto t = Clock::now();
  if (!def.pre.script.empty() && ctx.sections.runs("pre")) {
    log::warn("%pre is deprecated (Apptainer too runs it on the host before the bootstrap)");
    run_host_script(ctx, st, "pre", def.pre);
    step("pre", t);
  }

  RootFs root(st.rootfs);
  t = Clock::now();
  if (st.skip_bootstrap) {
    log::info("updating the existing sandbox " + ctx.opts.target + " (no bootstrap)");
    write_base_environment(root, false);
  } else {
    AgentContext actx{def, root, ctx.plan, &ctx.filter, ctx.opts.authfile, ctx.cache_dir, line_printer(), {}};
    if (st.overlay_ok && ctx.base_cache)
      actx.overlay = OverlaySlot{ctx.base_cache, st.rootfs + ".upper", st.rootfs + ".work", ctx.pins};
    auto r = bootstrap(actx, st.agent);
    res.oci = r.oci;
    if (ctx.opts.fix_perms) {
      log::warn("--fix-perms: giving the owner read/write (and search) permission on every file");
      fix_perms(root, "");
    }
  }
  step("bootstrap", t);

  t = Clock::now();
  std::string app_post = write_apps(
      root, def, [&](const std::string& src, const std::string& dst) { copy_from_host(src, dst, root); });
  copy_files(ctx, st, root, true);
  run_host_script(ctx, st, "setup", def.setup);
  copy_files(ctx, st, root, false);
  step("files+setup", t);

  std::string post = def.post.script + app_post;
  if (!post.empty() && ctx.sections.runs("post")) {
    t = Clock::now();
    run_post(ctx, st, root, post);
    step("post", t);
  }

  t = Clock::now();
  BuildInfo info;
  info.arch = image::host_goarch();
  info.force = ctx.opts.force;
  info.update = ctx.opts.update;
  if (res.oci) {
    info.base_name = res.oci->base_name;
    info.base_digest = res.oci->base_digest;
  }
  write_metadata(root, def, ctx.fullraw, ctx.sections, info);
  step("metadata", t);

  if (!ctx.opts.notest && ctx.sections.runs("test") && !def.test.script.empty()) {
    t = Clock::now();
    log::info("running %test");
    int rc = run_in_image(ctx, root, "test", {}, test_environment(root.path(), current_environment()), false);
    if (rc != 0) {
      flush_quiet_lines();
      throw Error("%test failed (exit " + std::to_string(rc) + "); use --notest to build without it");
    }
    step("test", t);
  }
  return res;
}

}  // namespace rbox::build
