// What the IMAGE argument of exec/run/shell/test names: a sandbox directory, a SIF (or bare
// SquashFS) file, or a remote reference (docker://, oras://, library://…) that another module
// turns into a local image. Checks existence only; image::locate validates the format later.
#pragma once

#include <functional>
#include <string>

#include "container/plan.hpp"

namespace rbox::container {

// Pulls/converts a remote reference into a local image path (a SIF in the cache). The OCI
// module provides it; cli/ installs it. Unset: remote references fail with a clear message.
using RemoteImageResolver = std::function<std::string(const std::string& ref)>;
void set_remote_image_resolver(RemoteImageResolver resolver);

// True for "docker://…", "oras://…" and the other transport prefixes Apptainer accepts.
bool is_remote_reference(const std::string& ref);

ImageInfo resolve_image(const std::string& ref);

}  // namespace rbox::container
