// image::Mount — a SquashFS image (SIF partition or bare file) made visible as a directory for
// as long as the object lives: the in-process FUSE server by default, the kernel's squashfs for
// real root, or an extracted temporary copy when FUSE is unusable. Never runs fusermount3 or
// any setuid helper; never leaves a mount or a temporary directory behind on scope exit.
//
// Launch contract (for container/):
//  1. Namespaces first. The launcher calls unshare(CLONE_NEWUSER | CLONE_NEWNS) and writes
//     setgroups "deny", uid_map and gid_map BEFORE constructing a Mount: unshare(CLONE_NEWUSER)
//     fails with EINVAL in a multi-threaded process, and the FUSE server starts threads. Make
//     the new mount namespace private (mount --make-rprivate /) if you need host isolation. As
//     real root (initial user namespace) unshare only CLONE_NEWNS; the kernel squashfs is used.
//  2. Construct the Mount. For FUSE it sets PR_SET_NO_NEW_PRIVS on this process (so run setuid
//     helpers such as newuidmap before), validates the image, opens /dev/fuse
//     (close-on-exec), mounts with mount(2) and starts one server thread; it returns at once
//     (the kernel's INIT is answered by that thread, and accesses to root() wait for it).
//  3. Use root(): bind mounts on top of it and chroot/pivot_root into it happen in the child.
//     Create the payload with vfork or clone(CLONE_VM | CLONE_VFORK) (or fork + immediate exec):
//     the server threads must keep running in this process, since the payload's exec already
//     issues FUSE requests. A forked child must exec or _exit; it never returns into code that
//     destroys the Mount (the destructor does nothing in a process other than its creator).
//  4. The server must outlive every process that uses root(). For one-shot commands the
//     launcher (this process) serves while its child runs: wait with image::wait_child() (which
//     keeps Ctrl-C from killing the launcher first), then destroy the Mount. Give the payload a
//     PID namespace or PR_SET_PDEATHSIG so it cannot outlive the launcher (it would get ENOTCONN).
//     Instances keep the Mount in their long-lived monitor process.
//  5. Destruction (or unmount()): umount2; if the mount is still busy, MNT_DETACH and keep
//     serving until the kernel ends the connection (the last user is gone), then join the
//     threads and remove temporary directories. Never call it from a server thread.
// Host paths only; nothing from the image is ever followed outside root().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "image/fuse_ops.hpp"
#include "image/fuse_server.hpp"
#include "image/image.hpp"

namespace rbox::image {

// A SquashFS filesystem inside a file: a SIF's primary system partition, or a bare image at
// offset 0. size 0 means "to the end of the file". Served in place: the file is never copied.
struct SquashfsSource {
  std::string path;
  uint64_t offset = 0;
  uint64_t size = 0;
};

enum class MountMethod { kFuse, kKernel, kExtracted, kDirectory };
const char* mount_method_name(MountMethod m);

struct MountOptions {
  // Where to mount. Empty: a new private directory under fs::temp_root(), removed afterwards.
  // Ignored for extraction (the extracted tree is its own directory) and sandboxes.
  std::string mountpoint;
  // --unsquash: extract into a temporary directory instead of mounting.
  bool unsquash = false;
  // When FUSE is unusable (/dev/fuse missing or not accessible, mount(2) refused): extract
  // instead (announced in one line). false: throw the one-line error that says what to do.
  bool allow_extract_fallback = true;
  // As real root outside a user namespace: mount with the kernel's squashfs over a loop device.
  bool allow_kernel_mount = true;
  // File owners reported by FUSE. Default: everything owned by the caller's namespace ids in a
  // user namespace (see fuse::OwnerPolicy), the image's own ids for real root.
  std::optional<fuse::OwnerPolicy> owners;
  // Worker count, start-up window, spin (defaults + RBOX_FUSE_* environment overrides).
  fuse::ServerOptions server = fuse::ServerOptions::from_env();
};

class Mount {
 public:
  // Mounts (or extracts) source. Throws rbox::Error with a one-line message on failure; then
  // nothing is left mounted and no temporary directory remains.
  Mount(const SquashfsSource& source, const MountOptions& options = {});
  // Any image located by image::locate(): SIF and SquashFS files are mounted as above; a
  // sandbox directory is used as it is (method kDirectory, nothing to undo).
  Mount(const Location& image, const MountOptions& options = {});
  ~Mount();
  Mount(Mount&&) noexcept;
  Mount& operator=(Mount&&) noexcept;
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

  // The directory holding the image's root.
  const std::string& root() const;
  MountMethod method() const;
  // Unmounts now (idempotent); blocks while processes still use the mount (see contract 5).
  // Throws rbox::Error when the mount cannot be removed.
  void unmount();
  // One line of FUSE counters (requests, caches) for --verbose; empty for other methods.
  std::string describe_stats() const;
  // True when this is a FUSE mount whose server has stopped although it was never unmounted
  // (the connection was aborted, or every worker failed): processes using it saw ENOTCONN.
  bool server_stopped() const;
  // The in-process reader behind a FUSE mount (null for other methods): the launcher answers
  // questions about the image's tree with it instead of FUSE round trips.
  std::shared_ptr<fuse::SquashfsReader> reader() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Waits for child (waitpid status) while the launcher stays alive: SIGINT, SIGQUIT, SIGTERM
// and SIGHUP are held for the duration. Terminal-generated ones already reach the child, which
// shares the foreground process group; ones sent to the launcher alone (kill) are forwarded.
// *signalled receives the last signal the launcher itself got (0 if none).
int wait_child(pid_t child, int* signalled = nullptr);

}  // namespace rbox::image
