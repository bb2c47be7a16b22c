// Unit tests for container/bind_spec: Apptainer's -B and --mount syntax.
#include "container/bind_spec.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

using namespace rbox;
using namespace rbox::container;

TEST(BindSpec, SourceOnlyDestinationDefaultsToSource) {
  auto b = parse_bind_list("/data");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].source, "/data");
  EXPECT_EQ(b[0].destination, "/data");
  EXPECT_FALSE(b[0].read_only);
}

TEST(BindSpec, CommaListWithOptions) {
  auto b = parse_bind_list("/a:/b:ro,/c,rel:/d:rw");
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].destination, "/b");
  EXPECT_TRUE(b[0].read_only);
  EXPECT_EQ(b[1].source, "/c");
  EXPECT_EQ(b[2].source, "rel");
  EXPECT_FALSE(b[2].read_only);
}

TEST(BindSpec, SourceColonRoMeansSameDestination) {
  auto b = parse_bind_list("/opt:ro");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].destination, "/opt");
  EXPECT_TRUE(b[0].read_only);
}

TEST(BindSpec, OptionWordContinuesPreviousSpec) {
  auto b = parse_bind_list("/a:/b:rw,ro");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].read_only);
}

TEST(BindSpec, EscapedCommaAndColon) {
  auto b = parse_bind_list("/x\\,y:/in\\:side");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].source, "/x,y");
  EXPECT_EQ(b[0].destination, "/in:side");
}

TEST(BindSpec, Errors) {
  EXPECT_THROW(parse_bind_list("/a:relative"), Error);
  EXPECT_THROW(parse_bind_list("/a:/b:bogus"), Error);
  EXPECT_THROW(parse_bind_list("/a:/b:c:d"), Error);
  EXPECT_THROW(parse_bind_list("/a:/b:image-src=/"), Error);
  try {
    parse_bind_list("/a:/b:bogus", "$RBOX_BIND");
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("$RBOX_BIND"), std::string::npos);
  }
}

TEST(BindSpec, MountSyntax) {
  auto b = parse_mount_spec("type=bind,source=/a,destination=/b,readonly");
  EXPECT_EQ(b.source, "/a");
  EXPECT_EQ(b.destination, "/b");
  EXPECT_TRUE(b.read_only);
  auto q = parse_mount_spec("type=bind,src=\"/with,comma\",dst=/c");
  EXPECT_EQ(q.source, "/with,comma");
  EXPECT_FALSE(q.read_only);
  EXPECT_THROW(parse_mount_spec("type=tmpfs,dst=/x"), Error);
  EXPECT_THROW(parse_mount_spec("type=bind,src=/a"), Error);
  EXPECT_THROW(parse_mount_spec("type=bind,src=/a,dst=/b,color=red"), Error);
}
