// BaseCache (base_cache.hpp). Layout: ROOT/<sha256(mode_key + key)>/tree, a "key" file naming
// what it holds, and ROOT/<hash>.lock (shared while in use, exclusive to evict). An entry appears
// by renaming a completed ROOT/.fill-XXXXXX directory into place.
#include "build/base_cache.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "container/fakeroot.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/nss.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace rbox::build {

BaseCache::BaseCache(std::string root, std::string mode_key)
    : root_(std::move(root)), mode_key_(std::move(mode_key)) {
  fs::mkdir_p(root_, 0700);
}

BaseCache::Entry BaseCache::get(const std::string& key,
                                const std::function<void(const std::string& dir)>& fill, bool* hit) {
  const std::string id = Sha256::hex(mode_key_ + "\n" + key).substr(0, 32);
  const std::string dir = root_ + "/" + id, lock_path = root_ + "/" + id + ".lock";
  Entry e;
  e.pin.emplace(lock_path, FileLock::Mode::kShared);
  e.tree = dir + "/tree";
  if (fs::is_dir(e.tree)) {
    *hit = true;
    ::utimensat(AT_FDCWD, dir.c_str(), nullptr, 0);  // mtime = last use, for eviction
    return e;
  }
  *hit = false;
  std::string tmp = root_ + "/.fill-XXXXXX";
  if (!::mkdtemp(tmp.data())) throw sys_error("create", tmp);
  try {
    fs::mkdir_p(tmp + "/tree", 0755);
    fill(tmp + "/tree");
    fs::write_file(tmp + "/key", mode_key_ + "\n" + key + "\n", 0600);
    if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      if (errno != EEXIST && errno != ENOTEMPTY) throw sys_error("rename", dir);
      fs::remove_tree(tmp);  // another build filled it first
    }
  } catch (...) {
    try {
      fs::remove_tree(tmp);
    } catch (const Error&) {
    }
    throw;
  }
  return e;
}

void BaseCache::evict(size_t keep) const {
  struct Item {
    std::string id;
    time_t used;
  };
  std::vector<Item> items;
  if (DIR* d = ::opendir(root_.c_str())) {
    while (dirent* ent = ::readdir(d)) {
      std::string n = ent->d_name;
      struct stat st {};
      if (n.size() == 32 && ::stat((root_ + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        items.push_back({n, st.st_mtime});
      // Fills abandoned by killed builds.
      if (str::starts_with(n, ".fill-") && ::stat((root_ + "/" + n).c_str(), &st) == 0 &&
          std::time(nullptr) - st.st_mtime > 3600) {
        try {
          fs::remove_tree(root_ + "/" + n);
        } catch (const Error&) {
        }
      }
    }
    ::closedir(d);
  }
  if (items.size() <= keep) return;
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.used > b.used; });
  for (size_t i = keep; i < items.size(); ++i) {
    auto lock = FileLock::try_acquire(root_ + "/" + items[i].id + ".lock");
    if (!lock) continue;  // in use
    try {
      fs::remove_tree(root_ + "/" + items[i].id);
      log::verbose("removed the cached base tree " + items[i].id);
    } catch (const Error& e) {
      log::verbose("could not remove the cached base tree " + items[i].id + ": " + e.message());
    }
  }
}

size_t clean_base_cache(const std::string& cache_root) {
  const std::string root = cache_root + "/rootfs";
  if (!fs::is_dir(root)) return 0;
  auto user = nss::current_user();
  auto plan = container::plan_fakeroot(user.name, ::getuid(), ::getgid());
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);
  int rc = container::run_in_user_namespace(plan, [&] {
    rd.reset();
    uint64_t removed = 0;
    std::vector<std::string> names;
    if (DIR* d = ::opendir(root.c_str())) {
      while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
      ::closedir(d);
    }
    for (const auto& n : names) {
      if (n.size() != 32 && !str::starts_with(n, ".fill-")) continue;
      std::optional<FileLock> lock;
      if (n.size() == 32) {
        lock = FileLock::try_acquire(root + "/" + n + ".lock");
        if (!lock) continue;  // a build is using it
      }
      fs::remove_tree(root + "/" + n);
      if (n.size() == 32) ::unlink((root + "/" + n + ".lock").c_str());
      ++removed;
    }
    ssize_t w = ::write(wr.get(), &removed, sizeof removed);
    (void)w;
    return 0;
  });
  wr.reset();
  uint64_t removed = 0;
  if (rc != 0 || ::read(rd.get(), &removed, sizeof removed) != sizeof removed)
    throw Error("could not clean the cached base trees in " + root);
  return static_cast<size_t>(removed);
}

std::string mount_overlay(const std::string& lower, const std::string& upper, const std::string& work,
                          const std::string& merged) {
  for (const auto* p : {&lower, &upper, &work})
    if (p->find_first_of(",:\\") != std::string::npos) return "the path " + *p + " has a ',' ':' or '\\'";
  std::string opts = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + ",userxattr";
  if (::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) != 0) return std::strerror(errno);
  return "";
}

std::string private_mount_namespace() {
  if (::unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return std::string("making / private: ") + std::strerror(errno);
  return "";
}

}  // namespace rbox::build
