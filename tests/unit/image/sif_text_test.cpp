// Unit tests for image/sif_text: siftool's list/header/info text, hand-checked against the
// reference tool's output for the Apptainer-built busybox image and the sylabs/sif corpus.
#include "image/sif_text.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace rbox::image::sif;

namespace {

std::string conformance(const std::string& name) {
  const char* env = std::getenv("RBOX_CONFORMANCE_DIR");
  return (env ? std::string(env) : std::string(RBOX_SOURCE_DIR) + "/../shared/conformance") + "/" + name;
}

}  // namespace

TEST(SifText, ReadableSize) {
  EXPECT_EQ(readable_size(0), "0 B");
  EXPECT_EQ(readable_size(1023), "1023 B");
  EXPECT_EQ(readable_size(-1023), "-1023 B");
  EXPECT_EQ(readable_size(1024), "1 KiB");
  EXPECT_EQ(readable_size(28080), "27 KiB");  // 27.42 rounds down
  EXPECT_EQ(readable_size(9 * 1024 + 600), "10 KiB");
  EXPECT_EQ(readable_size(760000), "742 KiB");
  EXPECT_EQ(readable_size(1048576), "1 MiB");
  EXPECT_EQ(readable_size(1048575), "1024 KiB");
  EXPECT_EQ(readable_size(5ll << 40), "5 TiB");
}

TEST(SifText, GoTime) {
  EXPECT_EQ(go_time_utc(0), "1970-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(go_time_utc(1627931376), "2021-08-02 19:09:36 +0000 UTC");
  EXPECT_EQ(go_time_utc(1593475316), "2020-06-30 00:01:56 +0000 UTC");
  EXPECT_EQ(go_time_utc(-1), "1969-12-31 23:59:59 +0000 UTC");
}

TEST(SifText, Tabwriter) {
  EXPECT_EQ(tabwrite("a:\t1\nlong key:\t2\n", 1), "a:        1\nlong key: 2\n");
  EXPECT_EQ(tabwrite("\tx:\t1\n\tyy:\t2\n", 2), "  x:   1\n  yy:  2\n");
  // A line without tabs ends the column block (Go flushes there).
  EXPECT_EQ(tabwrite("a:\t1\nplain\nlonger:\t2\n", 1), "a: 1\nplain\nlonger: 2\n");
}

TEST(SifText, BusyboxImage) {
  const std::string path = conformance("apptainer-images/busybox_amd64.sif");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "busybox_amd64.sif not found";
  Sif s = Sif::open(path);
  EXPECT_EQ(format_list(s),
            "------------------------------------------------------------------------------\n"
            "ID   |GROUP   |LINK    |SIF POSITION (start-end)  |TYPE\n"
            "------------------------------------------------------------------------------\n"
            "1    |1       |NONE    |32768-32807               |Def.FILE\n"
            "2    |1       |NONE    |36864-38760               |JSON.Generic\n"
            "3    |1       |NONE    |40960-41050               |JSON.Generic\n"
            "4    |1       |NONE    |45056-790528              |FS (Squashfs/*System/amd64)\n"
            "5    |NONE    |1   (G) |790528-792293             |Signature (SHA-256)\n");
  EXPECT_EQ(format_header(s),
            "Launch Script:        #!/usr/bin/env run-singularity\n"
            "Version:              01\n"
            "Primary Architecture: amd64\n"
            "ID:                   4f307b4c-58a8-4753-9c0f-21dceefed4a6\n"
            "Created At:           2021-08-02 19:09:36 +0000 UTC\n"
            "Modified At:          2021-08-02 19:09:36 +0000 UTC\n"
            "Descriptors Free:     43\n"
            "Descriptors Total:    48\n"
            "Descriptors Offset:   4096\n"
            "Descriptors Size:     27 KiB\n"
            "Data Offset:          32768\n"
            "Data Size:            742 KiB\n");
  EXPECT_EQ(format_info(*s.find(5)),
            "  Data Type:    Signature\n"
            "  ID:           5\n"
            "  Group ID:     NONE\n"
            "  Linked ID:    1 (G)\n"
            "  Offset:       790528\n"
            "  Size:         1765\n"
            "  Created At:   2021-08-02 19:09:36 +0000 UTC\n"
            "  Modified At:  2021-08-02 19:09:36 +0000 UTC\n"
            "  Name:         .\n"
            "  Hash Type:    SHA-256\n"
            "  Entity:       1137E72E6816BFC06D9CAA0D15F3F4F4F14B03B2\n");
  EXPECT_EQ(format_info(*s.find(4)),
            "  Data Type:        FS\n"
            "  ID:               4\n"
            "  Group ID:         1\n"
            "  Linked ID:        NONE\n"
            "  Offset:           45056\n"
            "  Size:             745472\n"
            "  Created At:       2021-08-02 19:09:36 +0000 UTC\n"
            "  Modified At:      2021-08-02 19:09:36 +0000 UTC\n"
            "  Name:             squashfs-275937245\n"
            "  Filesystem Type:  Squashfs\n"
            "  Partition Type:   *System\n"
            "  Architecture:     amd64\n");
}

TEST(SifText, CorpusExamples) {
  const std::string path = conformance("sif-images/one-object-crypt-message.sif");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "corpus not found";
  Sif s = Sif::open(path);
  EXPECT_EQ(format_info(*s.find(1)),
            "  Data Type:     Cryptographic Message\n"
            "  ID:            1\n"
            "  Group ID:      1\n"
            "  Linked ID:     NONE\n"
            "  Offset:        32176\n"
            "  Size:          4\n"
            "  Format Type:   OpenPGP\n"
            "  Message Type:  Clear Signature\n");
  Sif e = Sif::open(conformance("sif-images/empty.sif"));
  EXPECT_EQ(format_header(e),
            "Version:            01\n"
            "Descriptors Free:   48\n"
            "Descriptors Total:  48\n"
            "Descriptors Offset: 4096\n"
            "Descriptors Size:   27 KiB\n"
            "Data Offset:        32176\n"
            "Data Size:          0 B\n");
}
