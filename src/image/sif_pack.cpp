// Directory → SIF (see sif_pack.hpp). The small objects go first, so the partition is the last
// object and can be streamed: libsquashfs writes into the SIF's temporary file at the partition
// offset through an offset sqfs_file_t, and the descriptor records the size it ended with.
#include "image/sif_pack.hpp"

#include <algorithm>
#include <vector>

#include "image/sif_arch.hpp"
#include "image/sif_metadata.hpp"
#include "util/error.hpp"

namespace rbox::image {

PackSifResult pack_sif(const std::string& dir, const std::string& out, const PackSifOptions& opts) {
  PackSifResult result;
  SquashOptions squash = opts.squash;
  check_squash_options(squash);  // fail on bad options before creating anything
  result.arch = opts.arch.empty() ? rootfs_goarch(dir) : opts.arch;

  std::vector<std::pair<std::string, std::string>> json;
  if (opts.inspect_metadata) {
    InspectMetadata m = collect_metadata(read_from_dir(dir), list_from_dir(dir));
    if (opts.deffile && m.deffile.empty()) {
      std::string d = *opts.deffile;
      while (!d.empty() && d.back() == '\n') d.pop_back();
      m.deffile = d;
    }
    json.emplace_back("inspect-metadata.json", metadata_json(m, false));
  }
  if (opts.oci_config) json.emplace_back("oci-config.json", *opts.oci_config);
  std::sort(json.begin(), json.end());

  sif::CreateOptions create = opts.sif;
  if (squash.source_date_epoch) create.deterministic = true;
  sif::Writer w(out, create);
  if (opts.deffile) {
    sif::ObjectSpec spec;
    spec.type = sif::DataType::kDeffile;
    w.add(spec, *opts.deffile);
  }
  for (const auto& [name, data] : json) {
    sif::ObjectSpec spec;
    spec.type = sif::DataType::kGenericJson;
    spec.name = name;
    w.add(spec, data);
  }
  auto part = sif::partition_spec(sif::FsType::kSquash, sif::PartType::kPrimSys, sif::arch_code(result.arch));
  w.add_streamed(part, [&](int fd, uint64_t offset) {
    result.squash = pack_squashfs(dir, fd, offset, squash);
    return result.squash.image_bytes;
  });
  w.commit();
  result.sif_bytes = static_cast<uint64_t>(w.header().data_offset + w.header().data_size);
  return result;
}

}  // namespace rbox::image
