// Image detection, extraction and metadata lookup (see image.hpp). Formats are recognised as
// Apptainer's image.Init does: SIF magic at byte 32, SquashFS magic "hsqs" at byte 0 or right after
// a launch line containing " run-singularity", else a directory.
#include "image/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "image/sif.hpp"
#include "image/squash_extract_reader.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

namespace rbox::image {
namespace {

constexpr std::string_view kSquashMagic = "hsqs";
constexpr std::string_view kLaunchMarker = " run-singularity";

std::string read_head(int fd, size_t n) {
  std::string buf(n, '\0');
  ssize_t got = ::pread(fd, buf.data(), n, 0);
  buf.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return buf;
}

bool squash_magic_at(int fd, uint64_t off) {
  char m[4];
  return ::pread(fd, m, 4, static_cast<off_t>(off)) == 4 && std::memcmp(m, kSquashMagic.data(), 4) == 0;
}

}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::kSif:
      return "SIF";
    case Format::kSquashfs:
      return "SquashFS";
    case Format::kSandbox:
      return "sandbox";
  }
  return "?";
}

Location locate(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw sys_error("image", path);
  Location loc;
  loc.path = path;
  if (S_ISDIR(st.st_mode)) {
    loc.format = Format::kSandbox;
    return loc;
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    throw Error(path + ": not an image (neither a file nor a directory)");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open", path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const std::string head = read_head(fd.get(), 2048);

  if (sif::has_sif_magic(head)) {
    sif::Sif s = sif::Sif::open(path);
    const sif::Descriptor* p = s.primary_partition();
    if (!p) throw Error(path + ": SIF has no primary system partition (no root filesystem to run)");
    auto part = sif::partition_extra(*p);
    if (part.fs != sif::FsType::kSquash)
      throw Error(path + ": the primary partition is " + sif::fs_type_name(static_cast<int32_t>(part.fs)) +
                  "; rbox runs SquashFS partitions only (rebuild the image with rbox build)");
    loc.format = Format::kSif;
    loc.offset = static_cast<uint64_t>(p->offset);
    loc.size = static_cast<uint64_t>(p->size);
    loc.arch = sif::arch_name(part.arch);
    if (!squash_magic_at(fd.get(), loc.offset))
      throw Error(path + ": the primary partition (object " + std::to_string(p->id) +
                  ") does not start with a SquashFS superblock; the file is corrupt");
    return loc;
  }
  uint64_t off = 0;
  if (head.compare(0, kSquashMagic.size(), kSquashMagic) != 0) {
    // A squashfs image made executable: "#!/usr/bin/env run-singularity\n" then the superblock.
    size_t at = head.find(kLaunchMarker);
    if (at != std::string::npos && str::starts_with(head, "#!")) off = at + kLaunchMarker.size() + 1;
  }
  if (off + 4 <= size && squash_magic_at(fd.get(), off)) {
    loc.format = Format::kSquashfs;
    loc.offset = off;
    loc.size = size - off;
    return loc;
  }
  throw Error(path + ": not a SIF file, SquashFS image or sandbox directory");
}

ExtractStats extract(const Location& image, const std::string& dest, const ExtractOptions& opts) {
  if (image.format == Format::kSandbox)
    throw Error(image.path + ": is already a sandbox directory (copy it with cp -a to get another)");
  return extract_squashfs(image.path, image.offset, image.size, dest, opts);
}

InspectMetadata read_metadata(const Location& image) {
  if (image.format == Format::kSandbox)
    return collect_metadata(read_from_dir(image.path), list_from_dir(image.path));

  std::optional<InspectMetadata> meta;
  std::string deffile_object;
  if (image.format == Format::kSif) {
    sif::Sif s = sif::Sif::open(image.path);
    for (const auto& d : s.descriptors()) {
      if (d.type() == sif::DataType::kGenericJson && d.name_str() == "inspect-metadata.json" && !meta) {
        try {
          meta = parse_metadata_json(s.read(d, 16 << 20));
        } catch (const Error& e) {
          throw e.with_context(image.path);
        }
      }
      if (d.type() == sif::DataType::kDeffile && deffile_object.empty()) deffile_object = s.read(d, 16 << 20);
    }
  }
  if (!meta) {
    SquashImage sq(image.path, image.offset, image.size);
    meta = collect_metadata([&](const std::string& p) { return sq.read_file(p); },
                            [&](const std::string& p) -> std::optional<std::vector<std::string>> {
                              auto entries = sq.list_dir(p);
                              if (!entries) return std::nullopt;
                              std::vector<std::string> names;
                              for (const auto& e : *entries) names.push_back(e.name);
                              return names;
                            });
  }
  if (meta->deffile.empty() && !deffile_object.empty()) {
    while (!deffile_object.empty() && deffile_object.back() == '\n') deffile_object.pop_back();
    meta->deffile = deffile_object;
  }
  return *meta;
}

}  // namespace rbox::image
