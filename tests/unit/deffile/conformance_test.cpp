// Conformance: rbox's parser against Apptainer's own parser test data (22 good, 5 bad, 5 multi),
// read in place from $RBOX_CONFORMANCE_DIR (default: the shared corpus next to the repo). With
// CI=true a missing corpus fails; elsewhere the tests skip and say where to point the variable.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "deffile/json.hpp"
#include "deffile/parser.hpp"
#include "util/base64.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using nlohmann::json;

namespace {

std::string corpus_dir() {
  const char* env = std::getenv("RBOX_CONFORMANCE_DIR");
  std::string base = env && *env ? env : RBOX_SOURCE_DIR "/../shared/conformance";
  return base + "/apptainer-parser";
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

#define REQUIRE_CORPUS()                                                                            \
  do {                                                                                              \
    if (!fs::is_dir(corpus_dir())) {                                                                \
      if (in_ci()) FAIL() << "conformance corpus missing at " << corpus_dir() << " (CI=true)";      \
      GTEST_SKIP() << "conformance corpus not found at " << corpus_dir()                            \
                   << "; set RBOX_CONFORMANCE_DIR to the shared/conformance directory to run this"; \
    }                                                                                               \
  } while (0)

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// A case directory holds the definition file (no extension; "result" is an unused leftover)
// and its expected JSON next to it.
std::string definition_in(const std::string& dir) {
  for (const auto& name : entries(dir))
    if (name.find('.') == std::string::npos && name != "result") return dir + "/" + name;
  return {};
}

std::string decoded(const json& j, const char* field) {
  auto text = base64::decode(j.at(field).get<std::string>());
  return text ? *text : "<invalid base64>";
}

// Field-by-field comparison; each difference is one readable line.
std::vector<std::string> compare(const json& want, const deffile::Definition& got) {
  std::vector<std::string> diffs;
  auto differ = [&](const std::string& what, const json& a, const json& b) {
    if (a != b) diffs.push_back(what + ": want " + a.dump() + ", got " + b.dump());
  };
  json mine = json::parse(deffile::to_json(got).dump());
  differ("header", want.at("header"), mine.at("header"));
  differ("metadata", want.at("imageData").at("metadata"), mine.at("imageData").at("metadata"));
  differ("labels", want.at("imageData").at("labels"), mine.at("imageData").at("labels"));
  for (const char* s : {"help", "environment", "runScript", "test", "startScript"}) {
    const json& w = want.at("imageData").at("imageScripts").at(s);
    const json& m = mine.at("imageData").at("imageScripts").at(s);
    differ(std::string(s) + ".args", w.at("args"), m.at("args"));
    differ(std::string(s) + ".script", w.at("script"), m.at("script"));
  }
  const json& wb = want.at("buildData").at("buildScripts");
  const json& mb = mine.at("buildData").at("buildScripts");
  for (const char* s : {"pre", "setup", "post", "test", "arguments"}) {
    json empty = {{"args", ""}, {"script", ""}};
    differ(std::string("buildScripts.") + s, wb.value(s, empty), mb.value(s, empty));
  }
  const json& wf = want.at("buildData").at("files");
  const json& mf = mine.at("buildData").at("files");
  if (wf.size() != mf.size()) {
    differ("files", wf, mf);
  } else {
    for (size_t i = 0; i < wf.size(); ++i) {
      std::string at = "files[" + std::to_string(i) + "]";
      differ(at + ".args", wf[i].at("args"), mf[i].at("args"));
      differ(at + ".files (source/destination pairs)", wf[i].at("files"), mf[i].at("files"));
    }
  }
  differ("customData", want.at("customData"), mine.at("customData"));
  differ("appOrder", want.at("appOrder"), mine.at("appOrder"));
  if (decoded(want, "raw") != got.raw)
    diffs.push_back("raw: want " + json(decoded(want, "raw")).dump() + ", got " + json(got.raw).dump());
  if (decoded(want, "fullraw") != got.fullraw)
    diffs.push_back("fullraw: want " + json(decoded(want, "fullraw")).dump() + ", got " +
                    json(got.fullraw).dump());
  // Nothing beyond those fields: the whole object must match too.
  json normalized = mine;
  if (!want.at("buildData").at("buildScripts").contains("arguments"))
    normalized["buildData"]["buildScripts"].erase("arguments");
  if (diffs.empty() && normalized != want)
    diffs.push_back("JSON differs: " + json::diff(want, normalized).dump());
  return diffs;
}

std::string report(const std::vector<std::string>& diffs) {
  std::string out;
  for (const auto& d : diffs) out += "\n    " + d;
  return out;
}

}  // namespace

TEST(DeffileConformance, Good22) {
  REQUIRE_CORPUS();
  std::string root = corpus_dir() + "/testdata_good";
  int cases = 0, matched = 0;
  for (const auto& name : entries(root)) {
    std::string def = definition_in(root + "/" + name);
    ASSERT_FALSE(def.empty()) << "no definition file in " << root << "/" << name;
    ++cases;
    json want = json::parse(fs::read_file(def + ".json"));
    std::string text = fs::read_file(def);
    std::vector<std::string> diffs;
    try {
      if (want.is_array()) {
        // testdata_good/multistage records each stage parsed on its own (ParseDefinitionFile per
        // stage: raw == fullraw == the stage text), unlike testdata_multi (parser.All).
        auto stages = deffile::parse_stages(text, def);
        if (stages.size() != want.size())
          diffs.push_back("stages: want " + std::to_string(want.size()) + ", got " +
                          std::to_string(stages.size()));
        for (size_t i = 0; i < std::min(stages.size(), want.size()); ++i)
          for (const auto& d : compare(want[i], deffile::parse_definition(stages[i].raw, def)))
            diffs.push_back("stage " + std::to_string(i + 1) + ": " + d);
      } else {
        diffs = compare(want, deffile::parse_definition(text, def));
        // The build's path (split + templating) sees the same single stage.
        auto built = deffile::parse(text, def);
        if (built.stages.size() != 1) diffs.push_back("parse(): more than one stage");
      }
    } catch (const Error& e) {
      diffs.push_back(std::string("rejected: ") + e.what());
    }
    if (diffs.empty()) ++matched;
    EXPECT_TRUE(diffs.empty()) << name << report(diffs);
  }
  EXPECT_EQ(cases, 22);
  EXPECT_EQ(matched, 22);
  std::printf("[ conformance ] testdata_good: %d/%d match\n", matched, cases);
}

TEST(DeffileConformance, Bad5) {
  REQUIRE_CORPUS();
  std::string root = corpus_dir() + "/testdata_bad";
  // Where and what each rejection must say: "FILE:LINE: what".
  const std::map<std::string, std::string> expected = {
      {"bad_section", ":3: unknown section '%badsection'"},
      {"empty", ":1: empty definition"},
      {"emptycomments", ":1: empty definition"},
      {"json_input_1", ":1: unknown header keyword '{\"rawDefFile\"'; this looks like JSON"},
      {"json_input_2", ":1: unknown header keyword '{\"rawDefFile\"'; this looks like JSON"},
  };
  int cases = 0, rejected = 0;
  for (const auto& name : entries(root)) {
    ++cases;
    std::string path = root + "/" + name;
    std::string text = fs::read_file(path);
    for (int mode = 0; mode < 3; ++mode) {
      try {
        if (mode == 0) deffile::parse_definition(text, path);
        if (mode == 1) deffile::parse_stages(text, path);
        if (mode == 2) deffile::parse(text, path);
        ADD_FAILURE() << name << " was accepted (mode " << mode << ")";
      } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_EQ(msg.rfind(path + ":", 0), 0u) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
        ASSERT_TRUE(expected.count(name)) << "unexpected bad case " << name;
        EXPECT_EQ(msg.find(expected.at(name)), path.size()) << msg;
        if (mode == 0) ++rejected;
      }
    }
  }
  EXPECT_EQ(cases, 5);
  EXPECT_EQ(rejected, 5);
  std::printf("[ conformance ] testdata_bad: %d/%d rejected\n", rejected, cases);
}

TEST(DeffileConformance, Multi5) {
  REQUIRE_CORPUS();
  std::string root = corpus_dir() + "/testdata_multi";
  int cases = 0, matched = 0;
  for (const auto& name : entries(root)) {
    std::string def = definition_in(root + "/" + name);
    ASSERT_FALSE(def.empty()) << "no definition file in " << root << "/" << name;
    ++cases;
    json want = json::parse(fs::read_file(def + ".json"));
    ASSERT_TRUE(want.is_array()) << def;
    std::string text = fs::read_file(def);
    std::vector<std::string> diffs;
    try {
      auto stages = deffile::parse_stages(text, def);
      if (stages.size() != want.size())
        diffs.push_back("stages: want " + std::to_string(want.size()) + ", got " +
                        std::to_string(stages.size()));
      for (size_t i = 0; i < std::min(stages.size(), want.size()); ++i)
        for (const auto& d : compare(want[i], stages[i]))
          diffs.push_back("stage " + std::to_string(i + 1) + ": " + d);
      // Without placeholders, the build's templated path yields the same stages.
      auto built = deffile::parse(text, def);
      if (built.stages != stages) diffs.push_back("parse() differs from parse_stages()");
      // And the --all-stages JSON text is the array itself.
      if (json::parse(deffile::to_json_text(stages)) != want) diffs.push_back("to_json_text(stages) differs");
    } catch (const Error& e) {
      diffs.push_back(std::string("rejected: ") + e.what());
    }
    if (diffs.empty()) ++matched;
    EXPECT_TRUE(diffs.empty()) << name << report(diffs);
  }
  EXPECT_EQ(cases, 5);
  EXPECT_EQ(matched, 5);
  std::printf("[ conformance ] testdata_multi: %d/%d match\n", matched, cases);
}

TEST(DeffileConformance, JsonTextIsByteExactWhereGoWroteIt) {
  REQUIRE_CORPUS();
  // These expected files are Go's json.MarshalIndent(…, "", "\t") output, untouched (others in the
  // corpus were reformatted by hand). apps has '<' and '>' (Go escapes them) and customData.
  for (const char* c :
       {"apps/apps", "docker/docker", "fingerprint/fingerprint", "multiplescripts/multiplescripts",
        "noheader/noheader", "noheadercomments/noheadercomments", "scratch/scratch"}) {
    std::string def = corpus_dir() + "/testdata_good/" + c;
    EXPECT_EQ(deffile::to_json_text(deffile::parse_definition(fs::read_file(def), def)),
              fs::read_file(def + ".json"))
        << c;
  }
}
