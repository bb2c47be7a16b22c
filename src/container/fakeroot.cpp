// Fake root: id-map choice, user-namespace entry and the no-op seccomp filter (fakeroot.hpp).
// The rule set follows charliecloud's ch-image --force=seccomp: syscall names resolved per ABI
// (names an ABI lacks, such as chown32 on x86_64, are skipped), each answered with errno 0.
// Code marked "child side" runs after fork and uses only async-signal-safe calls.
#include "container/fakeroot.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace rbox::container {
namespace {

constexpr uint32_t kUnmappedProbeId = 4000123;  // outside every map rbox writes
constexpr long kX32Bit = 0x40000000L;           // __X32_SYSCALL_BIT
constexpr long kX32KexecLoad = 528;             // x32 entry (arch/x86/entry/syscalls/syscall_64.tbl)
// i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl), used by the compat self-test.
constexpr long kI386Fchown32 = 207;
constexpr long kI386KexecLoad = 283;

const char* const kOwnerAndIdentity[] = {
    "chown",      "fchown",     "lchown",    "fchownat",    "chown32",     "fchown32", "lchown32",
    "setuid",     "setgid",     "setuid32",  "setgid32",    "setreuid",    "setregid", "setreuid32",
    "setregid32", "setresuid",  "setresgid", "setresuid32", "setresgid32", "setfsuid", "setfsgid",
    "setfsuid32", "setfsgid32", "setgroups", "setgroups32", "capset",
};

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string tool_path(const std::string& name) {
  std::string p = proc::which(name);
  if (p.empty() && ::access(("/usr/bin/" + name).c_str(), X_OK) == 0) p = "/usr/bin/" + name;
  return p;
}

// Writes a whole string to an existing /proc file (no O_CREAT: these files always exist).
void write_proc(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open", path);
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
    throw sys_error("write", path);
}

size_t read_full(int fd, void* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

void write_all(int fd, const void* buf, size_t n) noexcept {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::write(fd, static_cast<const char*>(buf) + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    done += static_cast<size_t>(r);
  }
}

long raw_i386_syscall3(long nr, long a, long b, long c) {
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return ret;
}

}  // namespace

void install_fakeroot_filter() {
  static const SeccompProgram prog = build_fakeroot_filter(FakerootMode::kRootMapped);
  if (int err = install_filter(prog); err != 0)
    throw Error(std::string("fakeroot seccomp filter: install: ") + std::strerror(err));
  if (const char* bad = verify_filter(FakerootMode::kRootMapped))
    throw Error(std::string("fakeroot seccomp filter: ") + bad);
}

bool fakeroot_filter_active() {
  // Without the filter fchown on a bad descriptor fails with EBADF; with it, it "succeeds".
  int saved = errno;
  bool on = ::syscall(SYS_fchown, -1, 0, 0) == 0;
  errno = saved;
  return on;
}

std::optional<SubidRange> find_subid_range(std::string_view text, std::string_view user_name, uint32_t id) {
  std::optional<SubidRange> best;
  std::string id_str = std::to_string(id);
  for (const auto& raw : str::split_lines(text)) {
    std::string line = str::trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == '!') continue;
    auto f = str::split(line, ':');
    if (f.size() != 3) continue;
    if (f[0] != user_name && f[0] != id_str) continue;
    auto start = parse_u64(f[1]), count = parse_u64(f[2]);
    if (!start || !count || *count == 0) continue;
    SubidRange r{*start, *count};
    if (!best || (best->count != kMinSubidCount && (r.count == kMinSubidCount || r.count > best->count)))
      best = r;
  }
  return best;
}

uint64_t FakerootPlan::mapped_count() const {
  uint64_t n = 0;
  for (const auto& l : uid_map) n += l.count;
  return n;
}

std::string FakerootPlan::describe() const {
  switch (mode) {
    case FakerootMode::kRealRoot:
      return "fake root: not needed, running as root (no user namespace)";
    case FakerootMode::kRootMapped:
      return "fake root: root-mapped user namespace (0 → " + std::to_string(uid) +
             ") with the seccomp no-op filter" + (reason.empty() ? "" : " (" + reason + ")");
    case FakerootMode::kSubuid: {
      std::string s = "fake root: /etc/subuid map (0 → " + std::to_string(uid);
      if (uid_map.size() > 1) {
        const auto& l = uid_map[1];
        s += ", 1-" + std::to_string(l.count) + " → " + std::to_string(l.outside) + "-" +
             std::to_string(static_cast<uint64_t>(l.outside) + l.count - 1);
      }
      return s + ") with the seccomp device-node filter";
    }
  }
  return "fake root";
}

FakerootPlan plan_fakeroot(const std::string& user_name, uid_t uid, gid_t gid, const FakerootOptions& opts) {
  FakerootPlan p;
  p.uid = uid;
  p.gid = gid;
  if (uid == 0) {
    p.mode = FakerootMode::kRealRoot;
    return p;
  }
  p.mode = FakerootMode::kRootMapped;
  p.uid_map = {{0, static_cast<uint32_t>(uid), 1}};
  p.gid_map = {{0, static_cast<uint32_t>(gid), 1}};
  if (opts.ignore_subuid) {
    p.reason = "--ignore-subuid given";
    return p;
  }
  auto read_or_empty = [](const std::string& path) {
    try {
      return fs::read_file(path);
    } catch (const Error&) {
      return std::string();
    }
  };
  auto su = find_subid_range(read_or_empty(opts.subuid_file), user_name, uid);
  auto sg = find_subid_range(read_or_empty(opts.subgid_file), user_name, gid);
  if (!su || !sg) {
    p.reason = "no " + std::string(!su ? opts.subuid_file : opts.subgid_file) + " range for " + user_name;
    return p;
  }
  if (su->count < kMinSubidCount || sg->count < kMinSubidCount) {
    p.reason = "the subordinate id range of " + user_name + " is smaller than 65536";
    return p;
  }
  std::string nu = tool_path("newuidmap"), ng = tool_path("newgidmap");
  if (nu.empty() || ng.empty()) {
    p.reason = "newuidmap/newgidmap not installed (Debian package uidmap)";
    return p;
  }
  // Keep every inside id a valid 32-bit id below the overflow id.
  auto cap = [](uint64_t c) { return static_cast<uint32_t>(std::min<uint64_t>(c, 0xFFFF0000ULL)); };
  p.mode = FakerootMode::kSubuid;
  p.newuidmap = nu;
  p.newgidmap = ng;
  p.uid_map.push_back({1, static_cast<uint32_t>(su->start), cap(su->count)});
  p.gid_map.push_back({1, static_cast<uint32_t>(sg->start), cap(sg->count)});
  return p;
}

void apply_id_maps(pid_t child, const FakerootPlan& plan) {
  if (plan.mode == FakerootMode::kRealRoot) return;
  const std::string proc_dir = "/proc/" + std::to_string(child);
  if (plan.mode == FakerootMode::kRootMapped) {
    write_proc(proc_dir + "/uid_map", "0 " + std::to_string(plan.uid) + " 1\n");
    write_proc(proc_dir + "/setgroups", "deny");
    write_proc(proc_dir + "/gid_map", "0 " + std::to_string(plan.gid) + " 1\n");
    return;
  }
  auto run_tool = [&](const std::string& tool, const std::vector<IdMapLine>& map) {
    std::vector<std::string> argv{tool, std::to_string(child)};
    for (const auto& l : map) {
      argv.push_back(std::to_string(l.inside));
      argv.push_back(std::to_string(l.outside));
      argv.push_back(std::to_string(l.count));
    }
    auto r = proc::run(argv);
    if (r.status != 0)
      throw Error(tool + " failed (exit " + std::to_string(r.status) +
                  "); check /etc/subuid and /etc/subgid, or use --ignore-subuid");
  };
  run_tool(plan.newuidmap, plan.uid_map);
  run_tool(plan.newgidmap, plan.gid_map);
}

SeccompProgram build_fakeroot_filter(FakerootMode mode) {
  SeccompProgram prog;
  if (mode == FakerootMode::kRealRoot) return prog;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) throw Error("seccomp_init failed");
  struct Guard {
    scmp_filter_ctx c;
    ~Guard() { seccomp_release(c); }
  } guard{ctx};
  auto check = [](int rc, const std::string& what) {
    if (rc < 0) throw Error("fakeroot seccomp filter: " + what + ": " + std::strerror(-rc));
  };
  // Processes may switch ABI (an x86_64 CPU runs i386 code, execve can load either), so the
  // filter covers every ABI the kernel may accept from this process; unknown ones pass.
  check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW), "bad-arch action");
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    int rc = seccomp_arch_add(ctx, arch);
    if (rc < 0 && rc != -EEXIST) check(rc, "add architecture");
  }
  const auto noop = SCMP_ACT_ERRNO(0);
  auto add = [&](const char* name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return;  // unknown to libseccomp on every ABI
    int rc = seccomp_rule_add(ctx, noop, nr, 0);
    if (rc < 0 && rc != -EDOM && rc != -EFAULT) check(rc, std::string("rule for ") + name);
  };
  add("kexec_load");
  if (mode == FakerootMode::kRootMapped)
    for (const char* name : kOwnerAndIdentity) add(name);
  // Device nodes cannot be created in a user namespace (mknod(2): EPERM without CAP_MKNOD in the
  // initial namespace); FIFOs and sockets are created for real.
  for (scmp_datum_t type : {scmp_datum_t{S_IFCHR}, scmp_datum_t{S_IFBLK}}) {
    check(seccomp_rule_add(ctx, noop, SCMP_SYS(mknod), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, type)),
          "mknod");
    check(seccomp_rule_add(ctx, noop, SCMP_SYS(mknodat), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, type)),
          "mknodat");
  }
  // libseccomp 2.5 exports to an fd only; a memfd keeps it off the filesystem.
  UniqueFd mem(::memfd_create("rbox-seccomp", MFD_CLOEXEC));
  if (!mem) throw sys_error("memfd_create");
  check(seccomp_export_bpf(ctx, mem.get()), "export");
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
    throw Error("fakeroot seccomp filter: exported program has an odd size");
  prog.insns.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), prog.insns.data(), static_cast<size_t>(size), 0) != size)
    throw sys_error("read", "seccomp program");
  return prog;
}

int install_filter(const SeccompProgram& prog) noexcept {
  if (prog.empty()) return 0;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  sock_fprog fp{};
  fp.len = static_cast<unsigned short>(prog.insns.size());
  fp.filter = const_cast<sock_filter*>(prog.insns.data());
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0) return errno;
  return 0;
}

const char* verify_filter(FakerootMode mode) noexcept {
  if (mode == FakerootMode::kRealRoot) return nullptr;
  // kexec_load(0, 0, NULL, 0) fails with EPERM in any user namespace; the filter makes it 0.
  if (::syscall(SYS_kexec_load, 0, 0, nullptr, 0) != 0) return "the seccomp filter is not active";
  // Same probe through the x32 entry: libseccomp routes numbers with bit 30 to its x32 table.
  if (::syscall(kX32Bit | kX32KexecLoad, 0, 0, nullptr, 0) != 0)
    return "the seccomp filter does not cover the x32 ABI";
  if (mode != FakerootMode::kRootMapped) return nullptr;
  int fd = ::memfd_create("rbox-verify", MFD_CLOEXEC);
  if (fd < 0) return "memfd_create failed while checking the seccomp filter";
  struct stat before {
  }, after{};
  const char* err = nullptr;
  if (::fstat(fd, &before) != 0) {
    err = "fstat failed while checking the seccomp filter";
  } else if (::fchown(fd, kUnmappedProbeId, kUnmappedProbeId) != 0) {
    err = "chown to an unmapped id still fails under the seccomp filter";
  } else if (::fstat(fd, &after) != 0 || after.st_uid != before.st_uid || after.st_gid != before.st_gid) {
    err = "chown under the seccomp filter changed the owner";
  } else if (::syscall(kX32Bit | SYS_fchown, fd, kUnmappedProbeId, kUnmappedProbeId) != 0) {
    err = "the seccomp filter does not cover x32 fchown";
  }
  ::close(fd);
  return err;
}

std::string self_test_compat_abi(const SeccompProgram& prog, FakerootMode mode) {
  if (prog.empty()) return "";
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) throw sys_error("fork");
  if (pid == 0) {
    rd.reset();
    char code = 'x';
    if (install_filter(prog) != 0) {
      code = 'i';
    } else if (verify_filter(mode) != nullptr) {
      code = 'v';
    } else {
      // Report that the native checks passed before trying int 0x80, which kills the child
      // when the kernel has no ia32 emulation; the parent then treats i386 as unavailable.
      code = 'n';
      write_all(wr.get(), &code, 1);
      bool ok = raw_i386_syscall3(kI386KexecLoad, 0, 0, 0) == 0;
      if (ok && mode == FakerootMode::kRootMapped) {
        int fd = ::memfd_create("rbox-verify32", MFD_CLOEXEC);
        ok = fd >= 0 && raw_i386_syscall3(kI386Fchown32, fd, kUnmappedProbeId, kUnmappedProbeId) == 0;
      }
      code = ok ? 'k' : '3';
    }
    write_all(wr.get(), &code, 1);
    ::_exit(0);
  }
  wr.reset();
  char buf[2] = {0, 0};
  size_t n = read_full(rd.get(), buf, 2);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (n >= 1 && buf[0] == 'i') return "installing the seccomp filter failed";
  if (n >= 1 && buf[0] == 'v') return "the seccomp filter did not answer on the native or x32 ABI";
  if (n == 1 && buf[0] == 'n') {
    log::debug("i386 ABI unavailable (int 0x80 trapped): compat check skipped");
    return "";
  }
  if (n == 2 && buf[1] == '3') return "the seccomp filter does not cover the i386 ABI";
  if (n == 2 && buf[1] == 'k') return "";
  return "the seccomp self-test child failed";
}

int run_in_user_namespace(const FakerootPlan& plan, const std::function<int()>& body,
                          const std::function<void(pid_t)>& started) {
  int to_child[2], from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd tc_r(to_child[0]), tc_w(to_child[1]);
  if (::pipe2(from_child, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd fc_r(from_child[0]), fc_w(from_child[1]);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw sys_error("fork");
  if (pid == 0) {
    tc_w.reset();
    fc_r.reset();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(255);
    int err = 0;
    if (plan.mode != FakerootMode::kRealRoot && ::unshare(CLONE_NEWUSER) != 0) err = errno;
    write_all(fc_w.get(), &err, sizeof err);
    if (err != 0) ::_exit(255);
    char go = 0;
    if (read_full(tc_r.get(), &go, 1) != 1 || go != 'g') ::_exit(255);
    tc_r.reset();
    fc_w.reset();
    int rc = 1;
    try {
      rc = body();
    } catch (const Error& e) {
      log::error(e.message());
      rc = e.exit_code();
    } catch (const std::exception& e) {
      log::error(e.what());
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  tc_r.reset();
  fc_w.reset();
  auto reap = [pid] {
    int ws = 0;
    while (::waitpid(pid, &ws, 0) < 0) {
      if (errno != EINTR) return 255;
    }
    return proc::decode_status(ws);
  };
  int err = 0;
  if (read_full(fc_r.get(), &err, sizeof err) != sizeof err) {
    reap();
    throw Error("the user-namespace child exited before starting");
  }
  if (err != 0) {
    reap();
    std::string why = user_namespace_problem();
    throw Error("cannot create a user namespace: " + std::string(std::strerror(err)) +
                (why.empty() ? "" : "; " + why));
  }
  try {
    apply_id_maps(pid, plan);
  } catch (...) {
    tc_w.reset();  // EOF: the child exits without running body
    reap();
    throw;
  }
  const char go = 'g';
  write_all(tc_w.get(), &go, 1);
  tc_w.reset();
  if (started) started(pid);
  return reap();
}

std::string user_namespace_problem() {
  auto read_num = [](const char* path) -> long {
    try {
      return std::stol(str::trim(fs::read_file(path)));
    } catch (...) {
      return -1;
    }
  };
  if (read_num("/proc/sys/user/max_user_namespaces") == 0)
    return "user namespaces are disabled (sysctl user.max_user_namespaces=0); ask the administrator to raise "
           "it";
  if (read_num("/proc/sys/kernel/unprivileged_userns_clone") == 0)
    return "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=0)";
  if (read_num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1)
    return "AppArmor restricts unprivileged user namespaces "
           "(kernel.apparmor_restrict_unprivileged_userns=1); "
           "an AppArmor profile for rbox or setting it to 0 is needed";
  return "";
}

}  // namespace rbox::container
