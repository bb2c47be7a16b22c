// Bootstrap agents: what fills a stage's root filesystem before %setup — scratch, busybox,
// debootstrap (the host's, run as fake root), localimage (SIF, SquashFS, sandbox directory) and
// the OCI sources (docker, oci, oci-archive, docker-archive) through oci/. yum, dnf, zypper and
// the other Apptainer agents are refused up front with the alternative to use.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "build/base_cache.hpp"
#include "build/metadata.hpp"
#include "build/rootfs.hpp"
#include "container/fakeroot.hpp"
#include "deffile/definition.hpp"

namespace rbox::build {

enum class Agent {
  kScratch,
  kBusybox,
  kDebootstrap,
  kLocalimage,
  kDocker,
  kOci,
  kOciArchive,
  kDockerArchive
};

// Checks a stage's header before any work is done: a known, supported agent with the keys it
// needs, and for localimage a From that exists (a registry reference there gets a hint to use
// `Bootstrap: docker`). Throws rbox::Error "FILE:LINE: …".
Agent check_bootstrap(const deffile::Definition& stage);

// "docker://REGISTRY/NAMESPACE/FROM", "oci:DIR", … as oci::unpack_image() takes it.
std::string oci_source(const deffile::Definition& stage, Agent agent);

// Where an agent may put a cached base tree under the stage instead of unpacking it: an overlay
// of cache (lower) + upper/work directories, mounted on the stage's (empty) root directory.
struct OverlaySlot {
  BaseCache* cache = nullptr;  // nullptr: unpack into the root directory itself
  std::string upper, work;
  std::vector<BaseCache::Entry>* pins = nullptr;  // keeps used entries pinned until the build ends
};

struct AgentContext {
  const deffile::Definition& stage;
  RootFs& root;  // the stage's (empty) root filesystem; reopened when a base is mounted on it
  const container::FakerootPlan& plan;
  const container::SeccompProgram* filter = nullptr;
  std::string authfile;   // --authfile for registry pulls
  std::string cache_dir;  // rbox's cache root ($RBOX_CACHEDIR …): debootstrap keeps .debs there
  std::function<void(std::string_view)> on_line;  // output of tools run by the agent
  OverlaySlot overlay;
};

struct BootstrapResult {
  bool overwrite_base = true;         // false for localimage: keep the image's own files
  std::optional<OciImageConfig> oci;  // OCI sources
  std::string description;            // for the build log ("debian:bookworm", "base.sif" …)
};

// Fills ctx.root. Base environment and agent metadata (runscripts, OCI env) are written too.
BootstrapResult bootstrap(const AgentContext& ctx, Agent agent);

// The first Debian/Ubuntu mirror URL in the host's apt sources (sources.list one-line format and
// deb822 .sources files under root/etc/apt); "" when there is none.
std::string host_apt_mirror(const std::string& root = "/");

// True when the ELF file at path asks for a dynamic loader (PT_INTERP).
bool is_dynamic_elf(const std::string& path);

}  // namespace rbox::build
