// Unit tests for oci/layer_stream: gzip (also concatenated members), zstd, xz and plain blobs
// decode to the same bytes with the right DiffID; truncated and corrupt data fail clearly.
#include "oci/layer_stream.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <lzma.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <random>
#include <thread>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

using namespace rbox;
using namespace rbox::oci;

namespace {

std::string gzip(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}

std::string xz(const std::string& in) {
  std::string out(lzma_stream_buffer_bound(in.size()), '\0');
  size_t pos = 0;
  lzma_easy_buffer_encode(1, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const uint8_t*>(in.data()),
                          in.size(), reinterpret_cast<uint8_t*>(out.data()), &pos, out.size());
  out.resize(pos);
  return out;
}

// Several MiB of compressible but not trivial data (crosses the 1 MiB chunk boundaries).
std::string payload() {
  std::mt19937 rng(42);
  std::string s;
  while (s.size() < (5u << 20) + 12345) {
    s += "line " + std::to_string(rng() % 1000) + " of a tar-like payload\n";
    if (rng() % 7 == 0) s += std::string(rng() % 3000, static_cast<char>('a' + rng() % 26));
  }
  return s;
}

struct BlobFile {
  std::unique_ptr<fs::TempDir> dir = std::make_unique<fs::TempDir>("rbox-stream-test-");
  Blob blob(const std::string& data, const std::string& prefix = "") {
    std::string p = dir->path() + "/blob" + std::to_string(n++);
    fs::write_file(p, prefix + data);
    Blob b;
    b.fd.reset(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    b.offset = static_cast<int64_t>(prefix.size());
    b.size = static_cast<int64_t>(data.size());
    return b;
  }
  int n = 0;
};

std::string drain(LayerStream& s) {
  std::string out;
  for (std::string_view c = s.next(); !c.empty(); c = s.next()) out.append(c);
  return out;
}

}  // namespace

TEST(LayerStream, AllCodecsGiveTheSameBytesAndDiffId) {
  BlobFile f;
  std::string data = payload();
  std::string want = "sha256:" + Sha256::hex(data);
  std::string gz = gzip(data);
  for (const auto& [name, blob] : std::vector<std::pair<std::string, std::string>>{
           {"plain", data},
           {"gzip", gz},
           {"zstd", zstd(data)},
           {"xz", xz(data)},
           // Two gzip members back to back (pigz-style) decode as one stream.
           {"gzip-members", gzip(data.substr(0, 1000000)) + gzip(data.substr(1000000))}}) {
    SCOPED_TRACE(name);
    int64_t last_progress = 0;
    // An offset into the file, as for blobs inside an archive.
    LayerStream s(f.blob(blob, "PREFIX-BYTES"), name, [&](int64_t done) { last_progress = done; });
    EXPECT_EQ(drain(s), data);
    EXPECT_EQ(s.finish(), want);
    EXPECT_EQ(s.uncompressed_bytes(), data.size());
    EXPECT_EQ(last_progress, static_cast<int64_t>(blob.size()));
  }
}

TEST(LayerStream, FinishReadsTheRest) {
  BlobFile f;
  std::string data = payload();
  LayerStream s(f.blob(zstd(data)), "x");
  s.next();  // stop early, as the tar parser does at the end-of-archive blocks
  EXPECT_EQ(s.finish(), "sha256:" + Sha256::hex(data));
}

TEST(LayerStream, TruncatedAndCorruptFail) {
  BlobFile f;
  std::string data = payload();
  std::string gz = gzip(data), zs = zstd(data);
  for (const auto& [name, blob] : std::vector<std::pair<std::string, std::string>>{
           {"gzip-truncated", gz.substr(0, gz.size() / 2)},
           {"zstd-truncated", zs.substr(0, zs.size() / 2)},
           {"xz-truncated", xz(data).substr(0, 5000)},
           {"gzip-corrupt", gz.substr(0, 100) + std::string(5000, '\xff') + gz.substr(5100)}}) {
    SCOPED_TRACE(name);
    LayerStream s(f.blob(blob), "layer " + name);
    try {
      drain(s);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("layer " + name), std::string::npos) << e.what();
    }
  }
}

TEST(LayerStream, EmptyBlob) {
  BlobFile f;
  LayerStream s(f.blob(""), "empty");
  EXPECT_TRUE(s.next().empty());
  EXPECT_EQ(s.finish(), "sha256:" + Sha256::hex(""));
}

TEST(LayerStream, DestroyWhileRunning) {
  BlobFile f;
  std::string data = payload();
  for (int i = 0; i < 20; ++i) {
    LayerStream s(f.blob(gzip(data)), "x");
    if (i % 2) s.next();
  }  // the worker is stopped and joined without deadlock
}

TEST(LayerStream, FollowsAGrowingDownload) {
  // A blob applied while it downloads: the stream waits for bytes and ends with the download.
  BlobFile f;
  std::string data = payload(), gz = gzip(data);
  std::string path = f.dir->path() + "/growing";
  fs::write_file(path, "");
  Blob b;
  b.fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  b.size = static_cast<int64_t>(gz.size());
  b.feed = std::make_shared<BlobFeed>();
  std::thread writer([&] {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    for (size_t off = 0; off < gz.size(); off += 300000) {
      size_t n = std::min<size_t>(300000, gz.size() - off);
      ASSERT_EQ(::pwrite(fd, gz.data() + off, n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
      b.feed->update(static_cast<int64_t>(off + n));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::close(fd);
    b.feed->finish();
  });
  LayerStream s(b, "growing");
  EXPECT_EQ(drain(s), data);
  writer.join();
  EXPECT_NO_THROW(b.feed->wait_done());
}

TEST(LayerStream, FailedDownloadReachesTheReader) {
  BlobFile f;
  std::string path = f.dir->path() + "/failing";
  fs::write_file(path, "");
  Blob b;
  b.fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  b.size = 1000;
  b.feed = std::make_shared<BlobFeed>();
  std::thread failer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    b.feed->fail(std::make_exception_ptr(Error("blob sha256:x: the downloaded content hashes to y")));
  });
  LayerStream s(b, "failing");
  try {
    drain(s);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hashes to"), std::string::npos) << e.what();
  }
  failer.join();
}
