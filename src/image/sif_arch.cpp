// Root-filesystem architecture detection (see sif_arch.hpp). /bin/sh is usually a symlink
// (sh → dash, /bin → usr/bin), so it is resolved with openat2(RESOLVE_IN_ROOT): absolute links and
// ".." stay inside the tree (openat2(2)). The fallback walk opens every component with O_NOFOLLOW.
#include "image/sif_arch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "util/fd.hpp"

namespace rbox::image {
namespace {

constexpr uint16_t kEm386 = 3, kEmMips = 8, kEmPpc64 = 21, kEmS390 = 22, kEmArm = 40, kEmX8664 = 62,
                   kEmAarch64 = 183, kEmRiscv = 243, kEmLoongarch = 258;

UniqueFd open_in_root(int rootfd, const char* path) {
  struct open_how how {};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  long fd = ::syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  return UniqueFd(fd < 0 ? -1 : static_cast<int>(fd));
}

std::string read_head(int fd) {
  char buf[64];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Apptainer's fallback: the first executable regular file (in lexical walk order) that is ELF.
std::optional<std::string> first_executable_elf(int dirfd, int depth, size_t& budget) {
  if (depth > 64) return std::nullopt;
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return std::nullopt;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return std::nullopt;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (budget == 0) return std::nullopt;
    --budget;
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) continue;
      if (auto a = first_executable_elf(sub.get(), depth + 1, budget)) return a;
    } else if (S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0) {
      UniqueFd f(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
      if (!f) continue;
      if (auto a = elf_goarch(read_head(f.get()))) return a;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> elf_goarch(std::string_view h) {
  if (h.size() < 20 || h.compare(0, 4,
                                 "\x7f"
                                 "ELF") != 0)
    return std::nullopt;
  const bool is64 = h[4] == 2;
  const bool little = h[5] == 1;
  auto b = [&](size_t i) { return static_cast<uint16_t>(static_cast<unsigned char>(h[i])); };
  const uint16_t machine =
      little ? static_cast<uint16_t>(b(18) | (b(19) << 8)) : static_cast<uint16_t>((b(18) << 8) | b(19));
  switch (machine) {
    case kEm386:
      return "386";
    case kEmX8664:
      return "amd64";
    case kEmArm:
      return "arm";
    case kEmAarch64:
      return "arm64";
    case kEmPpc64:
      return little ? "ppc64le" : "ppc64";
    case kEmMips:
      if (is64) return little ? "mips64le" : "mips64";
      return little ? "mipsle" : "mips";
    case kEmS390:
      return "s390x";
    case kEmRiscv:
      return is64 ? std::optional<std::string>("riscv64") : std::nullopt;
    case kEmLoongarch:
      return "loong64";
    default:
      return std::nullopt;
  }
}

std::string host_goarch() {
  struct utsname u;
  if (::uname(&u) != 0) return "unknown";
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "i386" || m == "i486" || m == "i586" || m == "i686") return "386";
  if (m == "aarch64" || m == "arm64") return "arm64";
  if (m.rfind("arm", 0) == 0) return "arm";
  if (m == "ppc64le") return "ppc64le";
  if (m == "ppc64") return "ppc64";
  if (m == "s390x") return "s390x";
  if (m == "riscv64") return "riscv64";
  if (m == "loongarch64") return "loong64";
  if (m == "mips64") return "mips64";
  if (m == "mips") return "mips";
  return m;
}

std::string rootfs_goarch(const std::string& root_dir) {
  UniqueFd root(::open(root_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root) {
    UniqueFd sh = open_in_root(root.get(), "bin/sh");
    if (sh) {
      struct stat st;
      if (::fstat(sh.get(), &st) == 0 && S_ISREG(st.st_mode)) {
        if (auto a = elf_goarch(read_head(sh.get()))) return *a;
      }
    }
    size_t budget = 200000;  // entries visited at most; a rootfs without any ELF is small anyway
    if (auto a = first_executable_elf(root.get(), 0, budget)) return *a;
  }
  return host_goarch();
}

}  // namespace rbox::image
