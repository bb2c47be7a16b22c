// Internals of the SquashFS packer: the in-memory tree, and TreeReader, which walks the source
// directory on one thread and prefetches file contents on a small pool of reader threads, handing
// files to the packer strictly in walk order (so output stays reproducible). Only squash_writer.cpp
// includes this. Reads the tree only; never follows a symlink inside it.
#pragma once

#include <sqfs/inode.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "image/squash_writer.hpp"
#include "util/fd.hpp"

namespace rbox::image::squash {

constexpr uint32_t kNone = 0xFFFFFFFF;
using Xattrs = std::vector<std::pair<std::string, std::string>>;

struct Node {
  std::string name;
  uint32_t parent = kNone;
  uint32_t mode = 0, uid = 0, gid = 0, mtime = 0, rdev = 0;
  uint64_t size = 0;               // regular files: st_size at the walk
  std::string target;              // symlink target
  std::vector<uint32_t> children;  // sorted by name (byte order), as SquashFS requires
  Xattrs xattrs;
  uint32_t link_to = kNone;  // hard link: the node that holds the inode
  uint32_t nlink = 1;
  uint32_t subdirs = 0;
  uint32_t inode_num = 0;
  uint64_t inode_ref = 0;
  sqfs_inode_generic_t* file_inode = nullptr;  // filled in by the block processor; sqfs_free'd
};

// One regular file to pack. The reader fills data (or, for big files, leaves fd open for the
// packer to stream) and xattrs, then marks it ready.
struct FileJob {
  Node* node = nullptr;
  std::string relpath;         // below the root, for openat2(RESOLVE_BENEATH) and messages
  const char* data = nullptr;  // in TreeReader's ring; valid until release()
  size_t len = 0;
  UniqueFd fd;  // big files only
  std::string error;
  bool ready = false;
  uint64_t budget = 0;  // ring bytes held (the file, plus the skipped end of the ring on a wrap)
};

uint32_t clamp_time(int64_t t, const std::optional<int64_t>& sde);

class TreeReader {
 public:
  // nodes receives the tree, root first. Threads start in start().
  TreeReader(const std::string& root, const SquashOptions& opts, std::deque<Node>& nodes);
  ~TreeReader();
  TreeReader(const TreeReader&) = delete;
  TreeReader& operator=(const TreeReader&) = delete;

  void start();
  // The next file in walk order once its data is read; nullptr at the end. Throws the first
  // error of the walk or of a reader.
  FileJob* next();
  // Gives back the prefetch budget of a packed file.
  void release(FileJob* job);
  // Joins every thread (after next() returned nullptr, or on error paths).
  void stop();

 private:
  void walk_thread();
  void walk(int dirfd, uint32_t idx, const std::string& rel);
  uint32_t add_child(int dirfd, uint32_t parent, const std::string& name, const std::string& rel);
  void reader_thread();
  void read_job(FileJob& job, char* buf);
  // Reserves size bytes of the ring for the next job; false when they do not fit yet.
  bool reserve(FileJob& job, uint64_t size, char** buf);
  void fail(std::exception_ptr e);

  std::string root_;
  const SquashOptions& opts_;
  std::deque<Node>& nodes_;  // appended only by the walker; others hold Node* (deque: stable)
  UniqueFd rootfd_;
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, uint32_t>> hardlinks_;  // dev → ino → node

  std::mutex m_;
  std::condition_variable work_cv_;       // readers: a job to read, budget freed, or the end
  std::condition_variable ready_cv_;      // packer: a job became ready, or an error
  std::deque<FileJob> jobs_;              // walk order; addresses stay valid
  size_t next_read_ = 0, next_pack_ = 0;  // job numbers; jobs_[0] is job number popped_
  size_t popped_ = 0;
  // File contents read ahead, in a ring used first-in first-out: readers reserve in job order and
  // the packer releases in the same order, so one allocation serves the whole run (no page faults
  // and zeroing per file, which a buffer per file cost).
  std::unique_ptr<char[]> ring_;
  uint64_t ring_head_ = 0, ring_used_ = 0;
  int budget_waiters_ = 0;
  bool walk_done_ = false, stopping_ = false;
  std::exception_ptr error_;
  std::thread walker_;
  std::vector<std::thread> readers_;
};

}  // namespace rbox::image::squash
