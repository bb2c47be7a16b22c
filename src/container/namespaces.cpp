// Implementation of container/namespaces.hpp.
#include "container/namespaces.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "container/host_check.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/log.hpp"
#include "util/subprocess.hpp"

namespace rbox::container {

namespace {

void write_proc(const char* file, const std::string& text) {
  int fd = ::open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw sys_error("open", file);
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    throw Error(std::string("write ") + file + ": " + std::strerror(err) + "; " +
                    explain_namespace_failure("uid_map", err),
                exit_code::kHostUnsupported);
  }
}

}  // namespace

std::optional<IdMapHelper> IdMapHelper::start(const IdPlan& ids) {
  if (!ids.subuid || !ids.subgid) return std::nullopt;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw sys_error("pipe");
  pid_t parent = ::getpid();
  std::string uid_args[] = {std::to_string(parent),
                            "0",
                            std::to_string(ids.host_uid),
                            "1",
                            "1",
                            std::to_string(ids.subuid->start),
                            std::to_string(ids.subuid->count)};
  std::string gid_args[] = {std::to_string(parent),
                            "0",
                            std::to_string(ids.host_gid),
                            "1",
                            "1",
                            std::to_string(ids.subgid->start),
                            std::to_string(ids.subgid->count)};
  pid_t pid = ::fork();
  if (pid < 0) throw sys_error("fork");
  if (pid == 0) {
    // Helper: wait for the launcher's go, then run the setuid mappers on its pid. Never
    // returns into the launcher's code.
    ::close(fds[1]);
    char c;
    ssize_t n;
    do n = ::read(fds[0], &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(0);
    int bits = 0;
    try {
      std::vector<std::string> u = {"/usr/bin/newuidmap"}, g = {"/usr/bin/newgidmap"};
      u.insert(u.end(), std::begin(uid_args), std::end(uid_args));
      g.insert(g.end(), std::begin(gid_args), std::end(gid_args));
      if (proc::run(u).status == 0) bits |= 1;
      if (proc::run(g).status == 0) bits |= 2;
    } catch (...) {
    }
    ::_exit(bits);
  }
  ::close(fds[0]);
  IdMapHelper h;
  h.pid_ = pid;
  h.go_ = fds[1];
  return h;
}

IdMapHelper::IdMapHelper(IdMapHelper&& o) noexcept : pid_(o.pid_), go_(o.go_) {
  o.pid_ = -1;
  o.go_ = -1;
}

IdMapHelper::~IdMapHelper() {
  if (go_ >= 0) ::close(go_);
  if (pid_ > 0) {
    int st;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

std::pair<bool, bool> IdMapHelper::map() {
  char c = 1;
  if (::write(go_, &c, 1) != 1) return {false, false};
  ::close(go_);
  go_ = -1;
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  int bits = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
  return {(bits & 1) != 0, (bits & 2) != 0};
}

void enter_namespaces(const NamespacePlan& ns) {
  int flags = CLONE_NEWUSER | CLONE_NEWNS;
  // CLONE_NEWPID is left to the container child (see child.cpp).
  if (ns.ipc) flags |= CLONE_NEWIPC;
  if (ns.uts) flags |= CLONE_NEWUTS;
  if (ns.net) flags |= CLONE_NEWNET;
  if (::unshare(flags) != 0) {
    int err = errno;
    throw Error("cannot create a user namespace (unshare: " + std::string(std::strerror(err)) + "); " +
                    explain_namespace_failure("unshare", err),
                exit_code::kHostUnsupported);
  }
}

void write_id_maps(const IdPlan& ids, bool uid_done, bool gid_done) {
  if (!uid_done)
    write_proc("/proc/self/uid_map", std::to_string(ids.uid) + " " + std::to_string(ids.host_uid) + " 1\n");
  if (!gid_done) {
    // An unprivileged process may write gid_map only after giving up setgroups(2)
    // (user_namespaces(7), "The /proc/[pid]/setgroups file").
    int fd = ::open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (::write(fd, "deny", 4) != 4 && errno != EPERM)
        log::debug("setgroups deny: " + std::string(std::strerror(errno)));
      ::close(fd);
    }
    write_proc("/proc/self/gid_map", std::to_string(ids.gid) + " " + std::to_string(ids.host_gid) + " 1\n");
  }
}

void set_hostname(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) throw sys_error("sethostname", name);
}

void bring_up_loopback() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw sys_error("socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
      int err = errno;
      ::close(s);
      throw Error(std::string("bring up the loopback interface: ") + std::strerror(err));
    }
  }
  ::close(s);
}

}  // namespace rbox::container
