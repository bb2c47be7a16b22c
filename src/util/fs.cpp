// Implementation of util/fs.hpp.
#include "util/fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <vector>

#include "util/error.hpp"

namespace rbox::fs {

std::string read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open", path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

static void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void write_file(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) throw sys_error("create", path);
  write_all(fd.get(), data, path);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (!dir) {
    if (errno == ENOENT) return names;
    throw sys_error("opendir", path);
  }
  while (struct dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void mkdir_p(const std::string& path, mode_t mode) {
  if (path.empty()) return;
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) throw sys_error("mkdir", cur);
  }
  if (!is_dir(path)) throw Error("mkdir " + path + ": exists and is not a directory");
}

static void remove_at(int dirfd, const char* name, const std::string& shown) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) throw sys_error("unlink", shown);
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    ::fchmodat(dirfd, name, 0700, 0);
    fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) throw sys_error("open", shown);
  struct stat st;
  if (::fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700) ::fchmod(fd, st.st_mode | 0700);
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    ::close(fd);
    throw sys_error("opendir", shown);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  for (const auto& n : names) remove_at(::dirfd(dir), n.c_str(), shown + "/" + n);
  ::closedir(dir);
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) throw sys_error("rmdir", shown);
}

void remove_tree(const std::string& path) {
  if (path.empty() || path == "/") throw Error("refusing to remove '" + path + "'");
  remove_at(AT_FDCWD, path.c_str(), path);
}

std::string dirname(const std::string& path) {
  auto p = path.find_last_of('/');
  if (p == std::string::npos) return ".";
  if (p == 0) return "/";
  return path.substr(0, p);
}

std::string basename(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto pos = p.find_last_of('/');
  return pos == std::string::npos ? p : p.substr(pos + 1);
}

std::string absolute(const std::string& path) {
  std::string in = path;
  if (in.empty() || in[0] != '/') {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) throw sys_error("getcwd");
    in = std::string(cwd) + "/" + in;
  }
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= in.size()) {
    size_t j = in.find('/', i);
    if (j == std::string::npos) j = in.size();
    std::string part = in.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::string temp_root() {
  for (const char* var : {"RBOX_TMPDIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v && *v) return v;
  }
  return "/tmp";
}

AtomicFile::AtomicFile(std::string path, mode_t mode) : path_(std::move(path)) {
  temp_ = path_ + ".tmp-XXXXXX";
  int fd = ::mkostemp(temp_.data(), O_CLOEXEC);
  if (fd < 0) throw sys_error("create", temp_);
  fd_.reset(fd);
  ::fchmod(fd, mode);
}

AtomicFile::~AtomicFile() {
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::string_view data) {
  write_all(fd_.get(), data, temp_);
}

void AtomicFile::commit() {
  if (::fsync(fd_.get()) != 0) throw sys_error("fsync", temp_);
  fd_.reset();
  if (::rename(temp_.c_str(), path_.c_str()) != 0) throw sys_error("rename " + temp_ + " to", path_);
  committed_ = true;
}

TempDir::TempDir(const std::string& prefix, const std::string& parent) {
  std::string base = parent.empty() ? temp_root() : parent;
  std::string tmpl = base + "/" + prefix + "XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    int err = errno;
    std::string hint = err == ENOSPC ? " (set RBOX_TMPDIR to a directory with more space)" : "";
    throw Error(sys_error("create temporary directory in", base, err).message() + hint);
  }
  path_ = tmpl;
}

TempDir::TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)), keep_(o.keep_) {
  o.path_.clear();
}

TempDir::~TempDir() {
  if (path_.empty() || keep_) return;
  try {
    remove_tree(path_);
  } catch (...) {
  }
}

}  // namespace rbox::fs
