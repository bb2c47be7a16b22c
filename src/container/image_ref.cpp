// Implementation of container/image_ref.hpp.
#include "container/image_ref.hpp"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace rbox::container {

namespace {
RemoteImageResolver& resolver() {
  static RemoteImageResolver r;
  return r;
}
}  // namespace

void set_remote_image_resolver(RemoteImageResolver r) {
  resolver() = std::move(r);
}

bool is_remote_reference(const std::string& ref) {
  for (const char* p : {"docker://", "docker-archive:", "docker-daemon:", "oci:", "oci-archive:", "oras://",
                        "library://", "shub://", "http://", "https://"})
    if (str::starts_with(ref, p)) return true;
  return false;
}

ImageInfo resolve_image(const std::string& ref) {
  std::string path = ref;
  if (str::starts_with(ref, "instance://"))
    throw Error("'" + ref +
                "': running in an instance is not supported by this build yet; start the image directly");
  if (is_remote_reference(ref)) {
    if (!resolver())
      throw Error("'" + ref +
                  "': remote images are not supported by this build yet; pull or build a SIF first "
                  "(rbox pull / rbox build) and run that");
    path = resolver()(ref);
  }
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real))
    throw Error("image " + path + " does not exist; give a SIF file, a sandbox directory or docker://REF");
  ImageInfo info;
  info.path = real;
  info.shown = fs::absolute(path);
  struct stat st {};
  if (::stat(real, &st) != 0) throw sys_error("stat", path);
  if (S_ISDIR(st.st_mode))
    info.kind = ImageKind::kSandbox;
  else if (S_ISREG(st.st_mode))
    info.kind = ImageKind::kSif;
  else
    throw Error("image " + path + " is neither a file nor a directory");
  return info;
}

}  // namespace rbox::container
