// LayerStream: decompresses one layer blob (gzip, zstd, xz or plain tar, detected from its first
// bytes) on its own thread and hashes the tar stream (the DiffID) while the caller parses it, so
// decompression and file creation use two cores. It only reads the blob; it writes nothing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "oci/blob_store.hpp"
#include "util/fd.hpp"

namespace rbox::oci {

class LayerStream {
 public:
  // `what` names the layer in errors. progress(compressed bytes read) is called from the
  // decompression thread.
  LayerStream(const Blob& blob, std::string what, std::function<void(int64_t)> progress = {});
  ~LayerStream();
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  // The next piece of the uncompressed tar stream, valid until the next call; empty at the end.
  // Rethrows a decompression error from the worker thread.
  std::string_view next();
  // Reads to the end (tar padding after the end-of-archive blocks) and returns
  // "sha256:<hex>" of the whole uncompressed stream.
  std::string finish();
  uint64_t uncompressed_bytes() const { return total_out_; }

 private:
  void run();
  void produce(std::string&& chunk);  // blocks while the queue is full

  UniqueFd fd_;  // a duplicate: the stream does not depend on the Blob outliving it
  std::shared_ptr<BlobFeed> feed_;
  int64_t offset_, size_;
  std::string what_;
  std::function<void(int64_t)> progress_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // filled chunks, FIFO
  std::vector<std::string> free_;  // reusable buffers
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::string current_;
  std::string diff_id_;
  uint64_t total_out_ = 0;
  std::thread worker_;
};

}  // namespace rbox::oci
