// Decompression thread for layer blobs (layer_stream.hpp): zlib for gzip (also concatenated
// members), libzstd, liblzma, or a plain copy. At most kQueued chunks wait for the parser, so
// memory stays bounded whatever the layer size.
#include "oci/layer_stream.hpp"

#include <fcntl.h>
#include <lzma.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "util/error.hpp"
#include "util/sha256.hpp"

namespace rbox::oci {
namespace {

constexpr size_t kInChunk = 1 << 20;
constexpr size_t kOutChunk = 1 << 20;
constexpr size_t kQueued = 8;

enum class Codec { kNone, kGzip, kZstd, kXz };

Codec sniff(const unsigned char* p, size_t n) {
  if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) return Codec::kGzip;
  if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) return Codec::kZstd;
  if (n >= 6 && std::memcmp(p,
                            "\xfd"
                            "7zXZ\0",
                            6) == 0)
    return Codec::kXz;
  return Codec::kNone;
}

}  // namespace

LayerStream::LayerStream(const Blob& blob, std::string what, std::function<void(int64_t)> progress)
    : fd_(::fcntl(blob.fd.get(), F_DUPFD_CLOEXEC, 0)),
      feed_(blob.feed),
      offset_(blob.offset),
      size_(blob.size),
      what_(std::move(what)),
      progress_(std::move(progress)) {
  if (!fd_) throw sys_error("dup layer blob of", what_);
  worker_ = std::thread([this] { run(); });
}

LayerStream::~LayerStream() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void LayerStream::produce(std::string&& chunk) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stop_ || queue_.size() < kQueued; });
  if (stop_) throw Error("stopped");
  queue_.push_back(std::move(chunk));
  cv_.notify_all();
}

std::string_view LayerStream::next() {
  std::unique_lock lock(mu_);
  if (!current_.empty() || current_.capacity() > 0) free_.push_back(std::move(current_));
  current_.clear();
  cv_.notify_all();
  cv_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (!queue_.empty()) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return current_;
  }
  if (error_) std::rethrow_exception(error_);
  return {};
}

std::string LayerStream::finish() {
  while (!next().empty()) {
  }
  std::lock_guard lock(mu_);
  return diff_id_;
}

void LayerStream::run() {
  Sha256 hash;
  std::string in(kInChunk, '\0');
  int64_t pos = 0;
  auto take_buffer = [&] {
    std::string b;
    {
      std::lock_guard lock(mu_);
      if (!free_.empty()) {
        b = std::move(free_.back());
        free_.pop_back();
      }
    }
    b.resize(kOutChunk);
    return b;
  };
  auto emit = [&](std::string&& b, size_t n) {
    b.resize(n);
    hash.update(b.data(), n);
    total_out_ += n;
    produce(std::move(b));
  };
  auto read_in = [&]() -> size_t {
    size_t want = static_cast<size_t>(std::min<int64_t>(size_ - pos, static_cast<int64_t>(kInChunk)));
    size_t got = 0;
    while (got < want) {
      // A blob still downloading: wait until the bytes are there (rethrows a failed download).
      if (feed_) feed_->wait_for(pos + static_cast<int64_t>(want));
      ssize_t n = ::pread(fd_.get(), in.data() + got, want - got, offset_ + pos + static_cast<int64_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw sys_error("read layer " + what_);
      if (n == 0 && !feed_) throw Error(what_ + ": the blob is shorter than its size");
      if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the download restarted
      got += static_cast<size_t>(n);
    }
    pos += static_cast<int64_t>(got);
    if (progress_) progress_(pos);
    return got;
  };
  try {
    size_t avail = read_in();
    Codec codec = sniff(reinterpret_cast<const unsigned char*>(in.data()), avail);
    if (codec == Codec::kNone) {
      for (;;) {
        if (avail > 0) {
          std::string b = take_buffer();
          std::memcpy(b.data(), in.data(), avail);
          emit(std::move(b), avail);
        }
        if (pos >= size_) break;
        avail = read_in();
      }
    } else if (codec == Codec::kGzip) {
      z_stream z{};
      if (inflateInit2(&z, 15 + 32) != Z_OK) throw Error(what_ + ": cannot initialise zlib");
      struct Guard {
        z_stream* z;
        ~Guard() { inflateEnd(z); }
      } guard{&z};
      z.next_in = reinterpret_cast<Bytef*>(in.data());
      z.avail_in = static_cast<uInt>(avail);
      std::string out = take_buffer();
      size_t filled = 0;
      bool ended = false;  // the current member reached Z_STREAM_END
      for (;;) {
        if (z.avail_in == 0 && pos < size_) {
          avail = read_in();
          z.next_in = reinterpret_cast<Bytef*>(in.data());
          z.avail_in = static_cast<uInt>(avail);
        }
        if (ended) {
          if (z.avail_in == 0) break;
          // Concatenated gzip members (pigz, some builders): continue with the next one.
          inflateReset(&z);
          ended = false;
        }
        z.next_out = reinterpret_cast<Bytef*>(out.data() + filled);
        z.avail_out = static_cast<uInt>(out.size() - filled);
        int rc = inflate(&z, Z_NO_FLUSH);
        filled = out.size() - z.avail_out;
        bool full = filled == out.size();
        if (full) {
          emit(std::move(out), filled);
          out = take_buffer();
          filled = 0;
        }
        if (rc == Z_STREAM_END) {
          ended = true;
          continue;
        }
        if (rc == Z_BUF_ERROR || (rc == Z_OK && z.avail_in == 0 && pos >= size_ && !full)) {
          if (z.avail_in == 0 && pos >= size_ && !full)
            throw Error(what_ + ": the gzip data ends early (truncated layer)");
          if (rc == Z_BUF_ERROR && !full && z.avail_in != 0) throw Error(what_ + ": corrupt gzip data");
          continue;
        }
        if (rc != Z_OK)
          throw Error(what_ + ": corrupt gzip data (" + std::string(z.msg ? z.msg : "zlib error") + ")");
      }
      if (filled > 0) emit(std::move(out), filled);
    } else if (codec == Codec::kZstd) {
      ZSTD_DCtx* dctx = ZSTD_createDCtx();
      if (!dctx) throw Error(what_ + ": cannot initialise zstd");
      struct Guard {
        ZSTD_DCtx* d;
        ~Guard() { ZSTD_freeDCtx(d); }
      } guard{dctx};
      ZSTD_inBuffer zin{in.data(), avail, 0};
      std::string out = take_buffer();
      for (;;) {
        ZSTD_outBuffer zout{out.data(), out.size(), 0};
        size_t rc = ZSTD_decompressStream(dctx, &zout, &zin);
        if (ZSTD_isError(rc)) throw Error(what_ + ": corrupt zstd data (" + ZSTD_getErrorName(rc) + ")");
        bool full = zout.pos == zout.size;
        if (zout.pos > 0) {
          emit(std::move(out), zout.pos);
          out = take_buffer();
        }
        if (zin.pos == zin.size && !full) {
          if (pos >= size_) {
            if (rc != 0) throw Error(what_ + ": the zstd data ends early (truncated layer)");
            break;
          }
          avail = read_in();
          zin = {in.data(), avail, 0};
        }
      }
    } else {
      lzma_stream xz = LZMA_STREAM_INIT;
      if (lzma_stream_decoder(&xz, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
        throw Error(what_ + ": cannot initialise xz");
      struct Guard {
        lzma_stream* s;
        ~Guard() { lzma_end(s); }
      } guard{&xz};
      xz.next_in = reinterpret_cast<const uint8_t*>(in.data());
      xz.avail_in = avail;
      for (;;) {
        lzma_action action = LZMA_RUN;
        if (xz.avail_in == 0) {
          if (pos >= size_)
            action = LZMA_FINISH;
          else {
            avail = read_in();
            xz.next_in = reinterpret_cast<const uint8_t*>(in.data());
            xz.avail_in = avail;
          }
        }
        std::string out = take_buffer();
        xz.next_out = reinterpret_cast<uint8_t*>(out.data());
        xz.avail_out = out.size();
        lzma_ret rc = lzma_code(&xz, action);
        size_t n = out.size() - xz.avail_out;
        if (n > 0) emit(std::move(out), n);
        if (rc == LZMA_STREAM_END) break;
        if (rc != LZMA_OK) throw Error(what_ + ": corrupt xz data (lzma error " + std::to_string(rc) + ")");
      }
    }
    std::lock_guard lock(mu_);
    diff_id_ = "sha256:" + hash.hex_digest();
    done_ = true;
  } catch (...) {
    std::lock_guard lock(mu_);
    if (!stop_) error_ = std::current_exception();
    done_ = true;
  }
  cv_.notify_all();
}

}  // namespace rbox::oci
