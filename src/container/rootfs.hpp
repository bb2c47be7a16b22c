// Building the container's root filesystem from a Plan, in the setup child's private mount
// namespace: an overlay (userxattr) whose lowest layers are the image and a tmpfs layer of
// mount points the image lacks ($HOME, bind targets), optionally with a writable tmpfs or
// directory upper; or the sandbox itself for -w. Then the plan's mounts in order. Must not
// touch the host: every path from the image is resolved inside the root (mounts.hpp).
#pragma once

#include <string>

#include "container/image_facts.hpp"
#include "container/plan.hpp"

namespace rbox::container {

// The launcher's session directory: a private tmpfs (in rbox's mount namespace only) that
// holds the image mount point, the layers and generated files.
struct SessionLayout {
  std::string dir;    // host path of the session tmpfs
  std::string lower;  // the image's root: FUSE mount, sandbox or extracted directory
  // dir itself is made unbindable in the container's namespace; overlay layers and bind
  // sources cannot live there (overlayfs clones its layers like binds), so they sit on a
  // second tmpfs, data/.
  std::string image_mount() const { return dir + "/image"; }
  std::string new_root() const { return dir + "/root"; }
  std::string data() const { return dir + "/data"; }
  std::string mount_points() const { return dir + "/data/mp"; }
  std::string upper() const { return dir + "/data/upper"; }
  std::string work() const { return dir + "/data/work"; }
  std::string files() const { return dir + "/data/files"; }
};

// Mounts the session tmpfs on s.dir (an empty host directory) and creates its layout. Runs in
// the launcher, in its private mount namespace, before the image is mounted.
void prepare_session(const SessionLayout& s, unsigned size_mib);

// Builds plan's root at s.new_root() with every mount in place. Throws rbox::Error. facts (may
// be null) answers questions about the image without walking it through FUSE.
void build_root(const Plan& plan, const SessionLayout& s, const ImageFacts* facts = nullptr);

}  // namespace rbox::container
