// Fake root for builds and --fakeroot: choosing the id map (a full /etc/subuid map through
// newuidmap, or a root-mapped namespace 0 → uid), entering that user namespace, and the seccomp
// filter that turns ownership, identity and device-node calls into successful no-ops on x86_64
// and its i386 and x32 ABIs (PEERS.md A1.7, FAKEROOT.md). It never grants anything, it only
// hides EPERM/EINVAL. Must not mount anything or launch containers: callers do that inside.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rbox::container {

// --- The filter, for the runtime's --fakeroot (child.cpp) -----------------------------------

// Loads the root-mapped filter into the calling process (inherited across fork and exec) and
// checks it took effect. Throws rbox::Error naming the step that failed.
void install_fakeroot_filter();

// True when this process runs under the filter (used by tests and `rbox check`).
bool fakeroot_filter_active();

// --- Modes, id maps and user namespaces (the build) -------------------------------------------

// How "root" is provided. kRealRoot: rbox already runs as uid 0, no user namespace is needed.
enum class FakerootMode { kRealRoot, kRootMapped, kSubuid };

struct SubidRange {
  uint64_t start = 0;
  uint64_t count = 0;
};

// One line of /proc/PID/uid_map: inside outside count.
struct IdMapLine {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
};

struct FakerootPlan {
  FakerootMode mode = FakerootMode::kRootMapped;
  uid_t uid = 0;  // the invoking user on the host
  gid_t gid = 0;
  std::vector<IdMapLine> uid_map, gid_map;
  std::string newuidmap, newgidmap;  // tool paths (kSubuid only)
  std::string reason;                // why this mode was chosen, for the build log

  // One line for the build log, e.g. "fake root: /etc/subuid map (0 → 1000, 1-65536 → …)".
  std::string describe() const;
  // Number of ids mapped inside (1 for root-mapped).
  uint64_t mapped_count() const;
};

struct FakerootOptions {
  bool ignore_subuid = false;
  std::string subuid_file = "/etc/subuid";
  std::string subgid_file = "/etc/subgid";
};

// The Apptainer minimum for a full map.
inline constexpr uint64_t kMinSubidCount = 65536;

// Finds the user's range in /etc/subuid or /etc/subgid text ("name:start:count" or
// "uid:start:count" lines). Like Apptainer: a range of exactly 65536 wins, else the largest;
// lines starting with '!' or '#' and malformed lines are ignored.
std::optional<SubidRange> find_subid_range(std::string_view text, std::string_view user_name, uint32_t id);

// Chooses the mode for the current process (real root → kRealRoot). With a subuid and a subgid
// range ≥ 65536 and both newuidmap and newgidmap installed, kSubuid; otherwise kRootMapped with
// the reason recorded. Reads only the two files and PATH.
FakerootPlan plan_fakeroot(const std::string& user_name, uid_t uid, gid_t gid,
                           const FakerootOptions& opts = {});

// Parent side: writes the maps of child (which has unshared its user namespace). Root-mapped
// writes /proc/PID/{uid_map,setgroups,gid_map} directly (user_namespaces(7): one line mapping
// the writer's own euid, setgroups denied first); subuid runs newuidmap/newgidmap. Throws.
void apply_id_maps(pid_t child, const FakerootPlan& plan);

// A compiled classic-BPF seccomp program (built with libseccomp, exported once in the parent so
// a forked child only needs prctl/seccomp, which are async-signal-safe).
struct SeccompProgram {
  std::vector<sock_filter> insns;
  bool empty() const { return insns.empty(); }
};

// The fake-root filter for mode (empty for kRealRoot). Default action ALLOW on every ABI; native
// x86_64 plus the i386 and x32 compat ABIs. Successful no-ops (errno 0):
//  - kRootMapped: chown family (+*32), set*id family (+*32), setgroups(32), setfs*id(32), capset,
//    mknod/mknodat of character and block devices;
//  - kSubuid: only device mknod/mknodat (ids inside the map are real, so chown and set*id work);
//  - both: kexec_load, the probe that proves the filter is live (Charliecloud's trick).
SeccompProgram build_fakeroot_filter(FakerootMode mode);

// Child side, async-signal-safe: sets NO_NEW_PRIVS and installs prog. Returns 0 or an errno.
int install_filter(const SeccompProgram& prog) noexcept;

// Child side, async-signal-safe, after install_filter: checks the filter answers on the native
// and x32 ABIs (kexec_load probe) and, for kRootMapped, that fchown of a memfd to an unmapped id
// "succeeds" and leaves the owner unchanged. Returns nullptr when good, else a static message.
const char* verify_filter(FakerootMode mode) noexcept;

// Parent side: installs the filter in a throwaway child and issues i386 (int 0x80) fchown32 and
// kexec_load there, so a kernel without ia32 emulation cannot crash the real child. Returns ""
// when good or when the i386 ABI is unavailable, else what failed.
std::string self_test_compat_abi(const SeccompProgram& prog, FakerootMode mode);

// Forks a child that unshares a user namespace (not for kRealRoot), waits until the parent has
// written its maps, and runs body there (exceptions → message on stderr, their exit code). The
// parent calls started(pid) once the child runs (e.g. to forward signals), waits, and returns the
// child's exit status (128+signal when killed). The child dies with the parent
// (PR_SET_PDEATHSIG). The calling process should be single-threaded.
int run_in_user_namespace(const FakerootPlan& plan, const std::function<int()>& body,
                          const std::function<void(pid_t)>& started = {});

// Cheap probe for `rbox check` and error messages: why this host refuses unprivileged user
// namespaces ("" when nothing is known to block them).
std::string user_namespace_problem();

}  // namespace rbox::container
