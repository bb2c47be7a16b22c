// Unit tests for container/image_facts: paths resolved by the image's own reader must land
// exactly where the kernel walk (resolve_in_root) lands on the same tree, hostile symlinks
// included; passwd, group and the environment scripts come out as the child would read them.
#include "container/image_facts.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostile_tree.hpp"
#include "image/squash_writer.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using namespace rbox::container;

namespace {

struct Image {
  fs::TempDir dir{"rbox-facts-"};
  std::string tree = dir.path() + "/tree";
  std::string file = dir.path() + "/image.sqfs";
  UniqueFd treefd;
  std::shared_ptr<image::fuse::SquashfsReader> reader;

  Image() {
    const std::string& r = tree;
    test_trees::make_hostile_tree(r);
    fs::mkdir_p(r + "/private");
    fs::mkdir_p(r + "/usr/bin");
    fs::write_file(r + "/usr/bin/tool", "#!/bin/sh\n");
    ::symlink("usr/bin", (r + "/bin").c_str());
    ::chmod((r + "/private").c_str(), 0750);
    fs::mkdir_p(r + "/.singularity.d/env");
    fs::write_file(r + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    fs::write_file(r + "/.singularity.d/env/90-environment.sh", "export A=1\n");
    fs::write_file(r + "/.singularity.d/env/01-base.sh", "export B=2\n");
    fs::write_file(r + "/.singularity.d/env/README", "not a script\n");
    ::symlink("passwd", (r + "/etc/group").c_str());  // group resolves to passwd's text
    ::symlink("usr/./share/../share", (r + "/dots").c_str());
    treefd.reset(::open(r.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    image::SquashOptions o;
    o.workers = 1;
    image::pack_squashfs_file(r, file, o);
    reader = std::make_shared<image::fuse::SquashfsReader>(
        UniqueFd(::open(file.c_str(), O_RDONLY | O_CLOEXEC)), 0, 0, file);
  }
};

MountEntry target(const std::string& path, MountKind kind = MountKind::kBind) {
  MountEntry e;
  e.kind = kind;
  e.target = path;
  e.origin = "test " + path;
  return e;
}

}  // namespace

TEST(ImageFacts, ResolvesLikeTheKernelWalk) {
  Image img;
  Plan plan;
  const std::vector<std::string> paths = {
      "/etc/localtime", "/escape/passwd",       "/procroot/shadow", "/home/alice/work",
      "/etc/new/dir",   "/dots/zoneinfo",       "/private/x/../y",  "/",
      "/etc/hosts",     "/usr/share/../../tmp", "/loop1/x",         "/etc/hosts/inside",
      "/etc/group"};
  for (const auto& p : paths) plan.mounts.push_back(target(p));
  ImageFacts facts = learn_image_facts(plan, *img.reader);
  ASSERT_EQ(facts.targets.size(), paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    SCOPED_TRACE(paths[i]);
    const auto& t = facts.targets[i];
    EXPECT_TRUE(t.known);
    try {
      sys::Resolved kernel = sys::resolve_in_root(img.treefd.get(), paths[i]);
      ASSERT_TRUE(t.error.empty()) << t.error;
      EXPECT_EQ(t.resolved.existing, kernel.existing);
      EXPECT_EQ(t.resolved.missing, kernel.missing);
      EXPECT_EQ(t.resolved.last_is_dir, kernel.last_is_dir);
      EXPECT_EQ(t.resolved.modes, kernel.modes);
    } catch (const Error& e) {
      EXPECT_FALSE(t.error.empty()) << "the kernel walk failed (" << e.message() << "), the reader's did not";
    }
  }
  // The modes recorded are the image's, not the defaults.
  const auto& priv = facts.targets[6].resolved;
  ASSERT_EQ(priv.existing, std::vector<std::string>{"private"});
  EXPECT_EQ(priv.modes, std::vector<mode_t>{0750});
}

TEST(ImageFacts, ReadsPasswdGroupAndEnvironment) {
  Image img;
  Plan plan;
  plan.mounts.push_back(target("/home/alice"));
  ImageFacts facts = learn_image_facts(plan, *img.reader);
  ASSERT_TRUE(facts.passwd.known);
  EXPECT_EQ(facts.passwd.text, std::optional<std::string>("root:x:0:0:root:/root:/bin/sh\n"));
  EXPECT_EQ(facts.group.text, facts.passwd.text);  // through the symlink
  ASSERT_TRUE(facts.environment);
  EXPECT_TRUE(facts.environment->has_env_dir);
  ASSERT_EQ(facts.environment->files.size(), 2u);  // *.sh only, sorted by name
  EXPECT_EQ(facts.environment->files[0].name, "01-base.sh");
  EXPECT_EQ(facts.environment->files[1].text, "export A=1\n");

  // Something mounted over the scripts: the child reads them itself.
  plan.mounts.push_back(target("/.singularity.d/env/90-environment.sh"));
  EXPECT_FALSE(learn_image_facts(plan, *img.reader).environment);
  plan.mounts.pop_back();
  plan.root.overlays.push_back({"/some/overlay", true});
  EXPECT_FALSE(learn_image_facts(plan, *img.reader).environment);
}

TEST(ImageFacts, PathDirectoriesWithoutTheCommand) {
  Image img;
  Plan plan;
  plan.action = Action::kExec;
  plan.args = {"nothere"};
  ImageFacts facts = learn_image_facts(plan, *img.reader);
  EXPECT_EQ(facts.command, "nothere");
  // /usr/local/* and /usr/sbin do not exist in the image: unknown, so they are searched as usual.
  EXPECT_EQ(facts.command_absent_in, (std::vector<std::string>{"/usr/bin", "/bin"}));

  plan.args = {"tool"};
  EXPECT_TRUE(learn_image_facts(plan, *img.reader).command_absent_in.empty());

  // A bind into the directory (here through the /bin link) could add the command: not skipped.
  plan.args = {"nothere"};
  plan.mounts.push_back(target("/usr/bin/nothere"));
  EXPECT_TRUE(learn_image_facts(plan, *img.reader).command_absent_in.empty());

  plan.mounts.clear();
  plan.args = {"./nothere"};
  EXPECT_TRUE(learn_image_facts(plan, *img.reader).command.empty());
}
