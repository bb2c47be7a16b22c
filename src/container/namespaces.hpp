// Entering the namespaces of a plan from the launcher: unshare(2) while single-threaded, the
// uid/gid maps (uid→uid, or 0→uid with --fakeroot; full /etc/subuid ranges through the setuid
// newuidmap/newgidmap run from a helper forked before unshare, since a setuid program started
// inside the new namespace would not gain privilege there), hostname and loopback.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>

#include "container/plan.hpp"

namespace rbox::container {

// Forked before unshare when the plan maps subordinate ids; waits until told to run
// newuidmap/newgidmap on the launcher's pid. RAII: kills and reaps the helper if unused.
class IdMapHelper {
 public:
  static std::optional<IdMapHelper> start(const IdPlan& ids);
  IdMapHelper(IdMapHelper&&) noexcept;
  IdMapHelper& operator=(IdMapHelper&&) = delete;
  ~IdMapHelper();
  // Lets the helper map the launcher's new user namespace; {uid map written, gid map written}.
  std::pair<bool, bool> map();

 private:
  IdMapHelper() = default;
  pid_t pid_ = -1;
  int go_ = -1;  // write end: one byte = go
};

// unshare(CLONE_NEWUSER | CLONE_NEWNS | the plan's optional namespaces). Throws an Error with
// the host-check explanation (exit code kHostUnsupported) when the host forbids it.
void enter_namespaces(const NamespacePlan& ns);

// Writes setgroups "deny", uid_map and gid_map for the single-id maps (skipped for a map the
// helper already wrote).
void write_id_maps(const IdPlan& ids, bool uid_done, bool gid_done);

// Hostname in the new UTS namespace; loopback up in the new network namespace.
void set_hostname(const std::string& name);
void bring_up_loopback();

}  // namespace rbox::container
