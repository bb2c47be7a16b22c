// Tar member index (tar_index.hpp). Only header fields needed to locate member data are parsed;
// member names are looked up, never used as filesystem paths.
#include "oci/tar_index.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "oci/blob_store.hpp"
#include "oci/layer_stream.hpp"
#include "oci/root_dir.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

bool read_exact(int fd, char* buf, size_t n, int64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf + got, n - got, off + static_cast<int64_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

int64_t parse_number(const char* f, size_t n) {
  if (static_cast<unsigned char>(f[0]) & 0x80) {  // GNU base-256
    int64_t v = static_cast<unsigned char>(f[0]) & 0x3f;
    for (size_t i = 1; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(f[i]);
    return v;
  }
  int64_t v = 0;
  for (size_t i = 0; i < n && f[i]; ++i) {
    if (f[i] == ' ') continue;
    if (f[i] < '0' || f[i] > '7') break;
    v = v * 8 + (f[i] - '0');
  }
  return v;
}

std::string field(const char* f, size_t n) {
  return std::string(f, strnlen(f, n));
}

std::string normalize(const std::string& name) {
  return clean_member_path(name);
}

// Pax records: "LEN key=value\n" …
void parse_pax(const std::string& data, std::string* path, std::string* link, int64_t* size) {
  size_t i = 0;
  while (i < data.size()) {
    size_t sp = data.find(' ', i);
    if (sp == std::string::npos) break;
    long len = std::strtol(data.c_str() + i, nullptr, 10);
    if (len <= 0 || i + static_cast<size_t>(len) > data.size()) break;
    std::string rec = data.substr(sp + 1, i + static_cast<size_t>(len) - sp - 2);
    auto eq = rec.find('=');
    if (eq != std::string::npos) {
      std::string k = rec.substr(0, eq), v = rec.substr(eq + 1);
      if (k == "path")
        *path = v;
      else if (k == "linkpath")
        *link = v;
      else if (k == "size")
        *size = std::strtoll(v.c_str(), nullptr, 10);
    }
    i += static_cast<size_t>(len);
  }
}

}  // namespace

TarIndex::TarIndex(const std::string& path) : path_(path) {
  fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd_) throw sys_error("open archive", path);
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0 || !S_ISREG(st.st_mode)) throw Error(path + " is not a regular file");
  unsigned char magic[6] = {0};
  ::pread(fd_.get(), magic, sizeof magic, 0);
  bool compressed = (magic[0] == 0x1f && magic[1] == 0x8b) || (magic[0] == 0x28 && magic[1] == 0xb5) ||
                    (magic[0] == 0xfd && magic[1] == '7');
  if (compressed) {
    // Decompress once into a temporary file so members can be read in place.
    temp_.emplace("rbox-archive-");
    std::string out = temp_->path() + "/archive.tar";
    UniqueFd ofd(::open(out.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!ofd) throw sys_error("create", out);
    Blob b{UniqueFd(::dup(fd_.get())), 0, st.st_size, "", {}};
    LayerStream s(b, path);
    for (std::string_view chunk = s.next(); !chunk.empty(); chunk = s.next()) {
      size_t done = 0;
      while (done < chunk.size()) {
        ssize_t w = ::write(ofd.get(), chunk.data() + done, chunk.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw sys_error("write", out);
        done += static_cast<size_t>(w);
      }
    }
    fd_ = std::move(ofd);
    if (::fstat(fd_.get(), &st) != 0) throw sys_error("stat", out);
  }
  int64_t off = 0, end = st.st_size;
  std::string long_name, long_link, pax_path, pax_link;
  int64_t pax_size = -1;
  char h[512];
  while (off + 512 <= end) {
    if (!read_exact(fd_.get(), h, 512, off))
      throw Error(path + ": cannot read the tar header at " + std::to_string(off));
    bool zero = true;
    for (char c : h)
      if (c) {
        zero = false;
        break;
      }
    if (zero) break;
    char type = h[156];
    int64_t size = parse_number(h + 124, 12);
    if (size < 0 || off + 512 + size > end) throw Error(path + ": truncated or corrupt tar archive");
    int64_t data = off + 512;
    int64_t next = data + ((size + 511) / 512) * 512;
    if (type == 'L' || type == 'K' || type == 'x') {
      if (size > (1 << 20)) throw Error(path + ": tar extension header larger than 1 MiB");
      std::string d(static_cast<size_t>(size), '\0');
      if (!read_exact(fd_.get(), d.data(), d.size(), data)) throw Error(path + ": truncated tar archive");
      if (type == 'L')
        long_name = field(d.data(), d.size());
      else if (type == 'K')
        long_link = field(d.data(), d.size());
      else
        parse_pax(d, &pax_path, &pax_link, &pax_size);
      off = next;
      continue;
    }
    if (type == 'g') {
      off = next;
      continue;
    }
    std::string name = field(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0 && h[345]) name = field(h + 345, 155) + "/" + name;
    std::string link = field(h + 157, 100);
    if (!long_name.empty()) name = long_name;
    if (!pax_path.empty()) name = pax_path;
    if (!long_link.empty()) link = long_link;
    if (!pax_link.empty()) link = pax_link;
    if (pax_size >= 0) {
      size = pax_size;
      next = data + ((size + 511) / 512) * 512;
      if (data + size > end) throw Error(path + ": truncated tar archive");
    }
    long_name.clear();
    long_link.clear();
    pax_path.clear();
    pax_link.clear();
    pax_size = -1;
    members_[normalize(name)] = Raw{type, data, size, link};
    off = next;
  }
}

std::optional<TarIndex::Member> TarIndex::find(const std::string& name) const {
  std::string n = normalize(name);
  for (int hops = 0; hops < 8; ++hops) {
    auto it = members_.find(n);
    if (it == members_.end()) return std::nullopt;
    const Raw& r = it->second;
    if (r.type == '0' || r.type == '\0' || r.type == '7') return Member{r.offset, r.size};
    if (r.type == '2') {  // symlink: relative to the member's directory
      auto [parent, base] = split_parent(n);
      n = normalize(r.link[0] == '/' ? r.link : (parent.empty() ? "" : parent + "/") + r.link);
      continue;
    }
    if (r.type == '1') {  // hard link: names another member
      n = normalize(r.link);
      continue;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::string TarIndex::read(const std::string& name, size_t max_size) const {
  auto m = find(name);
  if (!m) throw Error(path_ + ": the archive has no " + name);
  if (m->size > static_cast<int64_t>(max_size))
    throw Error(path_ + ": " + name + " is larger than " + str::human_bytes(max_size));
  std::string out(static_cast<size_t>(m->size), '\0');
  if (!read_exact(fd_.get(), out.data(), out.size(), m->offset)) throw Error(path_ + ": cannot read " + name);
  return out;
}

}  // namespace rbox::oci
