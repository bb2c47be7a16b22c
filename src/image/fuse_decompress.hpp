// One decompressor per FUSE worker thread for SquashFS data and metadata blocks: zstd with a
// reused context, gzip through libdeflate, lz4 and xz directly, lzma/lzo through libsquashfs.
// Not thread-safe by design: never share an instance between threads.
#pragma once

#include <cstddef>
#include <cstdint>

struct ZSTD_DCtx_s;
struct libdeflate_decompressor;
struct sqfs_compressor_t;

namespace rbox::image::fuse {

// SquashFS compressor ids (superblock field "compression_id").
enum class Codec : uint16_t { kGzip = 1, kLzma = 2, kLzo = 3, kXz = 4, kLz4 = 5, kZstd = 6 };

const char* codec_name(uint16_t id);

class Decompressor {
 public:
  // block_size: the image's data block size (an upper bound for any decompressed block).
  Decompressor(uint16_t codec, uint32_t block_size);
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  // Decompresses one whole block. Returns the decompressed size, or -1 when the input is
  // corrupt or does not fit in out_capacity.
  long decompress(const void* in, size_t in_size, void* out, size_t out_capacity);

  uint16_t codec() const { return codec_; }

 private:
  uint16_t codec_;
  ZSTD_DCtx_s* zstd_ = nullptr;
  libdeflate_decompressor* deflate_ = nullptr;
  sqfs_compressor_t* generic_ = nullptr;  // lzma, lzo
};

// True when this build can read images made with the codec.
bool codec_supported(uint16_t codec);

}  // namespace rbox::image::fuse
