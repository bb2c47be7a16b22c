// libFuzzer target for the SIF reader: any bytes must either load or raise one rbox::Error — never
// crash, hang, read out of bounds or allocate from an untrusted size — and a loaded file must keep
// the reader's promises (every object inside the file, no overlaps, at most one primary partition)
// and be printable the way `rbox sif list|info|header` print it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "image/sif.hpp"
#include "image/sif_text.hpp"
#include "util/error.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rbox::image::sif;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    Sif s = Sif::from_memory(bytes, "fuzz.sif");
    int primaries = 0;
    for (const auto& d : s.descriptors()) {
      check(d.used);
      check(d.offset >= 0 && d.size >= 0);
      check(static_cast<uint64_t>(d.offset) + static_cast<uint64_t>(d.size) <= size);
      if (d.type() == DataType::kPartition && partition_extra(d).part == PartType::kPrimSys) ++primaries;
      if (d.size <= (1 << 20)) {
        std::string obj = s.read(d);
        check(obj == bytes.substr(static_cast<size_t>(d.offset), static_cast<size_t>(d.size)));
      }
      try {
        (void)format_info(d);
      } catch (const rbox::Error&) {
        // an unknown signature hash type: siftool refuses it too
      }
      check(s.find(d.id) != nullptr);
    }
    check(primaries <= 1);
    check((primaries == 1) == (s.primary_partition() != nullptr));
    (void)format_list(s);
    (void)format_header(s);
    (void)s.launch_script();
    (void)s.id_string();
  } catch (const rbox::Error&) {
  }
  return 0;
}
