// What the launcher learns about a FUSE-served image from the image's own reader before the
// container's setup child starts: where each mount target lands, the image's /etc/passwd and
// /etc/group, and its /.singularity.d/env scripts. The child would otherwise ask the FUSE server,
// one round trip per new name (start-up time). Read-only; answers only what the image holds.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "container/environment.hpp"
#include "container/mounts.hpp"
#include "container/plan.hpp"
#include "image/fuse_sqfs.hpp"

namespace rbox::container {

struct ImageFacts {
  struct Target {
    bool known = false;  // false: the child resolves it itself
    sys::Resolved resolved;
    std::string error;  // non-empty: resolving failed with this message
  };
  struct File {
    bool known = false;
    std::optional<std::string> text;  // nullopt: not a regular file in the image
  };
  std::vector<Target> targets;  // one per plan.mounts entry (or empty)
  File passwd, group;
  // The environment scripts as the container will see them; nullopt when something mounted over
  // the image (an overlay, a bind under /.singularity.d) could change them.
  std::optional<ImageEnvironment> environment;
  // For `exec CMD` without a '/': the usual PATH directories that have no entry named CMD, so
  // the PATH search skips them instead of asking FUSE (and failing an execve) in each.
  std::string command;
  std::vector<std::string> command_absent_in;
};

// Reads the facts for plan from reader. Never throws for a damaged image: what cannot be read is
// left unknown, and the child finds out itself (and reports it).
ImageFacts learn_image_facts(const Plan& plan, image::fuse::SquashfsReader& reader);

}  // namespace rbox::container
