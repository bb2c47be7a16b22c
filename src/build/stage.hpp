// One build stage, in Apptainer's order: %pre (host) → bootstrap → SCIF apps → %files from
// earlier stages → %setup (host) → %files → %post (inside, fake root, staged resolv.conf/hosts)
// → metadata → %test. Runs in the builder process, already inside the build's user namespace
// and under the fake-root filter. Knows nothing about processes, signals or clean-up.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "build/agents.hpp"
#include "build/builder.hpp"
#include "build/metadata.hpp"
#include "build/workspace.hpp"
#include "container/bind_spec.hpp"
#include "container/fakeroot.hpp"
#include "deffile/definition.hpp"

namespace rbox::build {

// What every stage shares.
struct BuildContext {
  const BuildOptions& opts;
  const container::FakerootPlan& plan;
  const container::SeccompProgram& filter;
  const Workspace& ws;
  SectionFilter sections;
  std::vector<container::BindSpec> binds;
  std::string cache_dir;
  std::string staged_resolv, staged_hosts;  // host copies plus a newline ("" when unreadable)
  std::string fullraw;                      // the whole definition after templating
  BaseCache* base_cache = nullptr;          // cached base trees (overlay), when usable
  std::vector<BaseCache::Entry>* pins = nullptr;
};

struct StagePlan {
  const deffile::Definition& def;
  Agent agent;
  size_t index = 0, count = 1;
  std::string rootfs;
  bool skip_bootstrap = false;  // --update of an existing sandbox
  bool overlay_ok = false;      // the root may be an overlay over a cached base (not for a sandbox)
  // Earlier stages by name ("stage" header, or their 1-based number): their root filesystems.
  std::vector<std::pair<std::string, std::string>> earlier;
};

struct StageResult {
  std::optional<OciImageConfig> oci;
  std::vector<std::pair<std::string, double>> seconds;  // step → wall time
};

StageResult run_stage(const BuildContext& ctx, const StagePlan& stage);

// Output of tools and scripts: each line to stderr behind a prefix ("  | "); with --quiet the
// last lines are kept and shown only if the step fails.
std::function<void(std::string_view)> line_printer();
// Prints (and clears) the lines kept while quiet, after a failure.
void flush_quiet_lines();

// The environment %post runs with (Apptainer: --cleanenv plus the build variables).
std::vector<std::string> post_environment(const std::string& rootfs,
                                          const std::vector<std::string>& host_env);
// The environment %test runs with: the host's (without APPTAINER_*/SINGULARITY_*), standard PATH.
std::vector<std::string> test_environment(const std::string& rootfs,
                                          const std::vector<std::string>& host_env);

}  // namespace rbox::build
