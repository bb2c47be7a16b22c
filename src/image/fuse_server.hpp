// The in-process FUSE server: worker threads that read requests from /dev/fuse, answer them with
// FuseOps and write the replies back. One worker at first; helpers and a short spin join after
// a start-up window (FUSE.md §5.2). Workers never touch the mount; they stop when the kernel
// ends the connection (ENODEV after unmount).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "image/fuse_ops.hpp"
#include "image/fuse_sqfs.hpp"
#include "util/fd.hpp"

namespace rbox::image::fuse {

struct ServerOptions {
  OpsOptions ops;
  // Workers once the start-up window has passed; 0 = min(4, 2 × online CPUs).
  unsigned max_workers = 0;
  // The start-up window: a command's exec is served by one worker (FUSE.md §3.3: always-on
  // extra workers cost 0.9–1.4 ms per start-up, libfuse's mt loop 2.3 ms).
  unsigned helper_delay_ms = 20;
  // After the window, worker 0 polls its private channel for this long after each reply before
  // sleeping: a request that arrives meanwhile skips a wake-up (1-reader tree read 0.8× → 1.0×
  // of kernel squashfs on a VM whose idle vCPUs halt). Burns CPU while busy; 0 switches it off.
  unsigned spin_us = 20;

  // Defaults overridden by RBOX_FUSE_WORKERS, RBOX_FUSE_HELPER_DELAY_MS, RBOX_FUSE_SPIN_US
  // (benchmark knobs; documented in scripts/bench/read.sh).
  static ServerOptions from_env(ServerOptions base);
  static ServerOptions from_env();
};

struct ServerStats {
  unsigned workers = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t spin_hits = 0;  // requests picked up while spinning
};

class Server {
 public:
  Server(std::shared_ptr<SquashfsReader> image, ServerOptions options);
  ~Server();  // joins the workers; call only after the connection has ended (see Mount)
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts worker 0 on fd, the /dev/fuse descriptor given to mount(2). Call right after the
  // mount: the kernel has queued INIT, and every access to the mount blocks until it is answered.
  void start(UniqueFd fd);
  // Waits until every worker has stopped (each stops when its read returns ENODEV).
  void join();
  bool running() const;

  ServerStats stats() const;
  const FuseOps& ops() const { return *ops_; }
  const SquashfsReader& image() const { return *image_; }
  // The reader the workers share (thread-safe): callers may look up paths with their own Context.
  std::shared_ptr<SquashfsReader> shared_image() const { return image_; }
  // One line per counter, for --verbose output.
  std::string describe_stats() const;

 private:
  void worker_main(unsigned index);
  void start_helpers();
  int worker_fd(unsigned index) const;
  void spawn(unsigned index);

  std::shared_ptr<SquashfsReader> image_;

  ServerOptions options_;
  std::unique_ptr<FuseOps> ops_;
  UniqueFd fd_;       // shared by the helpers (blocking reads)
  UniqueFd private_;  // worker 0's clone of the channel (FUSE_DEV_IOC_CLONE), non-blocking while spinning
  std::chrono::steady_clock::time_point started_;
  mutable std::mutex threads_mutex_;
  std::deque<std::thread> threads_;  // deque: references stay valid while workers are added
  size_t joined_ = 0;
  std::atomic<unsigned> live_{0};
  std::atomic<bool> helpers_started_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> spin_hits_{0};
};

}  // namespace rbox::image::fuse
