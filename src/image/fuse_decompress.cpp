// Per-thread SquashFS block decompression (see fuse_decompress.hpp). Contexts are created once
// per worker: FUSE.md §3.4 measured a fresh zstd context per block at +0.3 ms per start-up and
// zlib at +5.5 ms against libdeflate on gzip images. Must not allocate per block.
#include "image/fuse_decompress.hpp"

#include <libdeflate.h>
#include <lz4.h>
#include <lzma.h>
#include <sqfs/compressor.h>
#include <sqfs/predef.h>
#include <zstd.h>

#include <cstdint>
#include <limits>

#include "util/error.hpp"

namespace rbox::image::fuse {

const char* codec_name(uint16_t id) {
  switch (static_cast<Codec>(id)) {
    case Codec::kGzip:
      return "gzip";
    case Codec::kLzma:
      return "lzma";
    case Codec::kLzo:
      return "lzo";
    case Codec::kXz:
      return "xz";
    case Codec::kLz4:
      return "lz4";
    case Codec::kZstd:
      return "zstd";
  }
  return "unknown";
}

bool codec_supported(uint16_t codec) {
  switch (static_cast<Codec>(codec)) {
    case Codec::kGzip:
    case Codec::kXz:
    case Codec::kLz4:
    case Codec::kZstd:
      return true;
    case Codec::kLzma:
    case Codec::kLzo: {
      // Whether libsquashfs was built with the codec: try to create a decompressor.
      sqfs_compressor_config_t cfg;
      if (sqfs_compressor_config_init(&cfg, static_cast<SQFS_COMPRESSOR>(codec), 131072,
                                      SQFS_COMP_FLAG_UNCOMPRESS) != 0)
        return false;
      sqfs_compressor_t* c = nullptr;
      if (sqfs_compressor_create(&cfg, &c) != 0 || c == nullptr) return false;
      sqfs_destroy(c);
      return true;
    }
  }
  return false;
}

Decompressor::Decompressor(uint16_t codec, uint32_t block_size) : codec_(codec) {
  switch (static_cast<Codec>(codec)) {
    case Codec::kZstd:
      zstd_ = ZSTD_createDCtx();
      if (zstd_ == nullptr) throw Error("cannot allocate a zstd decompression context");
      return;
    case Codec::kGzip:
      deflate_ = libdeflate_alloc_decompressor();
      if (deflate_ == nullptr) throw Error("cannot allocate a deflate decompressor");
      return;
    case Codec::kLz4:
    case Codec::kXz:
      return;  // stateless one-shot APIs
    case Codec::kLzma:
    case Codec::kLzo: {
      sqfs_compressor_config_t cfg;
      if (sqfs_compressor_config_init(&cfg, static_cast<SQFS_COMPRESSOR>(codec), block_size,
                                      SQFS_COMP_FLAG_UNCOMPRESS) == 0 &&
          sqfs_compressor_create(&cfg, &generic_) == 0 && generic_ != nullptr)
        return;
      break;
    }
  }
  throw Error(std::string("SquashFS compressor '") + codec_name(codec) +
              "' is not supported by this rbox build; repack the image with zstd or gzip");
}

Decompressor::~Decompressor() {
  if (zstd_ != nullptr) ZSTD_freeDCtx(zstd_);
  if (deflate_ != nullptr) libdeflate_free_decompressor(deflate_);
  if (generic_ != nullptr) sqfs_destroy(generic_);
}

long Decompressor::decompress(const void* in, size_t in_size, void* out, size_t out_capacity) {
  switch (static_cast<Codec>(codec_)) {
    case Codec::kZstd: {
      size_t n = ZSTD_decompressDCtx(zstd_, out, out_capacity, in, in_size);
      return ZSTD_isError(n) ? -1 : static_cast<long>(n);
    }
    case Codec::kGzip: {
      // SquashFS "gzip" blocks are zlib streams (RFC 1950), as written by compress2().
      size_t n = 0;
      auto r = libdeflate_zlib_decompress(deflate_, in, in_size, out, out_capacity, &n);
      return r == LIBDEFLATE_SUCCESS ? static_cast<long>(n) : -1;
    }
    case Codec::kLz4: {
      if (in_size > static_cast<size_t>(std::numeric_limits<int>::max()) ||
          out_capacity > static_cast<size_t>(std::numeric_limits<int>::max()))
        return -1;
      int n = LZ4_decompress_safe(static_cast<const char*>(in), static_cast<char*>(out),
                                  static_cast<int>(in_size), static_cast<int>(out_capacity));
      return n < 0 ? -1 : n;
    }
    case Codec::kXz: {
      // Each block is a complete .xz stream (filters and check in its own headers).
      uint64_t memlimit = std::numeric_limits<uint64_t>::max();
      size_t in_pos = 0, out_pos = 0;
      lzma_ret r = lzma_stream_buffer_decode(&memlimit, 0, nullptr, static_cast<const uint8_t*>(in), &in_pos,
                                             in_size, static_cast<uint8_t*>(out), &out_pos, out_capacity);
      return r == LZMA_OK ? static_cast<long>(out_pos) : -1;
    }
    case Codec::kLzma:
    case Codec::kLzo: {
      if (in_size > UINT32_MAX || out_capacity > UINT32_MAX) return -1;
      sqfs_s32 n =
          generic_->do_block(generic_, static_cast<const sqfs_u8*>(in), static_cast<sqfs_u32>(in_size),
                             static_cast<sqfs_u8*>(out), static_cast<sqfs_u32>(out_capacity));
      return n <= 0 ? -1 : n;
    }
  }
  return -1;
}

}  // namespace rbox::image::fuse
