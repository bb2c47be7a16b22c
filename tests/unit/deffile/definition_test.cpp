// Unit tests for the build-facing interpretations of a Definition (%files sources, section
// command lines, shebang scripts), the Apptainer JSON shape, and the shipped defs/*.def files.
#include "deffile/definition.hpp"

#include <dirent.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "deffile/json.hpp"
#include "deffile/parser.hpp"
#include "util/error.hpp"

using namespace rbox;
using deffile::Script;

TEST(DeffileDefinition, FilesSource) {
  using K = deffile::FilesSource::Kind;
  auto kind = [](const std::string& args) { return deffile::files_source({args, {}}).kind; };
  EXPECT_EQ(kind(""), K::kHost);
  EXPECT_EQ(kind("# just a comment"), K::kHost);
  EXPECT_EQ(kind("from build"), K::kStage);
  EXPECT_EQ(kind("from build # comment"), K::kStage);
  EXPECT_EQ(deffile::files_source({"anything build", {}}).stage, "build");  // first word unchecked
  EXPECT_EQ(kind(" "), K::kIgnored);
  EXPECT_EQ(kind("from"), K::kIgnored);
  EXPECT_EQ(kind("from a b"), K::kIgnored);
}

TEST(DeffileDefinition, AppFiles) {
  auto files = deffile::parse_app_files("\n  # c\n  bin/tool  # comment\n  a  b c\n");
  EXPECT_EQ(files, (std::vector<deffile::FileTransfer>{{"bin/tool", "bin/tool"}, {"a", " b c"}}));
}

TEST(DeffileDefinition, SectionCommand) {
  using V = std::vector<std::string>;
  EXPECT_EQ(deffile::section_command("post", Script{"", "x"}, "/s"), (V{"/bin/sh", "-ex", "/s"}));
  EXPECT_EQ(deffile::section_command("post", Script{"-c /bin/bash -l # shell", "x"}, "/s"),
            (V{"/bin/sh", "-ex", "-c", "/bin/bash -l /s"}));
  EXPECT_EQ(deffile::section_command("post", Script{"-x  -u", "x"}, "/s"),
            (V{"/bin/sh", "-ex", "-x", "-u", "/s"}));
  try {
    deffile::section_command("post", Script{"-c", "x"}, "/s");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "%post -c: missing shell after '-c'; write e.g. '%post -c /bin/bash'");
  }
}

TEST(DeffileDefinition, ShebangScript) {
  EXPECT_EQ(deffile::shebang_script(Script{"", "  echo hi\n"}), "#!/bin/sh\n\n  echo hi\n\n");
  EXPECT_EQ(deffile::shebang_script(Script{"", "#!/usr/bin/env python3 \nprint(1)\n"}),
            "#!/usr/bin/env python3\n\nprint(1)\n\n");
  EXPECT_EQ(deffile::shebang_script(Script{"-u # comment", "echo"}), "#!/bin/sh -u \n\necho\n");
  EXPECT_EQ(deffile::shebang_script(Script{"", "#!/bin/bash"}), "#!/bin/bash\n\n\n");
}

TEST(DeffileJson, Shape) {
  auto d = deffile::parse_definition("%post\n  a < b && c > d\n%files\n%appinstall x\n  i\n", "j.def");
  nlohmann::json j = nlohmann::json::parse(deffile::to_json_text(d));
  EXPECT_TRUE(j["header"].is_null());
  EXPECT_TRUE(j["imageData"]["metadata"].is_null());
  EXPECT_EQ(j["imageData"]["labels"], nlohmann::json::object());
  EXPECT_EQ(j["buildData"]["files"][0]["files"], nullptr);  // Go's nil slice
  EXPECT_FALSE(j["buildData"]["buildScripts"].contains("arguments"));
  EXPECT_EQ(j["customData"]["appinstall x"], "  i\n");
  EXPECT_EQ(j["appOrder"], nlohmann::json::array({"x"}));
  EXPECT_EQ(j["raw"], "JXBvc3QKICBhIDwgYiAmJiBjID4gZAolZmlsZXMKJWFwcGluc3RhbGwgeAogIGkK");
  std::string text = deffile::to_json_text(d);
  // The first section of a headerless file loses its trailing newline (Apptainer trims it).
  EXPECT_NE(text.find("\"  a \\u003c b \\u0026\\u0026 c \\u003e d\""), std::string::npos) << text;
  EXPECT_EQ(text.rfind("{\n\t\"header\": null,\n\t\"imageData\": {\n\t\t\"metadata\": null,", 0), 0u) << text;
}

TEST(DeffileJson, ArgumentsAndInvalidUtf8) {
  auto d = deffile::parse_definition("Bootstrap: docker\n%arguments\n  A=1\n%post\n  \xff\xfe\n", "j.def");
  nlohmann::json j = nlohmann::json::parse(deffile::to_json_text(d));
  EXPECT_EQ(j["buildData"]["buildScripts"]["arguments"]["script"], "  A=1\n");
  EXPECT_EQ(j["buildData"]["buildScripts"]["post"]["script"], "  \xEF\xBF\xBD\xEF\xBF\xBD\n");
}

TEST(DeffileDefs, EveryShippedDefinitionParses) {
  std::string dir = RBOX_SOURCE_DIR "/defs";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  int count = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 5 || name.substr(name.size() - 4) != ".def") continue;
    ++count;
    try {
      auto r = deffile::parse_file(dir + "/" + name);
      EXPECT_FALSE(r.last().bootstrap().empty()) << name;
      EXPECT_TRUE(r.warnings.empty()) << name;
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  }
  closedir(d);
  EXPECT_GE(count, 2);
}

TEST(DeffileDefs, DevboxHasWhatTheProductNeeds) {
  auto r = deffile::parse_file(RBOX_SOURCE_DIR "/defs/devbox.def");
  const auto& d = r.last();
  EXPECT_EQ(d.bootstrap(), "debootstrap");
  EXPECT_EQ(d.header_value("osversion"), "bookworm");
  EXPECT_EQ(d.header_value("mirrorurl"), "");  // the builder takes the host's apt mirror
  for (const char* pkg : {"tmux", "syncthing", "htop", "git", "python3", "python3-pudb"})
    EXPECT_NE(d.post.script.find(pkg), std::string::npos) << pkg;
  EXPECT_NE(d.environment.script.find("UTF-8"), std::string::npos);
  EXPECT_NE(d.runscript.script.find("tmux new-session -A"), std::string::npos);
  EXPECT_NE(d.startscript.script.find("syncthing serve"), std::string::npos);
  EXPECT_FALSE(d.labels.empty());
  EXPECT_FALSE(d.help.script.empty());
  auto m = deffile::parse_file(RBOX_SOURCE_DIR "/defs/minimal.def").last();
  EXPECT_EQ(m.bootstrap(), "busybox");
}
