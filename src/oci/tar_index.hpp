// TarIndex: where each member's bytes are inside an uncompressed tar file (oci-archive and
// docker-archive sources), so blobs are read in place with pread instead of being extracted.
// A compressed archive is first decompressed into a temporary file. Reads only; never extracts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "util/fd.hpp"
#include "util/fs.hpp"

namespace rbox::oci {

class TarIndex {
 public:
  // Opens and indexes an archive (ustar, GNU long names, pax path/size/linkpath).
  explicit TarIndex(const std::string& path);

  struct Member {
    int64_t offset = 0;
    int64_t size = 0;
  };
  // A regular member by name ("./" prefixes ignored; symlink members followed, at most 8).
  std::optional<Member> find(const std::string& name) const;
  std::string read(const std::string& name, size_t max_size) const;  // throws when missing/too big
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  struct Raw {
    char type;
    int64_t offset, size;
    std::string link;
  };
  std::string path_;
  UniqueFd fd_;
  std::optional<fs::TempDir> temp_;  // holds the decompressed copy of a compressed archive
  std::map<std::string, Raw> members_;
};

}  // namespace rbox::oci
