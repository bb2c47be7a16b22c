// Unit tests for oci/reference (image references, sources, platforms) and oci/manifest
// (platform selection, parsing limits).
#include "oci/reference.hpp"

#include <gtest/gtest.h>

#include "oci/manifest.hpp"
#include "util/error.hpp"

using namespace rbox;
using namespace rbox::oci;

TEST(Reference, DockerHubDefaults) {
  auto r = Reference::parse("busybox");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(r.repository, "library/busybox");
  EXPECT_EQ(r.tag, "latest");
  EXPECT_EQ(r.digest, "");
  EXPECT_EQ(r.api_host(), "registry-1.docker.io");
  EXPECT_EQ(r.str(), "docker.io/library/busybox:latest");

  r = Reference::parse("user/app:1.2");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(r.repository, "user/app");
  EXPECT_EQ(r.tag, "1.2");

  r = Reference::parse("index.docker.io/library/debian:bookworm");
  EXPECT_EQ(r.registry, "docker.io");
  EXPECT_EQ(r.repository, "library/debian");
}

TEST(Reference, RegistriesPortsAndDigests) {
  auto r = Reference::parse("localhost:5000/a/b/c:v1");
  EXPECT_EQ(r.registry, "localhost:5000");
  EXPECT_EQ(r.repository, "a/b/c");
  EXPECT_EQ(r.tag, "v1");
  EXPECT_EQ(r.api_host(), "localhost:5000");

  r = Reference::parse("127.0.0.1:5100/busybox");  // no library/ outside Docker Hub
  EXPECT_EQ(r.repository, "busybox");
  EXPECT_EQ(r.tag, "latest");

  std::string d = "sha256:" + std::string(64, 'a');
  r = Reference::parse("ghcr.io/org/img@" + d);
  EXPECT_EQ(r.registry, "ghcr.io");
  EXPECT_EQ(r.tag, "");
  EXPECT_EQ(r.digest, d);
  EXPECT_EQ(r.manifest_ref(), d);

  r = Reference::parse("ghcr.io/org/img:t@" + d);
  EXPECT_EQ(r.tag, "t");
  EXPECT_EQ(r.manifest_ref(), d);  // the digest wins
  EXPECT_EQ(r.str(), "ghcr.io/org/img:t@" + d);

  r = Reference::parse("localhost/img");  // "localhost" is a registry even without a port
  EXPECT_EQ(r.registry, "localhost");
  EXPECT_EQ(r.repository, "img");
}

TEST(Reference, Invalid) {
  for (const char* bad : {"", "library/UPPER", "a//b", "img:bad tag", "img@sha256:abc", "img@md5:0123",
                          "-lead", "img:", "reg.io/"}) {
    EXPECT_THROW(Reference::parse(bad), Error) << bad;
  }
  try {
    Reference::parse("img@sha512:" + std::string(128, 'a'));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only sha256"), std::string::npos) << e.what();
  }
}

TEST(Reference, NormalizeRegistryAndLoopback) {
  EXPECT_EQ(normalize_registry("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(normalize_registry("docker://localhost:5000"), "localhost:5000");
  EXPECT_EQ(normalize_registry("HTTPS://Reg.Example.org/x"), "reg.example.org");
  EXPECT_TRUE(is_loopback_host("127.0.0.1:5100"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("[::1]:5000"));
  EXPECT_TRUE(is_loopback_host("127.9.9.9"));
  EXPECT_FALSE(is_loopback_host("127.0.0.1.evil.com:5000"));
  EXPECT_FALSE(is_loopback_host("10.0.0.1:5000"));
  EXPECT_FALSE(is_loopback_host("localhost.example.org"));
}

TEST(Source, Transports) {
  auto s = Source::parse("docker://alpine:3.19");
  EXPECT_EQ(s.kind, Source::Kind::kDocker);
  EXPECT_EQ(s.ref.str(), "docker.io/library/alpine:3.19");
  s = Source::parse("oci:/no/such/dir:v2");
  EXPECT_EQ(s.kind, Source::Kind::kOciLayout);
  EXPECT_EQ(s.path, "/no/such/dir");
  EXPECT_EQ(s.tag, "v2");
  s = Source::parse("oci-archive:/x/img.tar");
  EXPECT_EQ(s.kind, Source::Kind::kOciArchive);
  EXPECT_EQ(s.tag, "");
  s = Source::parse("docker-archive:/x/save.tar:busybox:latest");
  EXPECT_EQ(s.kind, Source::Kind::kDockerArchive);
  EXPECT_EQ(s.path, "/x/save.tar");
  EXPECT_EQ(s.tag, "busybox:latest");
  s = Source::parse("oci:/tmp");  // an existing directory: no tag split
  EXPECT_EQ(s.path, "/tmp");
  EXPECT_THROW(Source::parse("alpine:3.19"), Error);
  EXPECT_THROW(Source::parse("oci:"), Error);
}

TEST(Platform, ParseAndMatch) {
  auto p = Platform::parse("linux/arm64");
  EXPECT_EQ(p.str(), "linux/arm64");
  EXPECT_TRUE(p.matches("linux", "arm64", "v8"));
  EXPECT_TRUE(p.matches("linux", "arm64", ""));
  EXPECT_FALSE(p.matches("linux", "amd64", ""));
  p = Platform::parse("arm64/v8");
  EXPECT_TRUE(p.matches("linux", "arm64", ""));  // v8 is arm64's default variant
  p = Platform::parse("armhf");
  EXPECT_EQ(p.str(), "linux/arm/v7");
  EXPECT_TRUE(p.matches("linux", "arm", "v7"));
  EXPECT_FALSE(p.matches("linux", "arm", "v6"));
  EXPECT_EQ(Platform::parse("x86_64").str(), "linux/amd64");
  EXPECT_FALSE(Platform::parse("amd64").matches("windows", "amd64", ""));
  EXPECT_THROW(Platform::parse("a/b/c/d"), Error);
  EXPECT_THROW(Platform::parse("linux//"), Error);
  Platform h = Platform::host();
  EXPECT_EQ(h.os, "linux");
  EXPECT_FALSE(h.arch.empty());
}

static Descriptor desc(const std::string& arch, const std::string& variant, char fill) {
  Descriptor d;
  d.media_type = media::kOciManifest;
  d.digest = "sha256:" + std::string(64, fill);
  d.size = 10;
  d.platform = Platform{"linux", arch, variant};
  return d;
}

TEST(Manifest, SelectPlatform) {
  Index idx;
  idx.manifests = {desc("amd64", "", 'a'), desc("arm", "v6", 'b'), desc("arm", "v7", 'c'),
                   desc("arm64", "v8", 'd')};
  Descriptor att = desc("unknown", "", 'e');
  att.platform->os = "unknown";
  idx.manifests.push_back(att);
  EXPECT_EQ(select_platform(idx, Platform::parse("amd64"), "img").digest.back(), 'a');
  EXPECT_EQ(select_platform(idx, Platform::parse("arm/v7"), "img").digest.back(), 'c');
  EXPECT_EQ(select_platform(idx, Platform::parse("linux/arm64"), "img").digest.back(), 'd');
  try {
    select_platform(idx, Platform::parse("s390x"), "docker://x/y:z");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("no image for linux/s390x"), std::string::npos) << m;
    EXPECT_NE(m.find("linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8"), std::string::npos) << m;
    EXPECT_EQ(m.find("unknown"), std::string::npos) << m;  // attestations are not offered
  }
}

TEST(Manifest, ParseAndReject) {
  std::string d1 = "sha256:" + std::string(64, '1'), d2 = "sha256:" + std::string(64, '2');
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                     d1 + R"(","size":5},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":")" +
                     d2 + R"(","size":7}]})";
  EXPECT_EQ(manifest_kind(body, ""), ManifestKind::kManifest);
  auto m = parse_manifest(body, "t");
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].size, 7);
  EXPECT_EQ(layer_compression(m.layers[0].media_type), Compression::kZstd);
  // A path-traversal digest never gets as far as a cache path.
  std::string evil = body;
  evil.replace(evil.find(d2), d2.size(), "sha256:../../etc/passwd");
  EXPECT_THROW(parse_manifest(evil, "t"), Error);
  EXPECT_THROW(parse_manifest("{\"config\":{}}", "t"), Error);
  EXPECT_THROW(parse_manifest(std::string(5 << 20, ' '), "t"), Error);
  EXPECT_THROW(manifest_kind(R"({"schemaVersion":1,"fsLayers":[]})", ""), Error);
  EXPECT_EQ(manifest_kind(R"({"manifests":[]})", ""), ManifestKind::kIndex);
}

TEST(Manifest, Config) {
  auto c = parse_config(R"({"architecture":"arm64","os":"linux","created":"2024-01-01T00:00:00Z",
    "config":{"Env":["PATH=/bin","A=b c"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],
    "WorkingDir":"/w","User":"1000:1000","Labels":{"k":"v"}},
    "rootfs":{"type":"layers","diff_ids":["sha256:)" +
                            std::string(64, 'f') + R"("]}})",
                        "t");
  EXPECT_EQ(c.env.size(), 2u);
  EXPECT_EQ(c.entrypoint[1], "-c");
  EXPECT_EQ(c.cmd[0], "echo hi");
  EXPECT_EQ(c.working_dir, "/w");
  EXPECT_EQ(c.user, "1000:1000");
  EXPECT_EQ(c.labels.at("k"), "v");
  EXPECT_EQ(c.architecture, "arm64");
  EXPECT_EQ(c.diff_ids.size(), 1u);
  EXPECT_FALSE(c.raw_json.empty());
}
