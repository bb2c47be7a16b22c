// siftool-compatible text for SIF listings (see sif_text.hpp). The layouts mirror siftool's
// writeList/writeHeader/writeInfo: fixed-width list columns, tab-aligned header and info blocks.
#include "image/sif_text.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <vector>

#include "util/error.hpp"

namespace rbox::image::sif {
namespace {

// Go counts widths in runes; count the bytes that start a UTF-8 sequence.
size_t rune_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// Go's fmt "%-Ns": left-aligned, padded with spaces to N runes.
std::string pad_right(const std::string& s, size_t width) {
  size_t w = rune_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::string hex_upper(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789ABCDEF";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// Days since 1970-01-01 → civil date (proleptic Gregorian), valid for the whole int64 range we feed.
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const uint64_t doe = static_cast<uint64_t>(z - era * 146097);
  const uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const uint64_t mp = (5 * doy + 2) / 153;
  d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  if (m <= 2) ++y;
}

struct Line {
  std::vector<std::string> cells;
};

void write_lines(std::string& out, const std::vector<Line>& lines, size_t from, size_t to,
                 const std::vector<size_t>& widths) {
  for (size_t i = from; i < to; ++i) {
    const auto& cells = lines[i].cells;
    for (size_t j = 0; j < cells.size(); ++j) {
      out += cells[j];
      if (j < widths.size()) {
        size_t w = rune_width(cells[j]);
        if (w < widths[j]) out.append(widths[j] - w, ' ');
      }
    }
    if (i + 1 < lines.size()) out += '\n';  // the last line is the unfinished one
  }
}

// Go's tabwriter.format: recursive over columns; a column block is a run of lines that have a
// tab-terminated cell in that column (the last cell of a line never counts).
void format_block(std::string& out, const std::vector<Line>& lines, size_t line0, size_t line1,
                  std::vector<size_t>& widths, int padding) {
  const size_t column = widths.size();
  for (size_t cur = line0; cur < line1; ++cur) {
    if (column + 1 >= lines[cur].cells.size()) continue;
    write_lines(out, lines, line0, cur, widths);
    line0 = cur;
    size_t width = 0;
    for (; cur < line1; ++cur) {
      const auto& cells = lines[cur].cells;
      if (column + 1 >= cells.size()) break;
      width = std::max(width, rune_width(cells[column]) + static_cast<size_t>(padding));
    }
    widths.push_back(width);
    format_block(out, lines, line0, cur, widths, padding);
    widths.pop_back();
    line0 = cur;
    if (cur == line1) break;
  }
  write_lines(out, lines, line0, line1, widths);
}

}  // namespace

std::string tabwrite(const std::string& text, int padding) {
  // Lines of cells; the last line is the one being built. A line made of a single cell flushes
  // (ends every column block), as in Go.
  std::string out;
  std::vector<Line> lines(1);
  std::string cell;
  auto flush = [&] {
    std::vector<size_t> widths;
    format_block(out, lines, 0, lines.size(), widths, padding);
    lines.assign(1, Line{});
  };
  for (char c : text) {
    if (c != '\t' && c != '\n') {
      cell += c;
      continue;
    }
    lines.back().cells.push_back(cell);
    cell.clear();
    if (c == '\n') {
      bool single = lines.back().cells.size() == 1;
      lines.push_back(Line{});
      if (single) flush();
    }
  }
  if (!cell.empty()) lines.back().cells.push_back(cell);
  flush();
  return out;
}

std::string readable_size(int64_t size) {
  if (-1024 < size && size < 1024) return std::to_string(size) + " B";
  const char* units = "KMGTPE";
  uint64_t div = 1024;
  int exp = 0;
  for (int64_t n = size / 1024; n <= -1024 || n >= 1024; n /= 1024) {
    div *= 1024;
    ++exp;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f %ciB",
                std::round(static_cast<double>(size) / static_cast<double>(div)), units[exp]);
  return buf;
}

std::string go_time_utc(int64_t t) {
  int64_t days = t / 86400, secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char buf[96];
  // Go prints at least four year digits, with a leading '-' for years before 1 BC... enough here.
  std::snprintf(buf, sizeof buf, "%s%04" PRId64 "-%02u-%02u %02d:%02d:%02d +0000 UTC", y < 0 ? "-" : "",
                y < 0 ? -y : y, m, d, static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                static_cast<int>(secs % 60));
  return buf;
}

std::string format_list(const Sif& s) {
  const std::string rule = "------------------------------------------------------------------------------\n";
  std::string out = rule;
  out += pad_right("ID", 4) + " " + pad_right("|GROUP", 8) + " " + pad_right("|LINK", 8) + " " +
         pad_right("|SIF POSITION (start-end)", 26) + " |TYPE\n";
  out += rule;
  for (const auto& d : s.descriptors()) {
    out += pad_right(std::to_string(d.id), 4) + " ";
    out += d.group() == 0 ? pad_right("|NONE", 8) + " " : "|" + pad_right(std::to_string(d.group()), 7) + " ";
    if (d.link() == 0) {
      out += "|" + pad_right("NONE", 7) + " ";
    } else if (d.link_is_group()) {
      out += "|" + pad_right(std::to_string(d.link()), 3) + " (G) ";
    } else {
      out += "|" + pad_right(std::to_string(d.link()), 7) + " ";
    }
    out +=
        pad_right("|" + std::to_string(d.offset) + "-" + std::to_string(d.offset + d.size) + " ", 26) + " ";
    const std::string dt = data_type_name(d.data_type);
    switch (d.type()) {
      case DataType::kPartition: {
        auto p = partition_extra(d);
        out += "|" + dt + " (" + fs_type_name(static_cast<int32_t>(p.fs)) + "/" +
               part_type_name(static_cast<int32_t>(p.part)) + "/" + arch_name(p.arch) + ")\n";
        break;
      }
      case DataType::kSignature: {
        // siftool prints nothing more (not even the newline) when the hash type is unknown.
        std::string ht = hash_type_name(static_cast<int32_t>(signature_extra(d).hash));
        if (!ht.empty()) out += "|" + dt + " (" + ht + ")\n";
        break;
      }
      case DataType::kCryptoMessage: {
        auto c = crypto_message_extra(d);
        out += "|" + dt + " (" + format_type_name(static_cast<int32_t>(c.format)) + "/" +
               message_type_name(static_cast<int32_t>(c.message)) + ")\n";
        break;
      }
      case DataType::kSbom:
        out += "|" + dt + " (" + sbom_format_name(static_cast<int32_t>(sbom_extra(d))) + ")\n";
        break;
      default:
        out += "|" + dt + "\n";
    }
  }
  return out;
}

std::string format_header(const Sif& s) {
  const Header& h = s.header();
  std::string t;
  std::string launch = s.launch_script();
  if (!launch.empty()) {
    if (launch.back() == '\n') launch.pop_back();
    t += "Launch Script:\t" + launch + "\n";
  }
  t += "Version:\t" + s.version() + "\n";
  if (s.primary_arch() != "unknown") t += "Primary Architecture:\t" + s.primary_arch() + "\n";
  if (s.id_string() != "00000000-0000-0000-0000-000000000000") t += "ID:\t" + s.id_string() + "\n";
  if (h.created_at != kGoZeroTime) t += "Created At:\t" + go_time_utc(h.created_at) + "\n";
  if (h.modified_at != kGoZeroTime) t += "Modified At:\t" + go_time_utc(h.modified_at) + "\n";
  t += "Descriptors Free:\t" + std::to_string(h.descriptors_free) + "\n";
  t += "Descriptors Total:\t" + std::to_string(h.descriptors_total) + "\n";
  t += "Descriptors Offset:\t" + std::to_string(h.descriptors_offset) + "\n";
  t += "Descriptors Size:\t" + readable_size(h.descriptors_size) + "\n";
  t += "Data Offset:\t" + std::to_string(h.data_offset) + "\n";
  t += "Data Size:\t" + readable_size(h.data_size) + "\n";
  return tabwrite(t, 1);
}

std::string format_info(const Descriptor& d) {
  std::string t;
  t += "\tData Type:\t" + data_type_name(d.data_type) + "\n";
  t += "\tID:\t" + std::to_string(d.id) + "\n";
  t += "\tGroup ID:\t" + (d.group() == 0 ? std::string("NONE") : std::to_string(d.group())) + "\n";
  t += "\tLinked ID:\t";
  if (d.link() == 0) {
    t += "NONE\n";
  } else {
    t += std::to_string(d.link()) + (d.link_is_group() ? " (G)\n" : "\n");
  }
  t += "\tOffset:\t" + std::to_string(d.offset) + "\n";
  t += "\tSize:\t" + std::to_string(d.size) + "\n";
  if (d.created_at != kGoZeroTime) t += "\tCreated At:\t" + go_time_utc(d.created_at) + "\n";
  if (d.modified_at != kGoZeroTime) t += "\tModified At:\t" + go_time_utc(d.modified_at) + "\n";
  if (!d.name_str().empty()) t += "\tName:\t" + d.name_str() + "\n";
  switch (d.type()) {
    case DataType::kPartition: {
      auto p = partition_extra(d);
      t += "\tFilesystem Type:\t" + fs_type_name(static_cast<int32_t>(p.fs)) + "\n";
      t += "\tPartition Type:\t" + part_type_name(static_cast<int32_t>(p.part)) + "\n";
      t += "\tArchitecture:\t" + arch_name(p.arch) + "\n";
      break;
    }
    case DataType::kSignature: {
      auto sig = signature_extra(d);
      std::string ht = hash_type_name(static_cast<int32_t>(sig.hash));
      if (ht.empty()) throw Error("object " + std::to_string(d.id) + ": hash algorithm unsupported");
      t += "\tHash Type:\t" + ht + "\n";
      bool any = false;
      for (size_t i = 0; i < 20; ++i) any = any || sig.entity[i] != 0;
      if (any) t += "\tEntity:\t" + hex_upper(sig.entity.data(), 20) + "\n";
      break;
    }
    case DataType::kCryptoMessage: {
      auto c = crypto_message_extra(d);
      t += "\tFormat Type:\t" + format_type_name(static_cast<int32_t>(c.format)) + "\n";
      t += "\tMessage Type:\t" + message_type_name(static_cast<int32_t>(c.message)) + "\n";
      break;
    }
    case DataType::kSbom:
      t += "\tFormat:\t" + sbom_format_name(static_cast<int32_t>(sbom_extra(d))) + "\n";
      break;
    default:
      break;
  }
  return tabwrite(t, 2);
}

}  // namespace rbox::image::sif
