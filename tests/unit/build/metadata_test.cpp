// Tests for build::Metadata and RootFs: Apptainer's /.singularity.d layout, OCI runscript and
// environment (executed with the host /bin/sh), labels merging, apps and inspect metadata.
#include "build/metadata.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "deffile/parser.hpp"
#include "image/sif_metadata.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace rbox::build {
namespace {

std::string sh(const std::string& script, const std::vector<std::string>& args = {},
               const std::vector<std::string>& env = {"PATH=/usr/bin:/bin"}) {
  std::vector<std::string> argv{"/bin/sh", "-c", script, "sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  proc::Options o;
  o.capture_stdout = true;
  o.env = env;
  return proc::run(argv, o).output;
}

TEST(RootFs, SymlinksStayInsideTheRoot) {
  fs::TempDir tmp;
  std::string root = tmp.path() + "/root", outside = tmp.path() + "/outside";
  fs::mkdir_p(root);
  fs::mkdir_p(outside);
  fs::mkdir_p(root + outside);  // where the absolute link lands when resolved inside the root
  // An image whose /.singularity.d points at a host directory by absolute path.
  ASSERT_EQ(::symlink(outside.c_str(), (root + "/.singularity.d").c_str()), 0);
  RootFs r(root);
  r.mkdirs(".singularity.d/env");
  r.write_file(".singularity.d/env/x.sh", "hello");
  EXPECT_FALSE(fs::exists(outside + "/env/x.sh"));
  EXPECT_TRUE(fs::exists(root + outside + "/env/x.sh"));  // resolved inside the root
  EXPECT_EQ(r.read_file("/.singularity.d/env/x.sh").value(), "hello");
  ASSERT_EQ(::symlink("../../../../etc/passwd", (root + "/up").c_str()), 0);
  EXPECT_FALSE(r.read_file("up").has_value());  // ".." clamps at the root
  r.remove(".singularity.d");
  EXPECT_TRUE(fs::is_dir(outside));  // removing the link never follows it
  EXPECT_FALSE(fs::exists(root + "/.singularity.d"));
}

TEST(Metadata, BaseEnvironmentLayout) {
  fs::TempDir tmp;
  fs::mkdir_p(tmp.path() + "/etc");
  fs::write_file(tmp.path() + "/etc/hosts", "127.0.0.1 host\n", 0444);
  RootFs r(tmp.path());
  write_base_environment(r, true);
  for (const char* d : {".singularity.d/libs", ".singularity.d/actions", ".singularity.d/env", "dev", "proc",
                        "root", "var/tmp", "tmp", "etc", "sys", "home"})
    EXPECT_TRUE(r.is_dir(d)) << d;
  for (const char* f :
       {".singularity.d/actions/exec", ".singularity.d/actions/run", ".singularity.d/actions/shell",
        ".singularity.d/actions/start", ".singularity.d/actions/test", ".singularity.d/env/01-base.sh",
        ".singularity.d/env/90-environment.sh", ".singularity.d/env/95-apps.sh",
        ".singularity.d/env/99-base.sh", ".singularity.d/env/99-runtimevars.sh", ".singularity.d/runscript",
        ".singularity.d/startscript"}) {
    auto st = r.stat(f);
    ASSERT_TRUE(st) << f;
    EXPECT_EQ(st->st_mode & 07777, 0755u) << f;
  }
  EXPECT_EQ(r.read_file("etc/hosts").value(), "");  // truncated, as Apptainer does
  EXPECT_EQ(r.stat("etc/hosts")->st_mode & 0777, 0644u);
  EXPECT_EQ(r.read_file("etc/resolv.conf").value(), "");
  char buf[256];
  ssize_t n = ::readlink((tmp.path() + "/singularity").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), ".singularity.d/runscript");
  n = ::readlink((tmp.path() + "/environment").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), ".singularity.d/env/90-environment.sh");
  // The default runscript says so; 99-base.sh sets the prompt and libs path.
  EXPECT_NE(
      sh("unset PS1; . " + tmp.path() + "/.singularity.d/env/99-base.sh; echo \"$PS1|$LD_LIBRARY_PATH\""),
      "");
  EXPECT_EQ(
      sh("unset PS1; . " + tmp.path() + "/.singularity.d/env/99-base.sh; echo \"$PS1|$LD_LIBRARY_PATH\""),
      "Apptainer> |/.singularity.d/libs\n");

  // overwrite=false keeps existing files (localimage).
  r.write_file(".singularity.d/runscript", "#!/bin/sh\necho mine\n", 0700);
  write_base_environment(r, false);
  EXPECT_EQ(r.read_file(".singularity.d/runscript").value(), "#!/bin/sh\necho mine\n");
  EXPECT_EQ(r.stat(".singularity.d/runscript")->st_mode & 0777, 0755u);
}

TEST(Metadata, RuntimeVarsApplyPathRequests) {
  fs::TempDir tmp;
  RootFs r(tmp.path());
  write_base_environment(r, true);
  std::string f = tmp.path() + "/.singularity.d/env/99-runtimevars.sh";
  EXPECT_EQ(sh(". " + f + "; echo $PATH", {},
               {"PATH=/bin", "SING_USER_DEFINED_PREPEND_PATH=/a", "SING_USER_DEFINED_APPEND_PATH=/z"}),
            "/a:/bin:/z\n");
  EXPECT_EQ(sh(". " + f + "; echo $PATH${SING_USER_DEFINED_PATH:-unset}", {},
               {"PATH=/bin", "SING_USER_DEFINED_PATH=/only"}),
            "/onlyunset\n");
}

TEST(Metadata, OciEnvironmentScript) {
  std::string s = oci_env_script(
      {"PATH=/opt/bin:/usr/bin", "LANG=C.UTF-8", "EMPTY=", "NOVALUE", "1BAD=x", "Q=say \"hi\" $HOME"});
  EXPECT_NE(s.find("export PATH=\"/opt/bin:/usr/bin\"\n"), std::string::npos);
  EXPECT_NE(s.find("export LANG=\"${LANG:-\"C.UTF-8\"}\"\n"), std::string::npos);
  EXPECT_NE(s.find("export EMPTY=\"${EMPTY:-\"\"}\"\n"), std::string::npos);
  EXPECT_NE(s.find("export NOVALUE=\"${NOVALUE:-}\"\n"), std::string::npos);
  EXPECT_EQ(s.find("1BAD"), std::string::npos);
  EXPECT_EQ(s.rfind("#!/bin/sh\n", 0), 0u);
  // Values from the host win over the image's, except PATH.
  fs::TempDir tmp;
  fs::write_file(tmp.path() + "/e.sh", s);
  EXPECT_EQ(sh(". " + tmp.path() + "/e.sh; echo \"$PATH|$LANG|$EMPTY\"", {}, {"PATH=/host", "LANG=en"}),
            "/opt/bin:/usr/bin|en|\n");
}

TEST(Metadata, OciRunscriptCombinations) {
  fs::TempDir tmp;
  auto run = [&](const std::vector<std::string>& ep, const std::vector<std::string>& cmd,
                 const std::vector<std::string>& args, bool no_eval = false) {
    std::string path = tmp.path() + "/rs";
    fs::write_file(path, oci_runscript(ep, cmd), 0755);
    std::vector<std::string> env{"PATH=/usr/bin:/bin", "X=expanded"};
    if (no_eval) env.push_back("SINGULARITY_NO_EVAL=1");
    return sh(". " + path, args, env);
  };
  std::string rs = oci_runscript({"/bin/echo", "it's"}, {"a b"});
  EXPECT_NE(rs.find("OCI_ENTRYPOINT='\"/bin/echo\" \"it'\"'\"'s\"'\n"), std::string::npos);
  EXPECT_NE(rs.find("\neval \"set ${SINGULARITY_OCI_RUN}\"\nexec \"$@\"\n"), std::string::npos);
  EXPECT_EQ(run({"/bin/echo", "e"}, {"c1", "c2"}, {}), "e c1 c2\n");
  EXPECT_EQ(run({"/bin/echo", "e"}, {"c1"}, {"x y"}), "e x y\n");
  EXPECT_EQ(run({}, {"/bin/echo", "cmd"}, {}), "cmd\n");
  EXPECT_EQ(run({}, {"/bin/echo", "cmd"}, {"/bin/echo", "over"}), "over\n");
  EXPECT_EQ(run({"/bin/echo"}, {}, {"only"}), "only\n");
  // Evaluation expands variables; --no-eval keeps words literal.
  // Image words are escaped; arguments pass through the shell's evaluation unless --no-eval.
  EXPECT_EQ(run({"/bin/echo"}, {"$X"}, {}), "$X\n");
  EXPECT_EQ(run({"/bin/echo"}, {}, {"$X"}), "expanded\n");
  EXPECT_EQ(run({"/bin/echo"}, {}, {"$X"}, true), "$X\n");
  EXPECT_EQ(run({"/bin/echo", "e"}, {"c1"}, {"a"}, true), "e a\n");
  EXPECT_EQ(run({"/bin/echo", "e"}, {"c1"}, {}, true), "e c1\n");
  EXPECT_EQ(run({}, {"/bin/echo", "c"}, {}, true), "c\n");
}

TEST(Metadata, GoJsonLabels) {
  EXPECT_EQ(go_json_labels({}), "{}");
  EXPECT_EQ(go_json_labels({{"b", "2"}, {"a", "<x & \"y\">\n"}}),
            "{\n\t\"a\": \"\\u003cx \\u0026 \\\"y\\\"\\u003e\\n\",\n\t\"b\": \"2\"\n}");
}

TEST(Metadata, LabelsDefinitionAndScripts) {
  fs::TempDir tmp;
  RootFs r(tmp.path());
  write_base_environment(r, true);
  r.write_file(".singularity.d/labels.json", "{\n\t\"from.base\": \"1\",\n\t\"Owner\": \"base\"\n}");
  r.write_file(".build.labels", "FromPost yes\n# skipped\n");
  r.write_file(".singularity.d/Singularity", "old def");
  auto def = deffile::parse(
                 "Bootstrap: docker\nFrom: debian\n%labels\nOwner me\nVersion 2\n%help\nSome help\n"
                 "%environment\nexport A=1\n%runscript\necho run \"$@\"\n%test\n#!/bin/bash\necho ok\n"
                 "%startscript\necho start\n",
                 "t.def")
                 .last();
  BuildInfo info;
  info.now = 1627931376;  // 2021-08-02 19:09:36 UTC
  write_metadata(r, def, def.fullraw, SectionFilter{}, info);
  auto labels = nlohmann::json::parse(r.read_file(".singularity.d/labels.json").value());
  EXPECT_EQ(labels["Owner"], "base");  // existing key kept without --force
  EXPECT_EQ(labels["Version"], "2");
  EXPECT_EQ(labels["FromPost"], "yes");
  EXPECT_EQ(labels["from.base"], "1");
  EXPECT_EQ(labels["org.label-schema.schema-version"], "1.0");
  EXPECT_EQ(labels["org.label-schema.usage.singularity.deffile.bootstrap"], "docker");
  EXPECT_EQ(labels["org.label-schema.usage.singularity.deffile.from"], "debian");
  EXPECT_EQ(labels["org.label-schema.usage"], "/.singularity.d/runscript.help");
  EXPECT_EQ(labels["org.label-schema.build-arch"], "amd64");
  EXPECT_TRUE(labels.contains("org.opencontainers.image.created"));
  EXPECT_FALSE(r.exists(".build.labels"));
  EXPECT_EQ(r.read_file(".singularity.d/runscript.help").value(), "Some help\n\n");
  EXPECT_EQ(r.read_file(".singularity.d/Singularity").value(), def.fullraw);
  EXPECT_EQ(r.read_file(".singularity.d/bootstrap_history/Apptainer0").value(), "old def");
  EXPECT_NE(r.read_file(".singularity.d/env/90-environment.sh").value().find("\nexport A=1\n"),
            std::string::npos);
  EXPECT_EQ(r.read_file(".singularity.d/runscript").value(), "#!/bin/sh\n\necho run \"$@\"\n\n");
  EXPECT_EQ(r.read_file(".singularity.d/test").value(), "#!/bin/bash\n\necho ok\n\n");
  EXPECT_EQ(r.read_file(".singularity.d/startscript").value(), "#!/bin/sh\n\necho start\n\n");

  // --force replaces labels; --section limits what is written.
  info.force = true;
  write_metadata(r, def, def.fullraw, SectionFilter::parse("labels"), info);
  labels = nlohmann::json::parse(r.read_file(".singularity.d/labels.json").value());
  EXPECT_EQ(labels["Owner"], "me");
  EXPECT_EQ(r.read_file(".singularity.d/bootstrap_history/Apptainer1").value(), def.fullraw);
  EXPECT_THROW(SectionFilter::parse("post,bogus"), Error);

  // What `rbox inspect` and the SIF object are made of (image::collect_metadata) sees it too.
  auto m = image::collect_metadata(image::read_from_dir(tmp.path()), image::list_from_dir(tmp.path()));
  EXPECT_EQ(m.runscript, "#!/bin/sh\n\necho run \"$@\"");
  EXPECT_EQ(m.labels["Version"], "2");
  EXPECT_TRUE(m.environment.count("/.singularity.d/env/90-environment.sh"));
}

TEST(Metadata, LabelSchemaDate) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  EXPECT_EQ(label_schema_date(1627931376), "Monday_2_August_2021_19:9:36_UTC");
}

TEST(Metadata, ScifApps) {
  fs::TempDir tmp;
  RootFs r(tmp.path());
  write_base_environment(r, true);
  auto def =
      deffile::parse(
          "Bootstrap: scratch\n%appinstall foo\necho installing\n%apprun foo\necho foo \"$@\"\n"
          "%applabels foo\nKIND tool\n%appenv foo\nFOO=1\n%apphelp foo\nfoo help\n%appinstall bar-2\ntrue\n",
          "a.def")
          .last();
  std::vector<std::pair<std::string, std::string>> copies;
  std::string post =
      write_apps(r, def, [&](const std::string& s, const std::string& d) { copies.emplace_back(s, d); });
  for (const char* d : {"scif/apps/foo/bin", "scif/apps/foo/lib", "scif/apps/foo/scif/env",
                        "scif/data/foo/input", "scif/data/foo/output", "scif/apps/bar-2/scif"})
    EXPECT_TRUE(r.is_dir(d)) << d;
  EXPECT_EQ(r.read_file("scif/apps/foo/scif/runscript").value(), "#!/bin/sh\n\necho foo \"$@\"\n\n");
  EXPECT_EQ(r.read_file("scif/apps/foo/scif/env/90-environment.sh").value(), "FOO=1\n");
  auto labels = nlohmann::json::parse(r.read_file("scif/apps/foo/scif/labels.json").value());
  EXPECT_EQ(labels["SCIF_APP_NAME"], "foo");
  EXPECT_EQ(labels["KIND"], "tool");
  std::string g = r.read_file(".singularity.d/env/94-appsbase.sh").value();
  EXPECT_NE(g.find("SCIF_APPBIN_foo=/scif/apps/foo/bin"), std::string::npos);
  EXPECT_NE(g.find("export SCIF_APPRUN_foo=\"/scif/apps/foo/scif/runscript\""), std::string::npos);
  EXPECT_NE(g.find("SCIF_APPDATA_bar_2"), std::string::npos);
  EXPECT_NE(post.find("cd /scif/apps/foo\necho installing\n"), std::string::npos);
  EXPECT_LT(post.find("scif/apps/foo"), post.find("scif/apps/bar-2"));
  auto m = image::collect_metadata(image::read_from_dir(tmp.path()), image::list_from_dir(tmp.path()));
  EXPECT_EQ(m.apps["foo"].helpfile, "foo help");
  EXPECT_EQ(m.apps["foo"].labels["KIND"], "tool");

  // No apps: an empty 94-appsbase.sh, nothing added to %post.
  fs::TempDir tmp2;
  RootFs r2(tmp2.path());
  write_base_environment(r2, true);
  EXPECT_EQ(write_apps(r2, deffile::parse("Bootstrap: scratch\n", "b.def").last(), {}), "");
  EXPECT_EQ(r2.read_file(".singularity.d/env/94-appsbase.sh").value(), "");
}

}  // namespace
}  // namespace rbox::build
