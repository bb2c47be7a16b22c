// image::Mount: the fallback ladder (kernel squashfs for real root → in-process FUSE →
// extraction) and its teardown (see mount.hpp for the launch contract). Temporary directories
// carry an flock held by their creator, so one left behind by a killed rbox is recognised and
// removed by the next extraction; nothing here ever follows a path from inside the image.
#include "image/mount.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "image/squash_extract.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/userns.hpp"

namespace rbox::image {

const char* mount_method_name(MountMethod m) {
  switch (m) {
    case MountMethod::kFuse:
      return "fuse";
    case MountMethod::kKernel:
      return "kernel squashfs";
    case MountMethod::kExtracted:
      return "extracted";
    case MountMethod::kDirectory:
      return "directory";
  }
  return "?";
}

namespace {

constexpr const char* kMountDirPrefix = "rbox-mnt-";
constexpr const char* kExtractDirPrefix = "rbox-unsquash-";

// mkdtemp under fs::temp_root() named PREFIX<pid>-XXXXXX, locked (flock) for our lifetime.
std::string make_private_dir(const char* prefix, UniqueFd* lock) {
  std::string tmpl = fs::temp_root() + "/" + prefix + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr)
    throw Error("cannot create a directory in " + fs::temp_root() + ": " + strerror(errno) +
                "; set RBOX_TMPDIR to a writable directory");
  UniqueFd fd(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd || flock(fd.get(), LOCK_EX) != 0) {
    int err = errno;
    rmdir(tmpl.c_str());
    throw sys_error("lock", tmpl, err);
  }
  *lock = std::move(fd);
  return tmpl;
}

// Removes rbox-mnt-* and rbox-unsquash-* directories of ours whose creator died without
// cleaning up (SIGKILL): a live creator holds the flock. Young ones are skipped, so a directory
// between mkdtemp and flock is never taken.
void sweep_stale_dirs() {
  const std::string root = fs::temp_root();
  DIR* d = opendir(root.c_str());
  if (d == nullptr) return;
  const time_t now = time(nullptr);
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    bool mnt = name.rfind(kMountDirPrefix, 0) == 0, ext = name.rfind(kExtractDirPrefix, 0) == 0;
    if (!mnt && !ext) continue;
    struct stat st {};
    if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || now - st.st_mtime < 60)
      continue;
    UniqueFd fd(openat(dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd || flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    const std::string path = root + "/" + name;
    try {
      if (mnt)
        unlinkat(dirfd(d), name.c_str(), AT_REMOVEDIR);
      else
        fs::remove_tree(path);
      log::verbose("removed " + path + ", left behind by an rbox that was killed");
    } catch (const Error& err) {
      log::debug(err.message());
    }
  }
  closedir(d);
}

std::string fuse_device_problem(int err) {
  struct stat st {};
  switch (err) {
    case ENOENT:
      return "/dev/fuse does not exist: load the module (modprobe fuse) or, inside a container, pass the "
             "device "
             "in (docker run --device /dev/fuse)";
    case EACCES:
    case EPERM: {
      char mode[8] = "?";
      if (stat("/dev/fuse", &st) == 0) snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
      return std::string("/dev/fuse is not accessible (mode ") + mode +
             "): ask the administrator to run 'chmod 0666 /dev/fuse' (the usual default)";
    }
    default:
      return std::string("/dev/fuse cannot be opened: ") + strerror(err);
  }
}

// The extraction child's wait and the payload's wait (wait_child) share this loop: the
// launcher's terminating signals are held and read with sigtimedwait; SIGCHLD wakes it at once.
int wait_holding_signals(pid_t child, bool kill_on_signal, int* got) {
  sigset_t set, old;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  int status = 0;
  if (got != nullptr) *got = 0;
  for (;;) {
    pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) break;
    if (r < 0 && errno != EINTR) {
      status = W_EXITCODE(255, 0);  // ECHILD: someone else reaped it
      break;
    }
    siginfo_t si{};
    timespec ts{1, 0};
    int s = sigtimedwait(&set, &si, &ts);
    if (s <= 0 || s == SIGCHLD) continue;
    if (got != nullptr) *got = s;
    if (kill_on_signal)
      kill(child, SIGKILL);
    else if (si.si_code == SI_USER || si.si_code == SI_QUEUE || si.si_code == SI_TKILL)
      kill(child, s);  // sent to the launcher alone; terminal signals reached the child already
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return status;
}

}  // namespace

int wait_child(pid_t child, int* signalled) {
  return wait_holding_signals(child, false, signalled);
}

struct Mount::Impl {
  MountMethod method = MountMethod::kFuse;
  pid_t owner = getpid();
  std::string image;       // for messages
  std::string root;        // what root() returns
  std::string mountpoint;  // FUSE / kernel
  bool own_mountpoint = false;
  bool mounted = false;
  std::string temp_dir;  // created by us: the mountpoint or the extraction parent
  UniqueFd temp_lock;
  std::unique_ptr<fuse::Server> server;

  ~Impl() {
    try {
      teardown();
    } catch (const std::exception& e) {
      log::warn(e.what());
    }
  }

  void teardown();
  void extract(const SquashfsSource& src);
  bool try_kernel(const SquashfsSource& src, const MountOptions& opts, std::string* why);
  bool try_fuse(std::shared_ptr<fuse::SquashfsReader> reader, const MountOptions& opts, bool real_root_user,
                std::string* why);
  void ensure_mountpoint(const MountOptions& opts);
};

void Mount::Impl::ensure_mountpoint(const MountOptions& opts) {
  if (!opts.mountpoint.empty()) {
    mountpoint = opts.mountpoint;
    if (!fs::is_dir(mountpoint)) throw Error("mount point " + mountpoint + " is not a directory");
    return;
  }
  if (!temp_dir.empty()) return;
  temp_dir = mountpoint = make_private_dir(kMountDirPrefix, &temp_lock);
  own_mountpoint = true;
}

bool Mount::Impl::try_kernel(const SquashfsSource& src, const MountOptions& opts, std::string* why) {
  UniqueFd img(::open(src.path.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!img || !ctl) {
    *why = std::string(!img ? src.path : "/dev/loop-control") + ": " + strerror(errno);
    return false;
  }
  std::string dev;
  UniqueFd loop;
  for (int attempt = 0; attempt < 8 && !loop; ++attempt) {
    int n = ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) {
      *why = std::string("no free loop device: ") + strerror(errno);
      return false;
    }
    dev = "/dev/loop" + std::to_string(n);
    UniqueFd fd(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) continue;
    loop_config cfg{};
    cfg.fd = static_cast<__u32>(img.get());
    cfg.info.lo_offset = src.offset;
    cfg.info.lo_sizelimit = src.size;
    // AUTOCLEAR: the device detaches itself once the filesystem is unmounted and we closed it.
    cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    snprintf(reinterpret_cast<char*>(cfg.info.lo_file_name), LO_NAME_SIZE, "%s", src.path.c_str());
    if (ioctl(fd.get(), LOOP_CONFIGURE, &cfg) == 0) {
      loop = std::move(fd);
    } else if (errno != EBUSY) {  // EBUSY: another process took it first
      *why = "LOOP_CONFIGURE " + dev + ": " + strerror(errno);
      return false;
    }
  }
  if (!loop) {
    *why = "no loop device could be configured";
    return false;
  }
  ensure_mountpoint(opts);
  if (::mount(dev.c_str(), mountpoint.c_str(), "squashfs", MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    *why = "mount " + dev + ": " + strerror(errno);
    return false;
  }
  mounted = true;
  method = MountMethod::kKernel;
  root = mountpoint;
  return true;
}

bool Mount::Impl::try_fuse(std::shared_ptr<fuse::SquashfsReader> reader, const MountOptions& opts,
                           bool real_root_user, std::string* why) {
  // Nothing this process execs from now on may gain privileges: no setuid fusermount3, no
  // setuid binary from the image (FUSE.md §5.5; charliecloud sq_fork). Only on the FUSE path:
  // extraction may precede setuid helpers such as newuidmap.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw sys_error("prctl(PR_SET_NO_NEW_PRIVS)");
  UniqueFd dev(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!dev) {
    *why = fuse_device_problem(errno);
    return false;
  }
  fuse::ServerOptions so = opts.server;
  so.ops.owners = opts.owners ? *opts.owners
                              : (real_root_user ? fuse::OwnerPolicy::image()
                                                : fuse::OwnerPolicy::fixed(geteuid(), getegid()));
  auto server = std::make_unique<fuse::Server>(std::move(reader), so);
  ensure_mountpoint(opts);
  // user_id/group_id are ids of this user namespace (fs/fuse/inode.c fuse_parse_param maps them
  // with the mounter's namespace); allow_other lets processes with other credentials (an inner
  // user namespace, setuid inside the container) use the mount; default_permissions makes the
  // kernel check modes against the attributes we report.
  std::string data = "fd=" + std::to_string(dev.get()) +
                     ",rootmode=40000,user_id=" + std::to_string(geteuid()) +
                     ",group_id=" + std::to_string(getegid()) + ",default_permissions,allow_other";
  if (::mount("rbox", mountpoint.c_str(), "fuse.rbox", MS_RDONLY | MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
    int err = errno;
    if (err == EPERM) {
      *why = "mounting with FUSE is not permitted here (mount: " + std::string(strerror(err)) +
             "; rbox mounts from an unprivileged user namespace)";
      return false;
    }
    throw Error("cannot mount " + image + " with FUSE on " + mountpoint + ": " + strerror(err));
  }
  mounted = true;
  method = MountMethod::kFuse;
  root = mountpoint;
  server->start(std::move(dev));
  this->server = std::move(server);
  return true;
}

void Mount::Impl::extract(const SquashfsSource& src) {
  if (own_mountpoint && !temp_dir.empty()) {  // a mount point made for a FUSE attempt
    rmdir(temp_dir.c_str());
    temp_dir.clear();
    temp_lock.reset();
    own_mountpoint = false;
  }
  sweep_stale_dirs();
  temp_dir = make_private_dir(kExtractDirPrefix, &temp_lock);
  // The tree goes one level down: the 0700 parent keeps other users out even where the image's
  // root directory is world-readable.
  root = temp_dir + "/root";
  method = MountMethod::kExtracted;
  if (mkdir(root.c_str(), 0700) != 0) throw sys_error("mkdir", root);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  const pid_t parent = getpid();
  // Extraction runs in a child: Ctrl-C kills it at once (it shares the terminal's process
  // group), while this process holds the signal, removes the half-written tree and exits.
  pid_t pid = fork();
  if (pid < 0) throw sys_error("fork");
  if (pid == 0) {
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    std::string msg;
    int code = 0;
    try {
      // The tree belongs to the invoking user (rootless) and device nodes are skipped there;
      // see squash_extract.hpp for the policy.
      ExtractStats st = extract_squashfs(src.path, src.offset, src.size, root);
      msg = std::to_string(st.files) + " files, " + std::to_string(st.dirs) + " directories, " +
            std::to_string(st.symlinks) + " symlinks, " + std::to_string(st.bytes >> 20) + " MiB";
    } catch (const std::exception& e) {
      msg = e.what();
      code = 1;
    }
    (void)!::write(wr.get(), msg.data(), msg.size());
    _exit(code);
  }
  wr.reset();
  int sig = 0;
  int status = wait_holding_signals(pid, true, &sig);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = ::read(rd.get(), buf, sizeof(buf))) > 0;) msg.append(buf, static_cast<size_t>(n));
  if (sig != 0) throw Error("interrupted while extracting " + image, 128 + sig);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("cannot extract " + image + ": " + (msg.empty() ? "the extraction process died" : msg));
  log::verbose("extracted " + image + " into " + root + ": " + msg);
}

void Mount::Impl::teardown() {
  if (getpid() != owner) return;  // a forked child never unmounts its parent's image
  if (mounted) {
    if (umount2(mountpoint.c_str(), UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT) {
      int err = errno;
      if (err == EBUSY)
        log::verbose(mountpoint + " is still in use; detaching it and serving until the last user exits");
      if (umount2(mountpoint.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL) {
        err = errno;
        if (server) {  // the connection cannot end: leave the workers running rather than hang
          log::error("cannot unmount " + mountpoint + ": " + strerror(err) +
                     "; leaving its FUSE server running");
          (void)server.release();
        }
        mounted = false;
        throw Error("cannot unmount " + mountpoint + ": " + strerror(err));
      }
    }
    mounted = false;
  }
  if (server) {
    server->join();  // workers stop when the kernel ends the connection (ENODEV)
    if (log::verbose()) log::verbose(server->describe_stats());
    server.reset();
  }
  if (!temp_dir.empty()) {
    if (method == MountMethod::kExtracted)
      fs::remove_tree(temp_dir);
    else if (own_mountpoint)
      rmdir(temp_dir.c_str());
    temp_dir.clear();
  }
  temp_lock.reset();
}

Mount::Mount(const SquashfsSource& source, const MountOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.image = source.path;
  UniqueFd fd(::open(source.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open", source.path);
  auto reader =
      std::make_shared<fuse::SquashfsReader>(std::move(fd), source.offset, source.size, source.path);

  if (options.unsquash) {
    log::verbose("--unsquash: extracting " + source.path + " into a temporary directory");
    m.extract(source);
    return;
  }
  std::string why;
  const bool root = userns::is_real_root();
  if (options.allow_kernel_mount && root) {
    if (m.try_kernel(source, options, &why)) return;
    log::info("the kernel's squashfs cannot mount " + source.path + " (" + why +
              "); serving it with FUSE instead");
  }
  if (m.try_fuse(reader, options, root, &why)) return;
  if (!options.allow_extract_fallback) throw Error(why + "; or use --unsquash to extract the image instead");
  log::info(why + "; extracting " + source.path + " into a temporary directory instead");
  m.extract(source);
}

Mount::Mount(const Location& image, const MountOptions& options) {
  if (image.format == Format::kSandbox) {
    impl_ = std::make_unique<Impl>();
    impl_->image = impl_->root = image.path;
    impl_->method = MountMethod::kDirectory;
    return;
  }
  *this = Mount(SquashfsSource{image.path, image.offset, image.size}, options);
}

Mount::~Mount() = default;
Mount::Mount(Mount&&) noexcept = default;
Mount& Mount::operator=(Mount&&) noexcept = default;

const std::string& Mount::root() const {
  return impl_->root;
}

MountMethod Mount::method() const {
  return impl_->method;
}

void Mount::unmount() {
  if (impl_) impl_->teardown();
}

std::string Mount::describe_stats() const {
  return impl_ && impl_->server ? impl_->server->describe_stats() : std::string();
}

std::shared_ptr<fuse::SquashfsReader> Mount::reader() const {
  return impl_ && impl_->method == MountMethod::kFuse && impl_->server ? impl_->server->shared_image()
                                                                       : nullptr;
}

bool Mount::server_stopped() const {
  return impl_ && impl_->method == MountMethod::kFuse && impl_->mounted && impl_->server &&
         !impl_->server->running();
}

}  // namespace rbox::image
