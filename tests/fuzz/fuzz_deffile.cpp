// libFuzzer target for the definition-file parser: any text must either parse or raise one
// rbox::Error, never crash, hang or trip a sanitizer; and the parse results must keep their
// invariants (raw/fullraw, stage order, templating identity, JSON output).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deffile/json.hpp"
#include "deffile/parser.hpp"
#include "util/error.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void exercise(const rbox::deffile::Definition& d, bool with_json) {
  if (with_json) (void)rbox::deffile::to_json_text(d);
  (void)d.apps();
  for (const auto* s : {&d.runscript, &d.startscript, &d.test}) (void)rbox::deffile::shebang_script(*s);
  for (const auto* s : {&d.pre, &d.setup, &d.post, &d.test}) {
    try {
      (void)rbox::deffile::section_command("post", *s, "/script");
    } catch (const rbox::Error&) {
    }
  }
  for (const auto& f : d.files) (void)rbox::deffile::files_source(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string name = "fuzz.def";

  try {
    auto d = rbox::deffile::parse_definition(text, name);
    check(d.raw == text && d.fullraw == text);
    exercise(d, true);
  } catch (const rbox::Error& e) {
    check(std::string_view(e.what()).starts_with(name + ":"));
  }

  bool stages_ok = false;
  std::vector<rbox::deffile::Definition> stages;
  try {
    stages = rbox::deffile::parse_stages(text, name);
    stages_ok = true;
    check(!stages.empty());
    size_t at = 0;
    for (const auto& s : stages) {
      check(s.fullraw == text);
      size_t found = text.find(s.raw, at);  // stages are consecutive pieces of the text, in order
      check(found != std::string_view::npos);
      at = found + s.raw.size();
      exercise(s, false);
    }
    (void)rbox::deffile::to_json_text(stages);
  } catch (const rbox::Error& e) {
    check(std::string_view(e.what()).starts_with(name + ":"));
  }

  // Without placeholders, the templated path is the identity.
  if (text.find("{{") == std::string_view::npos) {
    try {
      auto r = rbox::deffile::parse(text, name);
      check(stages_ok && r.stages == stages);
    } catch (const rbox::Error&) {
      check(!stages_ok);
    }
  } else {
    rbox::deffile::BuildArgs args;
    args.values = {{"A", "1"}, {"B", "{{ A }}x"}, {"FROM", "alpine"}};
    args.warn_unused = true;
    try {
      auto r = rbox::deffile::parse(text, name, args);
      for (const auto& s : r.stages) exercise(s, false);
    } catch (const rbox::Error& e) {
      check(std::string_view(e.what()).find(name) == 0);
    }
  }
  return 0;
}
