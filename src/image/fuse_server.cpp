// Worker threads of the in-process FUSE server (see fuse_server.hpp). Raw /dev/fuse: each
// request is one read(2), each reply one write(2), nothing allocated per request. Worker 0 has
// its own clone of the channel so that it alone can poll without blocking; libfuse 3.14's public
// API has one fd per session, so its spin would make every worker poll (FUSE.md §5.2, §6).
#include "image/fuse_server.hpp"

#include <fcntl.h>
#include <linux/fuse.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "util/error.hpp"
#include "util/log.hpp"

namespace rbox::image::fuse {

namespace {

// A request buffer must hold max(FUSE_MIN_READ_BUFFER, header + write_in + max_write) bytes or
// the kernel refuses the read (fs/fuse/dev.c fuse_dev_do_read); max_write is 4096 here.
constexpr size_t kRequestBuffer = 16384;

unsigned env_unsigned(const char* name, unsigned fallback) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  unsigned long n = strtoul(v, &end, 10);
  if (*end != '\0' || n > 1000000) {
    log::warn(std::string("ignoring ") + name + "=" + v + " (not a number)");
    return fallback;
  }
  return static_cast<unsigned>(n);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ServerOptions ServerOptions::from_env() {
  return from_env(ServerOptions{});
}

ServerOptions ServerOptions::from_env(ServerOptions base) {
  base.max_workers = env_unsigned("RBOX_FUSE_WORKERS", base.max_workers);
  base.helper_delay_ms = env_unsigned("RBOX_FUSE_HELPER_DELAY_MS", base.helper_delay_ms);
  base.spin_us = env_unsigned("RBOX_FUSE_SPIN_US", base.spin_us);
  if (const char* v = getenv("RBOX_FUSE_READDIRPLUS"); v != nullptr && *v != '\0') {
    std::string mode = v;
    if (mode == "auto" || mode == "always")
      base.ops.readdirplus_auto = mode == "auto";
    else
      log::warn("ignoring RBOX_FUSE_READDIRPLUS=" + mode + " (auto or always)");
  }
  return base;
}

Server::Server(std::shared_ptr<SquashfsReader> image, ServerOptions options)
    : image_(std::move(image)), options_(options) {
  if (options_.max_workers == 0) {
    // CPUs this process may run on (a syscall; hardware_concurrency reads sysfs).
    cpu_set_t set;
    CPU_ZERO(&set);
    unsigned cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? static_cast<unsigned>(CPU_COUNT(&set)) : 1;
    options_.max_workers = std::min(4u, 2 * std::max(1u, cpus));
  }
  ops_ = std::make_unique<FuseOps>(*image_, options_.ops);
}

Server::~Server() {
  join();
}

void Server::start(UniqueFd fd) {
  fd_ = std::move(fd);
  // Worker 0's private channel. FUSE_DEV_IOC_CLONE attaches a fresh /dev/fuse open to the same
  // connection; a request read from it must be answered on it (fs/fuse/dev.c). Opened now, while
  // /dev/fuse is reachable: a payload may pivot_root this mount namespace later.
  UniqueFd clone(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
  uint32_t master = static_cast<uint32_t>(fd_.get());
  if (clone && ioctl(clone.get(), FUSE_DEV_IOC_CLONE, &master) == 0) {
    private_ = std::move(clone);
  } else {
    log::debug("FUSE: no private channel for worker 0 (" + std::string(strerror(errno)) + "); spin disabled");
  }
  started_ = std::chrono::steady_clock::now();
  spawn(0);
}

void Server::spawn(unsigned index) {
  // Workers block every signal: SIGINT, SIGCHLD and friends belong to the launcher's thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::lock_guard<std::mutex> g(threads_mutex_);
  live_.fetch_add(1);
  try {
    threads_.emplace_back(&Server::worker_main, this, index);
  } catch (...) {
    live_.fetch_sub(1);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Server::start_helpers() {
  helpers_started_.store(true, std::memory_order_relaxed);
  if (options_.max_workers < 2) return;
  try {
    spawn(1);  // helper 1 starts the others, off worker 0's path
  } catch (const std::exception& e) {
    log::debug(std::string("FUSE: no helper worker: ") + e.what());
  }
}

int Server::worker_fd(unsigned index) const {
  return index == 0 && private_ ? private_.get() : fd_.get();
}

void Server::worker_main(unsigned index) {
  SquashfsReader::ContextPtr ctx;
  try {
    ctx = image_->make_context();
  } catch (const std::exception& e) {
    log::error(std::string("FUSE worker: ") + e.what());
    live_.fetch_sub(1);
    return;
  }
  if (index == 1) {
    for (unsigned i = 2; i < options_.max_workers; ++i) {
      try {
        spawn(i);
      } catch (const std::exception&) {
        break;
      }
    }
  }
  // Not zero-filled: pages of the 1 MiB reply buffer are touched only by large READs.
  const size_t out_size = ops_->reply_capacity();
  auto in = std::make_unique_for_overwrite<uint8_t[]>(kRequestBuffer);
  auto out = std::make_unique_for_overwrite<uint8_t[]>(out_size);
  const int fd = worker_fd(index);
  const bool may_spin = index == 0 && private_ && options_.spin_us > 0;
  const int base_flags = fcntl(fd, F_GETFL);
  bool nonblocking = false;
  auto set_nonblocking = [&](bool on) {
    if (on != nonblocking && fcntl(fd, F_SETFL, on ? base_flags | O_NONBLOCK : base_flags & ~O_NONBLOCK) == 0)
      nonblocking = on;
  };
  const auto delay = std::chrono::milliseconds(options_.helper_delay_ms);
  const auto spin = std::chrono::microseconds(options_.spin_us);

  for (;;) {
    ssize_t n;
    if (may_spin && helpers_started_.load(std::memory_order_relaxed)) {
      set_nonblocking(true);
      const auto deadline = std::chrono::steady_clock::now() + spin;
      for (;;) {
        n = ::read(fd, in.get(), kRequestBuffer);
        if (n >= 0 || errno != EAGAIN || std::chrono::steady_clock::now() >= deadline) break;
        cpu_relax();
      }
      if (n >= 0) {
        spin_hits_.fetch_add(1, std::memory_order_relaxed);
      } else if (errno == EAGAIN) {
        set_nonblocking(false);
        n = ::read(fd, in.get(), kRequestBuffer);
      }
    } else {
      n = ::read(fd, in.get(), kRequestBuffer);
    }
    if (n < 0) {
      // ENOENT: the request was interrupted before we read it; EINTR/EAGAIN: try again.
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      if (errno != ENODEV) log::error(std::string("FUSE: reading /dev/fuse: ") + strerror(errno));
      break;  // ENODEV: the connection is gone (unmounted or aborted)
    }
    size_t reply = ops_->handle(*ctx, in.get(), static_cast<size_t>(n), out.get(), out_size);
    requests_.fetch_add(1, std::memory_order_relaxed);
    if (reply > 0 && ::write(fd, out.get(), reply) < 0) {
      // ENOENT: the request was interrupted or aborted meanwhile; the kernel dropped it.
      if (errno == ENODEV) break;
      if (errno != ENOENT && errno != EINTR) log::debug(std::string("FUSE: reply: ") + strerror(errno));
    }
    if (index == 0 && !helpers_started_.load(std::memory_order_relaxed) &&
        std::chrono::steady_clock::now() - started_ >= delay)
      start_helpers();
  }
  live_.fetch_sub(1);
}

void Server::join() {
  // Thread k registers every worker it spawns before it can exit, and spawners have lower
  // indexes than the workers they spawn, so one pass in index order joins them all.
  for (;;) {
    std::thread* t = nullptr;
    {
      std::lock_guard<std::mutex> g(threads_mutex_);
      if (joined_ >= threads_.size()) break;
      t = &threads_[joined_];
    }
    if (t->joinable()) t->join();
    std::lock_guard<std::mutex> g(threads_mutex_);
    ++joined_;
  }
}

bool Server::running() const {
  return live_.load() > 0;
}

ServerStats Server::stats() const {
  ServerStats s;
  {
    std::lock_guard<std::mutex> g(threads_mutex_);
    s.workers = static_cast<unsigned>(threads_.size());
  }
  s.requests = requests_.load();
  s.errors = ops_->errors();
  s.spin_hits = spin_hits_.load();
  return s;
}

std::string Server::describe_stats() const {
  ServerStats s = stats();
  std::string r =
      "FUSE: " + std::to_string(s.workers) + " workers, " + std::to_string(s.requests) + " requests (";
  struct Named {
    uint32_t op;
    const char* name;
  };
  const Named names[] = {
      {FUSE_LOOKUP, "LOOKUP"},   {FUSE_GETATTR, "GETATTR"},         {FUSE_READ, "READ"},
      {FUSE_READDIR, "READDIR"}, {FUSE_READDIRPLUS, "READDIRPLUS"}, {FUSE_READLINK, "READLINK"},
      {FUSE_OPEN, "OPEN"},       {FUSE_OPENDIR, "OPENDIR"},         {FUSE_GETXATTR, "GETXATTR"},
      {FUSE_STATFS, "STATFS"},   {FUSE_FORGET, "FORGET"},           {FUSE_BATCH_FORGET, "BATCH_FORGET"}};
  bool first = true;
  for (const auto& nm : names) {
    uint64_t c = ops_->count(nm.op);
    if (c == 0) continue;
    r += (first ? "" : " ") + std::string(nm.name) + "=" + std::to_string(c);
    first = false;
  }
  r += "), " + std::to_string(s.spin_hits) + " caught spinning, " + std::to_string(s.errors) + " errors";
  auto cache = [](const char* what, const CacheStats& c) {
    return std::string("; ") + what + " cache " + std::to_string(c.hits) + " hits/" +
           std::to_string(c.misses) + " misses, " + std::to_string(c.bytes >> 10) + " KiB";
  };
  r += cache("inode", image_->inode_cache_stats());
  r += cache("dir", image_->dir_cache_stats());
  r += cache("block", image_->block_cache_stats());
  const ReadStats& rs = image_->read_stats();
  r += "; blocks " + std::to_string(rs.direct_blocks.load()) + " direct/" +
       std::to_string(rs.cached_blocks.load()) + " cached, " + std::to_string(rs.bytes_read.load() >> 10) +
       " KiB read";
  return r;
}

}  // namespace rbox::image::fuse
