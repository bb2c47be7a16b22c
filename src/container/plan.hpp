// The launch plan: everything a container start will do — ids to map, namespaces, the root
// layer, the ordered mount list, working directory, environment and action — computed by a pure
// function from the user's options and facts about the host (APPTAINER.md 5.2/5.3 semantics).
// Unit-tested without root. Executing it is launch.cpp's job; nothing here makes a syscall
// except through the HostFacts callbacks.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "container/environment.hpp"
#include "container/options.hpp"
#include "container/passwd.hpp"

namespace rbox::container {

struct SubIdRange {
  unsigned long start = 0;
  unsigned long count = 0;
};

// What make_plan needs to know about the host. gather_host_facts() fills it for real; tests
// fill it by hand.
struct HostFacts {
  std::string user_name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string gecos;
  std::string home;                                   // passwd home
  std::string shell;                                  // passwd shell
  std::vector<std::pair<gid_t, std::string>> groups;  // primary first, names known
  std::string cwd;                                    // logical ($PWD when it names the working directory)
  std::string cwd_real;                               // physical
  std::vector<std::string> environ;
  std::optional<SubIdRange> subuid, subgid;  // from /etc/subuid, /etc/subgid
  bool have_newidmap = false;                // newuidmap and newgidmap installed
  // Absolute path with symlinks resolved, or nullopt when it does not exist.
  std::function<std::optional<std::string>(const std::string&)> realpath;
  std::function<bool(const std::string&)> is_dir;
  std::function<std::string(const std::string&)> read_file;  // throws rbox::Error
};

// want_subids: read /etc/subuid and /etc/subgid (only --fakeroot needs them).
HostFacts gather_host_facts(bool want_subids);

enum class ImageKind { kSandbox, kSif };

struct ImageInfo {
  ImageKind kind = ImageKind::kSandbox;
  std::string path;   // absolute, symlinks resolved (what rbox opens)
  std::string shown;  // absolute as the user wrote it (APPTAINER_CONTAINER)
};

enum class MountKind {
  kBind,        // host path → container path (recursive)
  kProc,        // fresh procfs with a PID namespace, else rbind of host /proc
  kSys,         // rbind of host /sys
  kDev,         // rbind of host /dev
  kDevMinimal,  // tmpfs /dev: null zero full random urandom tty, devpts, shm (--contain)
  kSessionDir,  // empty directory from the session tmpfs (--contain: home, /tmp, /var/tmp)
  kPasswd,      // image's /etc/passwd plus the user
  kGroup,       // image's /etc/group plus the user's groups
  kFile,        // generated content (e.g. /etc/hostname)
};

struct MountEntry {
  MountKind kind = MountKind::kBind;
  std::string source;  // host path (kBind), or content (kFile)
  std::string target;  // absolute, lexically normal path in the container
  bool read_only = false;
  bool optional = false;  // skip, with a verbose note, if the source or mount point is missing
  bool file = false;      // the source is a file (mount point must be a file)
  mode_t mode = 0755;     // kSessionDir permissions
  std::string origin;     // for messages: "home", "--bind /a:/b", …
};

struct IdPlan {
  uid_t host_uid = 0;
  gid_t host_gid = 0;
  uid_t uid = 0;  // inside
  gid_t gid = 0;  // inside
  bool fakeroot = false;
  // With --fakeroot and an /etc/subuid range: map 1..count to it through newuidmap/newgidmap.
  std::optional<SubIdRange> subuid, subgid;
};

struct NamespacePlan {
  bool pid = false;
  bool ipc = false;
  bool uts = false;
  bool net = false;
  bool init = true;  // a small init as PID 1 in the PID namespace
  std::string hostname;
};

struct RootPlan {
  ImageInfo image;
  bool writable_sandbox = false;  // -w on a sandbox: the directory itself, read-write
  bool writable_tmpfs = false;
  std::vector<std::pair<std::string, bool>> overlays;  // host dir, read-only
  unsigned tmpfs_size_mib = kDefaultTmpfsSizeMib;
  bool unsquash = false;  // extract a SIF to a temporary directory instead of mounting it
};

struct Plan {
  Action action = Action::kExec;
  std::vector<std::string> args;
  std::string app;
  IdPlan ids;
  NamespacePlan ns;
  RootPlan root;
  std::vector<MountEntry> mounts;                     // in order; later mounts stack on earlier ones
  std::string cwd;                                    // inside
  bool cwd_required = false;                          // --pwd: failing to enter it is an error
  std::string home;                                   // HOME inside
  PasswdEntry user;                                   // the line added to the image's /etc/passwd
  std::vector<std::pair<gid_t, std::string>> groups;  // lines added to /etc/group
  EnvPlan env;
  std::vector<std::string> warnings;
};

// Throws rbox::Error (one line, names the option) on invalid input.
Plan make_plan(const LaunchOptions& opts, const ImageInfo& image, const HostFacts& host);

// "/a/./b/../c/" → "/a/c" (no filesystem access).
std::string normalize_path(const std::string& path);
// True when path equals dir or lies beneath it (both normalized, absolute).
bool path_within(const std::string& path, const std::string& dir);

}  // namespace rbox::container
