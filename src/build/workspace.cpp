// Workspace (workspace.hpp): creation, state file, clean-up after failure, stale sweeping.
#include "build/workspace.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::build {
namespace {

constexpr const char* kPrefix = "rbox-build-";
constexpr std::time_t kUnlockedGrace = 3600;  // a workspace without a lock file is stale after 1 h

std::vector<std::pair<std::string, std::string>> read_state(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string text;
  try {
    text = fs::read_file(dir + "/state");
  } catch (const Error&) {
    return out;
  }
  for (const auto& line : str::split_lines(text)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

void discard_outputs(const std::vector<std::pair<std::string, std::string>>& state,
                     const std::string& keep = {}) {
  std::time_t since = 0;
  for (const auto& [k, v] : state)
    if (k == "started") since = static_cast<std::time_t>(std::atoll(v.c_str()));
  for (const auto& [k, v] : state) {
    try {
      if (k == "sandbox_tmp" && v != keep && fs::exists(v)) fs::remove_tree(v);
      if (k == "target") remove_partial_outputs(v, since);
    } catch (const Error& e) {
      log::warn("could not remove a partial build output: " + e.message());
    }
  }
}

std::optional<FileLock> try_lock(const std::string& path) {
  try {
    return FileLock::try_acquire(path);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

std::pair<std::string, std::string> Workspace::choose_parent(const std::string& tmpdir_option) {
  if (!tmpdir_option.empty()) return {fs::absolute(tmpdir_option), "--tmpdir"};
  if (const char* v = std::getenv("RBOX_TMPDIR"); v && *v) return {fs::absolute(v), "RBOX_TMPDIR"};
  if (const char* v = std::getenv("TMPDIR"); v && *v) return {fs::absolute(v), "TMPDIR"};
  return {"/tmp", "/tmp"};
}

Workspace Workspace::create(const std::string& parent, const std::string& where) {
  try {
    fs::mkdir_p(parent, 0700);
  } catch (const Error& e) {
    throw Error("cannot use " + parent + " for build space (" + where + "): " + e.message());
  }
  std::string tmpl = parent + "/" + kPrefix + "XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw Error("cannot create build space in " + parent + " (" + where + "): " + std::strerror(errno) +
                "; set RBOX_TMPDIR to a writable directory");
  Workspace w(parent, where, tmpl, FileLock::try_acquire(tmpl + "/lock"));
  if (!w.lock_) throw Error("internal: fresh build space " + tmpl + " is locked");
  w.record("pid", std::to_string(::getpid()));
  w.record("started", std::to_string(std::time(nullptr)));
  return w;
}

void Workspace::record(const std::string& key, const std::string& value) const {
  UniqueFd fd(::open((path_ + "/state").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) throw sys_error("open", path_ + "/state");
  std::string line = key + "=" + value + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    throw sys_error("write", path_ + "/state");
  ::fsync(fd.get());
}

std::vector<std::pair<std::string, std::string>> Workspace::state() const {
  return read_state(path_);
}

std::string Workspace::discard_failed(bool keep_rootfs) {
  auto st = state();
  std::string rootfs, kept;
  for (const auto& [k, v] : st)
    if (k == "rootfs") rootfs = v;
  if (keep_rootfs && !rootfs.empty() && fs::exists(rootfs)) {
    if (!str::starts_with(rootfs, path_ + "/")) {
      kept = rootfs;  // a sandbox being assembled next to the target: leave it where it is
    } else {
      std::string dst = parent_ + "/rbox-failed-XXXXXX";
      if (::mkdtemp(dst.data()) && ::rename(rootfs.c_str(), (dst + "/rootfs").c_str()) == 0)
        kept = dst + "/rootfs";
    }
  }
  discard_outputs(st, kept);
  remove();
  return kept;
}

void Workspace::remove() {
  lock_.reset();
  try {
    fs::remove_tree(path_);
  } catch (const Error& e) {
    log::warn("could not remove the build space " + path_ + ": " + e.message());
  }
}

std::string Workspace::space_hint() const {
  struct statvfs sv {};
  if (::statvfs(parent_.c_str(), &sv) != 0) return "";
  unsigned long long avail = static_cast<unsigned long long>(sv.f_bavail) * sv.f_frsize;
  if (avail >= (64ull << 20)) return "";
  std::string how = where_ == "/tmp" ? "set RBOX_TMPDIR (or TMPDIR) to a directory with more room"
                                     : "point " + where_ + " at a directory with more room";
  return "the build space " + parent_ + " (" + where_ + ") has only " + str::human_bytes(avail) + " free; " +
         how;
}

size_t Workspace::sweep_stale(const std::string& parent) {
  size_t removed = 0;
  DIR* d = ::opendir(parent.c_str());
  if (!d) return 0;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (str::starts_with(n, kPrefix)) names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string dir = parent + "/" + n;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
    // Only workspaces made by Workspace::create (they have a state file): other tools may use the
    // same prefix for their own temporary directories.
    if (!fs::exists(dir + "/state")) continue;
    const bool has_lock_file = fs::exists(dir + "/lock");
    std::optional<FileLock> lock = has_lock_file ? try_lock(dir + "/lock") : std::nullopt;
    if (has_lock_file && !lock) continue;  // a live build (or a lock we cannot take)
    if (!has_lock_file && std::time(nullptr) - st.st_mtime < kUnlockedGrace) continue;  // too recent to judge
    try {
      discard_outputs(read_state(dir));
      lock.reset();
      fs::remove_tree(dir);
      ++removed;
      log::verbose("removed the space of an interrupted build: " + dir);
    } catch (const Error& e) {
      log::warn("could not remove the space of an interrupted build " + dir + ": " + e.message());
    }
  }
  return removed;
}

void remove_partial_outputs(const std::string& target, std::time_t since) {
  const std::string dir = fs::dirname(target), prefix = fs::basename(target) + ".tmp-";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> victims;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (!str::starts_with(n, prefix)) continue;
    struct stat st {};
    std::string p = dir + "/" + n;
    if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::geteuid() &&
        st.st_mtime >= since)
      victims.push_back(p);
  }
  ::closedir(d);
  for (const auto& v : victims) ::unlink(v.c_str());
}

}  // namespace rbox::build
