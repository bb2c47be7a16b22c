// What `rbox sif list|info|header` print: byte-for-byte the text of the reference siftool (sylabs/sif
// 2.8 as packaged by Debian), so the two can be diffed. Pure formatting over a loaded Sif.
#pragma once

#include <cstdint>
#include <string>

#include "image/sif.hpp"

namespace rbox::image::sif {

std::string format_list(const Sif& s);
std::string format_header(const Sif& s);
// Throws rbox::Error for a signature with an unknown hash type, as siftool does.
std::string format_info(const Descriptor& d);

// siftool's helpers, exposed for unit tests.
std::string readable_size(int64_t size);        // "27 KiB", "847 B"
std::string go_time_utc(int64_t unix_seconds);  // "2021-08-02 19:09:36 +0000 UTC"
// Go's text/tabwriter with minwidth 0, tabwidth 0, padchar ' ', no flags: cells end at '\t',
// column blocks are runs of consecutive lines that have a cell in that column.
std::string tabwrite(const std::string& text, int padding);

}  // namespace rbox::image::sif
