// rbox sif list|info|dump|header: the SIF container file, as the reference siftool shows it (same
// text, so the two can be diffed). Read-only: never modifies the image.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cli/app.hpp"
#include "image/sif.hpp"
#include "image/sif_text.hpp"
#include "util/error.hpp"

namespace rbox::cli {
namespace {

uint32_t parse_id(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v > 0xFFFFFFFFul || s[0] == '-')
    throw Error("object ID '" + s + "' is not a number (see 'rbox sif list IMAGE' for the IDs)", 2);
  return static_cast<uint32_t>(v);
}

const image::sif::Descriptor& find_object(const image::sif::Sif& s, const std::string& id) {
  const auto* d = s.find(parse_id(id));
  if (!d) throw Error(s.path() + ": no object with ID " + id + " (see 'rbox sif list " + s.path() + "')");
  return *d;
}

}  // namespace

void register_sif(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string image, id;
  };
  auto o = std::make_shared<Opts>();
  auto* sif = add_command(app, "sif", "Inspect the objects of a SIF file (like siftool)",
                          {"rbox sif list env.sif", "rbox sif dump 3 env.sif > rootfs.squashfs"});
  sif->require_subcommand(1);
  auto* list = add_command(*sif, "list", "List the data objects",
                           {"rbox sif list env.sif", "rbox sif list busybox.sif"});
  list->add_option("image", o->image, "SIF file")->required();
  auto* info = add_command(*sif, "info", "Show one data object",
                           {"rbox sif info 1 env.sif", "rbox sif info 4 env.sif"});
  info->add_option("id", o->id, "Object ID (first column of 'rbox sif list')")->required();
  info->add_option("image", o->image, "SIF file")->required();
  auto* dump = add_command(*sif, "dump", "Write one data object to standard output",
                           {"rbox sif dump 1 env.sif", "rbox sif dump 4 env.sif > part.squashfs"});
  dump->add_option("id", o->id, "Object ID (first column of 'rbox sif list')")->required();
  dump->add_option("image", o->image, "SIF file")->required();
  auto* header = add_command(*sif, "header", "Show the global header",
                             {"rbox sif header env.sif", "rbox sif header busybox.sif"});
  header->add_option("image", o->image, "SIF file")->required();

  on_run(list, ctx, [o] {
    std::cout << image::sif::format_list(image::sif::Sif::open(o->image)) << std::flush;
    return 0;
  });
  on_run(header, ctx, [o] {
    std::cout << image::sif::format_header(image::sif::Sif::open(o->image)) << std::flush;
    return 0;
  });
  on_run(info, ctx, [o] {
    auto s = image::sif::Sif::open(o->image);
    std::cout << image::sif::format_info(find_object(s, o->id)) << std::flush;
    return 0;
  });
  on_run(dump, ctx, [o] {
    auto s = image::sif::Sif::open(o->image);
    const auto& d = find_object(s, o->id);
    if (::isatty(STDOUT_FILENO) && d.size > 4096)
      throw Error("object " + o->id + " is " + std::to_string(d.size) +
                      " bytes of binary data; redirect standard output to a file",
                  2);
    std::cout << std::flush;
    s.copy_to_fd(d, STDOUT_FILENO);
    return 0;
  });
}

}  // namespace rbox::cli
