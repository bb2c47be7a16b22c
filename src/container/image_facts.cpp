// Implementation of container/image_facts.hpp: a TreeView over the SquashFS reader, so the
// launcher resolves paths exactly as the child would through FUSE (mounts.cpp walk_in_root),
// with no kernel round trips. Never follows anything outside the image's own tree.
#include "container/image_facts.hpp"

#include <sys/stat.h>

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::container {

namespace {

namespace fuse = image::fuse;

// Files read this way are small text files; a bigger one is left to the child.
constexpr uint64_t kMaxText = 16u << 20;

class ReaderView : public sys::TreeView {
 public:
  explicit ReaderView(fuse::SquashfsReader& reader) : reader_(reader), ctx_(reader.make_context()) {}

  Node root() override { return reader_.root_ref(); }

  std::optional<mode_t> lookup(Node dir, const std::string& name, Node* child) override {
    auto inode = reader_.inode(*ctx_, dir);
    if (!inode->is_dir()) throw Error(name + ": parent is not a directory");
    auto listing = reader_.directory(*ctx_, *inode);
    const auto* e = listing->find(name);
    if (e == nullptr) return std::nullopt;
    *child = e->ref;
    return static_cast<mode_t>(reader_.inode(*ctx_, e->ref)->mode);
  }

  std::string readlink(Node link) override { return reader_.inode(*ctx_, link)->target; }

  // The regular file at node, or nullopt for anything else (or one too big to be a text file).
  std::optional<std::string> text(Node node) {
    auto inode = reader_.inode(*ctx_, node);
    if (!inode->is_reg() || inode->size > kMaxText) return std::nullopt;
    std::string out(inode->size, '\0');
    size_t n = reader_.read(*ctx_, *inode, 0, out.size(), out.data());
    out.resize(n);
    return out;
  }

  // The names in the directory at node (sorted bytewise, as SquashFS stores them).
  std::vector<std::string> names(Node node) {
    auto inode = reader_.inode(*ctx_, node);
    std::vector<std::string> out;
    if (!inode->is_dir()) return out;
    auto listing = reader_.directory(*ctx_, *inode);
    for (const auto& e : listing->entries) out.emplace_back(listing->name(e));
    return out;
  }

 private:
  fuse::SquashfsReader& reader_;
  fuse::SquashfsReader::ContextPtr ctx_;
};

// A regular file's text after following symlinks inside the image; nullopt when missing or not
// a regular file (as the child's image_file() and stat() would see it).
std::optional<std::string> file_text(ReaderView& view, const std::string& path) {
  sys::TreeView::Node node = 0;
  sys::Resolved r = sys::resolve_in_view(view, path, &node);
  if (!r.missing.empty() || r.last_is_dir) return std::nullopt;
  return view.text(node);
}

// One path lies within the other: a mount on either changes what the other shows.
bool overlaps(const std::string& a, const std::string& b) {
  return path_within(a, b) || path_within(b, a);
}

// read_image_environment() of child.cpp, from the reader: the *.sh files of
// /.singularity.d/env that are regular files, sorted by name; else /environment.
std::optional<ImageEnvironment> environment(ReaderView& view) {
  ImageEnvironment out;
  sys::TreeView::Node node = 0;
  sys::Resolved dir = sys::resolve_in_view(view, "/.singularity.d/env", &node);
  if (dir.missing.empty() && dir.last_is_dir) {
    // A directory reached through a symlink elsewhere is left to the child.
    if (dir.canonical() != "/.singularity.d/env") return std::nullopt;
    out.has_env_dir = true;
    for (const auto& n : view.names(node)) {
      if (n.size() <= 3 || !str::ends_with(n, ".sh")) continue;
      sys::TreeView::Node child = 0;
      auto mode = view.lookup(node, n, &child);
      if (!mode) continue;
      if (S_ISLNK(*mode)) return std::nullopt;  // may point under a bind mount
      if (!S_ISREG(*mode)) continue;
      auto text = view.text(child);
      if (!text) return std::nullopt;
      out.files.push_back({n, std::move(*text)});
    }
    return out;
  }
  if (!dir.missing.empty()) {
    sys::TreeView::Node file = 0;
    sys::Resolved legacy = sys::resolve_in_view(view, "/environment", &file);
    if (legacy.canonical() != "/environment" && legacy.missing.empty()) return std::nullopt;
    if (legacy.missing.empty() && !legacy.last_is_dir) {
      out.legacy_file = view.text(file);
      if (!out.legacy_file) return std::nullopt;
    }
    return out;
  }
  return std::nullopt;  // /.singularity.d/env is a file: let the child see what it sees
}

// The directories of the default PATH that resolve to a directory of
// the image, lie under no mount of the plan and have no entry named the command. Only absence is
// recorded: an entry that exists (a file, a link to anywhere) is left to execve.
void absent_from_path(const Plan& plan, ReaderView& view, ImageFacts* facts) {
  const std::string& cmd = plan.args[0];
  if (cmd.empty() || cmd.find('/') != std::string::npos || cmd == "." || cmd == "..") return;
  facts->command = cmd;
  for (const char* dir : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    sys::TreeView::Node node = 0;
    sys::Resolved r = sys::resolve_in_view(view, dir, &node);
    if (!r.missing.empty() || !r.last_is_dir) continue;
    bool mounted = false;
    for (const auto& m : plan.mounts)
      mounted = mounted || overlaps(m.target, dir) || overlaps(m.target, r.canonical());
    if (mounted) continue;
    sys::TreeView::Node child = 0;
    if (!view.lookup(node, cmd, &child)) facts->command_absent_in.push_back(dir);
  }
}

}  // namespace

ImageFacts learn_image_facts(const Plan& plan, image::fuse::SquashfsReader& reader) {
  ImageFacts facts;
  try {
    ReaderView view(reader);
    bool env_safe = plan.root.overlays.empty();
    facts.targets.resize(plan.mounts.size());
    for (size_t i = 0; i < plan.mounts.size(); ++i) {
      auto& t = facts.targets[i];
      try {
        t.resolved = sys::resolve_in_view(view, plan.mounts[i].target);
      } catch (const Error& e) {
        t.error = e.message();
      }
      t.known = true;
      for (const auto& p : {std::string("/.singularity.d"), std::string("/environment")}) {
        if (overlaps(plan.mounts[i].target, p) || (t.error.empty() && overlaps(t.resolved.full(), p)))
          env_safe = false;
      }
    }
    facts.passwd = {true, file_text(view, "/etc/passwd")};
    facts.group = {true, file_text(view, "/etc/group")};
    if (env_safe) facts.environment = environment(view);
    if (plan.action == Action::kExec && !plan.args.empty() && plan.root.overlays.empty())
      absent_from_path(plan, view, &facts);
  } catch (const Error& e) {
    log::debug("reading the image's tree in-process: " + e.message() + "; the container finds out itself");
    return ImageFacts{};
  }
  return facts;
}

}  // namespace rbox::container
