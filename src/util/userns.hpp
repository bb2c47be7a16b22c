// Facts about the user namespace this process runs in.
#pragma once

namespace rbox::userns {

// Real root: euid 0 in the initial user namespace (its uid_map is the identity over all ids).
// Root inside a user namespace (rootless builds, --fakeroot) is not real root.
bool is_real_root();

}  // namespace rbox::userns
