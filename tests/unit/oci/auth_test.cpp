// Unit tests for oci/auth: WWW-Authenticate parsing and docker-format credential files
// (lookup order, writing with mode 0600, keeping other keys).
#include "oci/auth.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using namespace rbox::oci;

TEST(Auth, BearerChallenge) {
  auto cs = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(cs[0].param("service"), "registry.docker.io");
  EXPECT_EQ(cs[0].param("scope"), "repository:library/busybox:pull");
}

TEST(Auth, SeveralChallengesAndOddSpacing) {
  auto cs = parse_www_authenticate(
      R"(Basic realm="Registry Realm", BEARER Realm = "https://t/x?a=1" , service=svc,error="insufficient_scope",scope="repository:a/b:pull,push")");
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].param("realm"), "Registry Realm");
  EXPECT_EQ(cs[1].scheme, "bearer");
  EXPECT_EQ(cs[1].param("realm"), "https://t/x?a=1");
  EXPECT_EQ(cs[1].param("service"), "svc");
  EXPECT_EQ(cs[1].param("scope"), "repository:a/b:pull,push");  // comma inside quotes
  EXPECT_EQ(cs[1].param("error"), "insufficient_scope");
}

TEST(Auth, QuotedEscapesAndGarbage) {
  auto cs = parse_www_authenticate(R"(Bearer realm="a\"b\\c")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].param("realm"), "a\"b\\c");
  // Malformed input never throws or loops.
  for (const char* s : {"", ",,,", "=", "\"unterminated", "Bearer realm=\"x", "Bearer ,=,=", "@@@ Basic"}) {
    EXPECT_NO_THROW(parse_www_authenticate(s)) << s;
  }
}

class AuthFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<fs::TempDir>("rbox-auth-test-");
    for (const char* v :
         {"RBOX_DOCKER_USERNAME", "RBOX_DOCKER_PASSWORD", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"})
      ::unsetenv(v);
    old_home_ = std::getenv("HOME") ? std::getenv("HOME") : "";
    ::setenv("HOME", dir_->path().c_str(), 1);
  }
  void TearDown() override {
    ::setenv("HOME", old_home_.c_str(), 1);
    for (const char* v : {"RBOX_DOCKER_USERNAME", "RBOX_DOCKER_PASSWORD", "REGISTRY_AUTH_FILE"})
      ::unsetenv(v);
  }
  std::unique_ptr<fs::TempDir> dir_;
  std::string old_home_;
};

TEST_F(AuthFiles, StoreLookupRemove) {
  AuthConfig ac;
  std::string file = ac.file_to_write();
  EXPECT_EQ(file, dir_->path() + "/.docker/config.json");
  EXPECT_FALSE(ac.lookup("localhost:5000").has_value());
  fs::mkdir_p(dir_->path() + "/.docker");
  fs::write_file(file, R"({"auths":{},"credsStore":"keep-me","HttpHeaders":{"X":"y"}})");
  store_credentials(file, "docker://localhost:5000", {"alice", "s3:cr3t"});
  store_credentials(file, "docker.io", {"bob", "pw"});
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto j = nlohmann::json::parse(fs::read_file(file));
  EXPECT_EQ(j["credsStore"], "keep-me");
  EXPECT_TRUE(j["auths"].contains("https://index.docker.io/v1/"));
  auto c = ac.lookup("localhost:5000");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->password, "s3:cr3t");  // only the first colon separates
  EXPECT_EQ(ac.lookup("registry-1.docker.io")->username, "bob");
  EXPECT_TRUE(remove_credentials(file, "localhost:5000"));
  EXPECT_FALSE(remove_credentials(file, "localhost:5000"));
  EXPECT_FALSE(ac.lookup("localhost:5000").has_value());
  EXPECT_TRUE(ac.lookup("docker.io").has_value());
}

TEST_F(AuthFiles, LookupOrder) {
  std::string explicit_file = dir_->path() + "/explicit.json";
  std::string env_file = dir_->path() + "/env.json";
  std::string home_file = dir_->path() + "/.docker/config.json";
  store_credentials(home_file, "r.io", {"home", "1"});
  store_credentials(env_file, "r.io", {"envfile", "2"});
  store_credentials(explicit_file, "r.io", {"explicit", "3"});
  AuthConfig ac;
  EXPECT_EQ(ac.lookup("r.io")->username, "home");
  ::setenv("REGISTRY_AUTH_FILE", env_file.c_str(), 1);
  EXPECT_EQ(ac.lookup("r.io")->username, "envfile");
  EXPECT_EQ(ac.file_to_write(), env_file);
  ac.authfile = explicit_file;
  EXPECT_EQ(ac.lookup("r.io")->username, "explicit");
  ::setenv("RBOX_DOCKER_USERNAME", "fromenv", 1);
  ::setenv("RBOX_DOCKER_PASSWORD", "pw", 1);
  EXPECT_EQ(ac.lookup("r.io")->username, "fromenv");
}

TEST_F(AuthFiles, BadFiles) {
  std::string f = dir_->path() + "/bad.json";
  fs::write_file(f, "{not json");
  EXPECT_THROW(read_auth_file(f, "x"), Error);
  fs::write_file(f, R"({"auths":{"x":{"auth":"bm9jb2xvbg=="}}})");  // "nocolon"
  try {
    read_auth_file(f, "x");
    FAIL();
  } catch (const Error& e) {
    // The message names the file and entry, never the decoded secret.
    EXPECT_EQ(std::string(e.what()).find("nocolon"), std::string::npos);
  }
  EXPECT_FALSE(read_auth_file(dir_->path() + "/missing.json", "x").has_value());
}
