// Unit tests for image/sif_metadata, image/sif_arch and image/image (locate, read_metadata):
// Apptainer's inspect JSON shape, metadata gathered from a tree, ELF architecture detection, and
// format detection of SIFs, bare SquashFS files (with and without a launch line) and directories.
#include "image/sif_metadata.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "image/image.hpp"
#include "image/sif_arch.hpp"
#include "image/sif_pack.hpp"
#include "image/squash_writer.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using namespace rbox::image;

namespace {

void make_singularity_d(const std::string& root) {
  fs::mkdir_p(root + "/.singularity.d/env");
  fs::write_file(root + "/.singularity.d/labels.json", "{\n\t\"a\": \"1 < 2 & 3\",\n\t\"b\": \"x\"\n}");
  fs::write_file(root + "/.singularity.d/runscript", "#!/bin/sh\nexec app \"$@\"\n\n", 0755);
  fs::write_file(root + "/.singularity.d/runscript.help", "help text\n");
  fs::write_file(root + "/.singularity.d/env/10-docker2singularity.sh", "export PATH=/bin\n");
  fs::write_file(root + "/.singularity.d/env/90-environment.sh", "#!/bin/sh\nexport X=1\n");
  fs::write_file(root + "/.singularity.d/env/99-base.sh", "not shown\n");
  fs::write_file(root + "/.singularity.d/Singularity", "Bootstrap: scratch\n");
  fs::mkdir_p(root + "/scif/apps/tool/scif");
  fs::write_file(root + "/scif/apps/tool/scif/runscript", "run tool\n");
}

std::string conformance(const std::string& name) {
  const char* env = std::getenv("RBOX_CONFORMANCE_DIR");
  return (env ? std::string(env) : std::string(RBOX_SOURCE_DIR) + "/../shared/conformance") + "/" + name;
}

}  // namespace

TEST(SifMetadata, CollectsFromADirectory) {
  fs::TempDir tmp;
  make_singularity_d(tmp.path());
  InspectMetadata m = collect_metadata(read_from_dir(tmp.path()), list_from_dir(tmp.path()));
  EXPECT_EQ(m.labels.at("a"), "1 < 2 & 3");
  EXPECT_EQ(m.runscript, "#!/bin/sh\nexec app \"$@\"");  // trailing newlines dropped
  EXPECT_EQ(m.helpfile, "help text");
  EXPECT_EQ(m.deffile, "Bootstrap: scratch");
  ASSERT_EQ(m.environment.size(), 2u);
  EXPECT_EQ(m.environment.at("/.singularity.d/env/90-environment.sh"), "#!/bin/sh\nexport X=1");
  EXPECT_TRUE(m.environment.count("/.singularity.d/env/10-docker2singularity.sh"));
  ASSERT_EQ(m.apps.size(), 1u);
  EXPECT_EQ(m.apps.at("tool").runscript, "run tool");
  EXPECT_TRUE(m.startscript.empty());
}

TEST(SifMetadata, JsonShapeAndRoundTrip) {
  InspectMetadata m;
  m.labels["k"] = "<v>&";
  m.runscript = "run";
  m.deffile = "def";
  const std::string compact = metadata_json(m, false);
  EXPECT_EQ(compact,
            "{\"data\":{\"attributes\":{\"labels\":{\"k\":\"\\u003cv\\u003e\\u0026\"},\"runscript\":\"run\","
            "\"deffile\":\"def\"}},\"type\":\"container\"}");
  const std::string pretty = metadata_json(m, true);
  EXPECT_NE(pretty.find("{\n\t\"data\": {\n\t\t\"attributes\": {"), std::string::npos) << pretty;
  InspectMetadata back = parse_metadata_json(compact);
  EXPECT_EQ(back.labels.at("k"), "<v>&");
  EXPECT_EQ(back.runscript, "run");
  EXPECT_EQ(back.deffile, "def");
  EXPECT_THROW(parse_metadata_json("{not json"), Error);
  EXPECT_TRUE(parse_metadata_json("[1,2]").empty());
}

TEST(SifMetadata, DirectoryCallbacksStayInsideTheRoot) {
  fs::TempDir tmp;
  fs::mkdir_p(tmp.path() + "/root/.singularity.d");
  fs::write_file(tmp.path() + "/outside", "secret");
  ::symlink("/../../outside", (tmp.path() + "/root/.singularity.d/runscript").c_str());
  ::symlink(tmp.path().c_str(), (tmp.path() + "/root/.singularity.d/env").c_str());
  auto read = read_from_dir(tmp.path() + "/root");
  EXPECT_EQ(read("/.singularity.d/runscript"), std::nullopt);  // resolved inside root: missing
  EXPECT_EQ(list_from_dir(tmp.path() + "/root")("/.singularity.d/env"), std::nullopt);
}

TEST(SifArch, ElfMachines) {
  auto elf = [](char cls, char data, uint16_t machine) {
    std::string h(64, '\0');
    h.replace(0, 4,
              "\x7f"
              "ELF");
    h[4] = cls;
    h[5] = data;
    if (data == 1) {
      h[18] = static_cast<char>(machine & 0xff);
      h[19] = static_cast<char>(machine >> 8);
    } else {
      h[18] = static_cast<char>(machine >> 8);
      h[19] = static_cast<char>(machine & 0xff);
    }
    return h;
  };
  EXPECT_EQ(elf_goarch(elf(2, 1, 62)), "amd64");
  EXPECT_EQ(elf_goarch(elf(2, 1, 183)), "arm64");
  EXPECT_EQ(elf_goarch(elf(1, 1, 3)), "386");
  EXPECT_EQ(elf_goarch(elf(2, 1, 21)), "ppc64le");
  EXPECT_EQ(elf_goarch(elf(2, 2, 21)), "ppc64");
  EXPECT_EQ(elf_goarch(elf(2, 2, 22)), "s390x");
  EXPECT_EQ(elf_goarch(elf(2, 1, 243)), "riscv64");
  EXPECT_EQ(elf_goarch(elf(1, 2, 8)), "mips");
  EXPECT_EQ(elf_goarch(elf(2, 1, 8)), "mips64le");
  EXPECT_EQ(elf_goarch("#!/bin/sh\n"), std::nullopt);
  EXPECT_EQ(elf_goarch(elf(2, 1, 9999)), std::nullopt);
}

TEST(SifArch, RootfsShellFollowsLinksInsideTheTree) {
  fs::TempDir tmp;
  const std::string root = tmp.path();
  fs::mkdir_p(root + "/usr/bin");
  ::symlink("usr/bin", (root + "/bin").c_str());
  fs::write_file(root + "/usr/bin/dash", fs::read_file("/proc/self/exe").substr(0, 64), 0755);
  ::symlink("/usr/bin/dash", (root + "/usr/bin/sh").c_str());  // absolute: resolved in the tree
  EXPECT_EQ(rootfs_goarch(root), host_goarch());
  // No shell: the first executable ELF; nothing at all: the host.
  fs::TempDir empty;
  EXPECT_EQ(rootfs_goarch(empty.path()), host_goarch());
}

TEST(Image, LocatesEveryFormat) {
  fs::TempDir tmp;
  const std::string tree = tmp.path() + "/tree";
  make_singularity_d(tree);
  fs::write_file(tree + "/hello", "hi");
  // Sandbox.
  Location l = locate(tree);
  EXPECT_EQ(l.format, Format::kSandbox);
  EXPECT_EQ(read_metadata(l).labels.at("b"), "x");
  // SIF.
  PackSifOptions p;
  p.deffile = "Bootstrap: scratch\n";
  pack_sif(tree, tmp.path() + "/a.sif", p);
  l = locate(tmp.path() + "/a.sif");
  EXPECT_EQ(l.format, Format::kSif);
  EXPECT_EQ(l.offset % 4096, 0u);
  EXPECT_GT(l.size, 0u);
  EXPECT_EQ(read_metadata(l).runscript, "#!/bin/sh\nexec app \"$@\"");
  // Bare SquashFS, and the same behind a launch line.
  pack_squashfs_file(tree, tmp.path() + "/a.sqfs", {});
  l = locate(tmp.path() + "/a.sqfs");
  EXPECT_EQ(l.format, Format::kSquashfs);
  EXPECT_EQ(l.offset, 0u);
  EXPECT_EQ(read_metadata(l).helpfile, "help text");
  const std::string line = "#!/usr/bin/env run-singularity\n";
  fs::write_file(tmp.path() + "/run.sqfs", line + fs::read_file(tmp.path() + "/a.sqfs"));
  l = locate(tmp.path() + "/run.sqfs");
  EXPECT_EQ(l.format, Format::kSquashfs);
  EXPECT_EQ(l.offset, line.size());
  EXPECT_EQ(read_metadata(l).deffile, "Bootstrap: scratch");
  // Not images.
  fs::write_file(tmp.path() + "/text", "Bootstrap: docker\nFrom: debian\n");
  EXPECT_THROW(locate(tmp.path() + "/text"), Error);
  EXPECT_THROW(locate(tmp.path() + "/missing"), Error);
  EXPECT_EQ(extract(locate(tmp.path() + "/run.sqfs"), tmp.path() + "/x").files, 9u);
  EXPECT_EQ(fs::read_file(tmp.path() + "/x/hello"), "hi");
  EXPECT_THROW(extract(locate(tree), tmp.path() + "/y"), Error);
}

TEST(Image, RefusesSifsWithoutARunnablePartition) {
  const std::string path = conformance("sif-images/two-groups.sif");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "corpus not found";
  // Its primary partition is a small real SquashFS (arch 386) among other partitions.
  Location two = locate(path);
  EXPECT_EQ(two.offset, 36864u);
  EXPECT_EQ(two.arch, "386");
  EXPECT_EQ(read_metadata(two).labels.size(), 0u);
  // The same file with the superblock magic damaged.
  fs::TempDir tmp;
  std::string bytes = fs::read_file(path);
  bytes[36864] = 'X';
  fs::write_file(tmp.path() + "/bad.sif", bytes);
  try {
    locate(tmp.path() + "/bad.sif");
    FAIL() << "located a SIF whose partition is not SquashFS";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("does not start with a SquashFS superblock"), std::string::npos)
        << e.message();
  }
  try {
    locate(conformance("sif-images/one-object-sbom.sif"));
    FAIL() << "located a SIF without a partition";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("no primary system partition"), std::string::npos) << e.message();
  }
  Location l = locate(conformance("apptainer-images/busybox_amd64.sif"));
  EXPECT_EQ(l.offset, 45056u);
  EXPECT_EQ(l.size, 745472u);
  EXPECT_EQ(l.arch, "amd64");
  InspectMetadata m = read_metadata(l);
  EXPECT_EQ(m.deffile, "BootStrap: docker\nFrom: busybox:1.33.1");
  EXPECT_EQ(m.labels.at("org.label-schema.usage.singularity.version"), "3.8.1");
}
