// build::run_build (builder.hpp). Processes:
//   rbox (host user) ── run_in_user_namespace ──> supervisor (fake root) ── fork ──> builder
// The builder installs the fake-root filter on itself and runs the stages and the assembly; the
// supervisor only waits, and afterwards removes the workspace and any partial output (it is in
// the user namespace, so files owned by subordinate ids can be removed too). Ctrl-C reaches the
// builder and its commands through the terminal; SIGTERM/SIGHUP to rbox are forwarded. If rbox
// itself is killed, everything below dies with it (PR_SET_PDEATHSIG) and the next build sweeps
// the workspace. The target is written by rename only, so an existing image survives.
#include "build/builder.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "build/base_cache.hpp"
#include "build/stage.hpp"
#include "deffile/parser.hpp"
#include "image/sif_pack.hpp"
#include "oci/blob_store.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/nss.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace rbox::build {
namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_forward_pid = 0;  // rbox: the supervisor; supervisor: the builder
volatile sig_atomic_t g_signal = 0;

void forward_signal(int sig) {
  g_signal = sig;
  if (g_forward_pid > 0) ::kill(static_cast<pid_t>(g_forward_pid), sig == SIGINT ? SIGINT : SIGTERM);
}

void kill_builder(int sig) {
  g_signal = sig;
  if (g_forward_pid > 0) ::kill(static_cast<pid_t>(g_forward_pid), SIGKILL);
}

void set_handlers(void (*fn)(int)) {
  struct sigaction sa {};
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(s, &sa, nullptr);
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

std::string stage_label(const deffile::Definition& d, size_t i, size_t n) {
  std::string s = "[" + std::to_string(i + 1) + "/" + std::to_string(n) + "]";
  if (!d.stage_name().empty()) s += " stage " + d.stage_name() + ":";
  s += " Bootstrap: " + d.bootstrap();
  if (!d.header_value("from").empty()) s += "  From: " + d.header_value("from");
  return s;
}

std::string stage_copy(const std::string& host_file, const std::string& dir, const std::string& name) {
  try {
    std::string text = fs::read_file(host_file);
    std::string path = dir + "/" + name;
    // The extra newline keeps yum/dnf from treating the bound file as an unmodified one it may
    // replace (Apptainer #5250).
    fs::write_file(path, text + "\n", 0644);
    return path;
  } catch (const Error& e) {
    log::warn(host_file + " is not readable (" + e.message() + "); name resolution in %post may fail");
    return "";
  }
}

// Trees unpacked under one fake-root mode have owners that mean nothing under another.
std::string mode_key(const container::FakerootPlan& plan) {
  switch (plan.mode) {
    case container::FakerootMode::kRealRoot:
      return "real-root";
    case container::FakerootMode::kRootMapped:
      return "root-mapped " + std::to_string(plan.uid) + ":" + std::to_string(plan.gid);
    case container::FakerootMode::kSubuid: {
      std::string k = "subuid";
      for (const auto& l : plan.uid_map)
        k +=
            " u" + std::to_string(l.inside) + "," + std::to_string(l.outside) + "," + std::to_string(l.count);
      for (const auto& l : plan.gid_map)
        k +=
            " g" + std::to_string(l.inside) + "," + std::to_string(l.outside) + "," + std::to_string(l.count);
      return k;
    }
  }
  return "?";
}

struct Prepared {
  deffile::ParseResult parsed;
  std::vector<Agent> agents;
  SectionFilter sections;
  std::vector<container::BindSpec> binds;
  std::string target;  // absolute
};

Prepared prepare(const BuildOptions& o) {
  Prepared p;
  auto args = deffile::make_build_args(o.build_args, o.build_arg_files, o.warn_unused_build_args);
  p.parsed = o.def_text ? deffile::parse(*o.def_text, o.spec, args) : deffile::parse_file(o.spec, args);
  for (const auto& w : p.parsed.warnings) log::warn(w);
  if (p.parsed.stages.empty()) throw Error(o.spec + ": no stages to build");
  std::vector<std::string> names;
  for (const auto& st : p.parsed.stages) {
    p.agents.push_back(check_bootstrap(st));
    for (const auto& f : st.files) {
      auto src = deffile::files_source(f);
      if (src.kind != deffile::FilesSource::Kind::kStage) continue;
      bool found = false;
      for (const auto& n : names) found = found || n == src.stage;
      if (!found)
        throw Error(st.source_name + ":" + std::to_string(st.first_line) + ": %files from " + src.stage +
                    ": no earlier stage has 'Stage: " + src.stage + "'");
    }
    names.push_back(st.stage_name());
  }
  p.sections = SectionFilter::parse(o.section);
  for (const auto& b : o.binds)
    for (auto& spec : container::parse_bind_list(b, "-B")) p.binds.push_back(spec);
  p.target = fs::absolute(o.target);
  if (!fs::is_dir(fs::dirname(p.target)))
    throw Error(o.target + ": the directory " + fs::dirname(p.target) + " does not exist");
  if (o.update) {
    if (!o.sandbox) throw Error("--update works on sandbox directories only; add --sandbox", 2);
    if (!fs::is_dir(p.target))
      throw Error("--update: " + o.target + " is not an existing sandbox directory", 2);
  } else if (fs::exists(p.target) && !o.force) {
    throw Error(o.target + " already exists; add --force to replace it", 2);
  }
  if (!o.sandbox && fs::is_dir(p.target))
    throw Error(o.target + " is a directory; add --sandbox to build a sandbox", 2);
  return p;
}

// The sandbox assembled next to the target: same filesystem, so it can be renamed into place.
std::string make_sandbox_tmp(const std::string& target, const Workspace& ws) {
  std::string t = fs::dirname(target) + "/." + fs::basename(target) + ".rbox-XXXXXX";
  if (!::mkdtemp(t.data())) throw sys_error("create", t);
  ws.record("sandbox_tmp", t);
  ::chmod(t.c_str(), 0755);
  return t;
}

void install_sandbox(const std::string& tmp, const std::string& target) {
  if (fs::exists(target)) {
    std::string aside = fs::dirname(target) + "/." + fs::basename(target) + ".rbox-old-XXXXXX";
    if (!::mkdtemp(aside.data())) throw sys_error("create", aside);
    if (::rename(target.c_str(), (aside + "/old").c_str()) != 0) throw sys_error("move aside", target);
    if (::rename(tmp.c_str(), target.c_str()) != 0) throw sys_error("rename to", target);
    fs::remove_tree(aside);
    return;
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) throw sys_error("rename to", target);
}

uint64_t tree_bytes(const std::string& path) {
  proc::Options opt;
  opt.capture_stdout = true;
  opt.quiet_stderr = true;
  auto r = proc::run({"du", "-sb", path}, opt);
  return r.status == 0 ? std::strtoull(r.output.c_str(), nullptr, 10) : 0;
}

// The builder process: every stage, then the assembly. Returns the exit code.
int build_all(const BuildOptions& o, const Prepared& p, const container::FakerootPlan& plan,
              const container::SeccompProgram& filter, const Workspace& ws) {
  const auto t0 = Clock::now();
  // Apptainer builds with umask 002 (newBuild, Full): %files copies and what %post creates get
  // group write permission. The same here, whatever the caller's umask is.
  ::umask(0002);
  if (int err = container::install_filter(filter); err != 0)
    throw Error(std::string("fake root: cannot install the seccomp filter: ") + std::strerror(err));
  if (const char* bad = container::verify_filter(plan.mode)) throw Error(std::string("fake root: ") + bad);

  BuildContext ctx{o, plan, filter, ws, p.sections, p.binds, {}, {}, {}, p.parsed.stages.back().fullraw};
  try {
    ctx.cache_dir = oci::BlobStore::default_root();
  } catch (const Error&) {
  }
  // Cached base trees are mounted as overlays in this process's own mount namespace (they vanish
  // with it). --keep-failed needs complete trees on disk, so it does without them.
  std::optional<BaseCache> base_cache;
  std::vector<BaseCache::Entry> pins;
  if (!o.keep_failed && !ctx.cache_dir.empty() && !std::getenv("RBOX_BUILD_NO_BASE_CACHE")) {
    if (std::string why = private_mount_namespace(); why.empty()) {
      base_cache.emplace(ctx.cache_dir + "/rootfs", mode_key(plan));
      ctx.base_cache = &*base_cache;
      ctx.pins = &pins;
    } else {
      log::verbose("no cached base trees: " + why);
    }
  }
  ctx.staged_resolv = stage_copy("/etc/resolv.conf", ws.path(), "resolv.conf");
  ctx.staged_hosts = stage_copy("/etc/hosts", ws.path(), "hosts");

  const auto& stages = p.parsed.stages;
  std::vector<std::pair<std::string, std::string>> done;
  std::vector<std::string> report;
  std::optional<OciImageConfig> last_oci;
  std::string last_rootfs;
  for (size_t i = 0; i < stages.size(); ++i) {
    const bool last = i + 1 == stages.size();
    log::info("==> " + stage_label(stages[i], i, stages.size()));
    StagePlan sp{stages[i], p.agents[i], i, stages.size(), "", false, false, done};
    if (last && o.update && !o.force) {
      sp.rootfs = p.target;
      sp.skip_bootstrap = true;
    } else if (last && o.sandbox) {
      sp.rootfs = make_sandbox_tmp(p.target, ws);
    } else {
      sp.rootfs = ws.path() + "/stage" + std::to_string(i + 1);
      fs::mkdir_p(sp.rootfs, 0755);
      sp.overlay_ok = true;
    }
    ws.record("rootfs", sp.rootfs);
    auto t = Clock::now();
    StageResult r = run_stage(ctx, sp);
    std::string line = "stage " + std::to_string(i + 1) + " " +
                       seconds(std::chrono::duration<double>(Clock::now() - t).count()) + " (";
    for (size_t k = 0; k < r.seconds.size(); ++k)
      line += (k ? ", " : "") + r.seconds[k].first + " " + seconds(r.seconds[k].second);
    report.push_back(line + ")");
    std::string name = stages[i].stage_name().empty() ? std::to_string(i + 1) : stages[i].stage_name();
    done.emplace_back(name, sp.rootfs);
    last_oci = r.oci;
    last_rootfs = sp.rootfs;
  }

  auto t = Clock::now();
  uint64_t size = 0;
  if (o.sandbox) {
    if (!(o.update && !o.force)) {
      log::info("==> installing the sandbox " + o.target);
      install_sandbox(last_rootfs, p.target);
    }
    size = tree_bytes(p.target);
  } else {
    log::info("==> packing " + o.target);
    ws.record("target", p.target);
    image::PackSifOptions po;
    po.squash = o.squash;
    // Root-mapped, every file belongs to the one mapped id anyway; with a subuid map or as real
    // root the tree's owners are the image's and are kept.
    po.squash.owners = plan.mode == container::FakerootMode::kRootMapped
                           ? image::SquashOptions::Owners::kAllRoot
                           : image::SquashOptions::Owners::kPreserve;
    po.deffile = p.parsed.stages.back().fullraw;
    if (last_oci) po.oci_config = last_oci->config_json;
    auto r = image::pack_sif(last_rootfs, p.target, po);
    size = r.sif_bytes;
  }
  report.push_back("assemble " + seconds(std::chrono::duration<double>(Clock::now() - t).count()));
  if (base_cache) {
    pins.clear();
    base_cache->evict(4);
  }
  for (const auto& l : report) log::info("    " + l);
  log::info("Build complete: " + o.target + " (" + str::human_bytes(size) + ") in " +
            seconds(std::chrono::duration<double>(Clock::now() - t0).count()));
  return 0;
}

// The supervisor, inside the user namespace: runs the builder and cleans up after it.
int supervise(const BuildOptions& o, const Prepared& p, const container::FakerootPlan& plan,
              const container::SeccompProgram& filter, Workspace& ws) {
  g_forward_pid = 0;
  g_signal = 0;
  set_handlers(kill_builder);
  Workspace::sweep_stale(ws.parent());
  const pid_t me = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw sys_error("fork");
  if (pid == 0) {
    set_handlers(SIG_DFL);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != me) ::_exit(255);
    int rc = 1;
    try {
      rc = build_all(o, p, plan, filter, ws);
    } catch (const Error& e) {
      std::string hint = ws.space_hint();
      log::error(e.message() + (hint.empty() ? "" : "; " + hint));
      rc = e.exit_code() == 0 ? 1 : e.exit_code();
    } catch (const std::exception& e) {
      log::error(e.what());
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  g_forward_pid = pid;
  if (g_signal != 0) ::kill(pid, SIGKILL);  // interrupted before the builder existed
  int ws_status = 0;
  while (::waitpid(pid, &ws_status, 0) < 0) {
    if (errno != EINTR) break;
  }
  g_forward_pid = 0;
  int rc = proc::decode_status(ws_status);
  if (rc == 0) {
    ws.remove();
    return 0;
  }
  if (g_signal != 0 || WIFSIGNALED(ws_status)) {
    int sig = g_signal != 0 ? g_signal : WTERMSIG(ws_status);
    log::error("build interrupted (" + std::string(strsignal(sig)) + "); " +
               (o.update ? "the sandbox may be partly updated" : "nothing was written to " + o.target));
    rc = 128 + sig;
  }
  std::string kept = ws.discard_failed(o.keep_failed);
  if (!kept.empty())
    log::info("kept the failed stage's root filesystem: " + kept +
              " (inspect it with: rbox shell --writable " + kept + ")");
  return rc;
}

}  // namespace

std::optional<std::string> definition_for_uri(const std::string& spec) {
  static const std::pair<const char*, const char*> kSchemes[] = {{"docker://", "docker"},
                                                                 {"oci-archive:", "oci-archive"},
                                                                 {"docker-archive:", "docker-archive"},
                                                                 {"oci:", "oci"}};
  for (const auto& [prefix, agent] : kSchemes)
    if (str::starts_with(spec, prefix))
      return std::string("bootstrap: ") + agent + "\nfrom: " + spec.substr(std::strlen(prefix)) + "\n";
  return std::nullopt;
}

int run_build(const BuildOptions& o) {
  Prepared p = prepare(o);
  nss::User user = nss::current_user();
  container::FakerootOptions fo;
  fo.ignore_subuid = o.ignore_subuid;
  auto plan = container::plan_fakeroot(user.name, ::getuid(), ::getgid(), fo);
  log::info(plan.describe());
  auto filter = container::build_fakeroot_filter(plan.mode);
  if (auto bad = container::self_test_compat_abi(filter, plan.mode); !bad.empty())
    throw Error("fake root: " + bad);
  auto [parent, where] = Workspace::choose_parent(o.tmpdir);
  Workspace ws = Workspace::create(parent, where);
  log::verbose("build space: " + ws.path());

  struct sigaction old[4];
  int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  for (int i = 0; i < 4; ++i) ::sigaction(sigs[i], nullptr, &old[i]);
  g_signal = 0;
  set_handlers(forward_signal);
  int rc;
  try {
    rc = container::run_in_user_namespace(
        plan, [&] { return supervise(o, p, plan, filter, ws); },
        [](pid_t pid) {
          g_forward_pid = pid;
          if (g_signal != 0) ::kill(pid, SIGTERM);  // interrupted while the namespace was being set up
        });
  } catch (...) {
    g_forward_pid = 0;
    for (int i = 0; i < 4; ++i) ::sigaction(sigs[i], &old[i], nullptr);
    ws.remove();
    throw;
  }
  g_forward_pid = 0;
  for (int i = 0; i < 4; ++i) ::sigaction(sigs[i], &old[i], nullptr);
  return rc;
}

}  // namespace rbox::build
