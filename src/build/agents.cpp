// Bootstrap agents (agents.hpp). Agent behaviour follows Apptainer's conveyor packers
// (internal/pkg/build/sources/conveyorPacker_*.go): same files, same debootstrap arguments.
#include "build/agents.hpp"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "build/files_copy.hpp"
#include "build/launch.hpp"
#include "image/image.hpp"
#include "image/sif.hpp"
#include "oci/http.hpp"
#include "oci/pull.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lock.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace rbox::build {
namespace {

const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string where(const deffile::Definition& d) {
  return d.source_name + ":" + std::to_string(d.first_line) + ": ";
}

// Looks like "name[:tag]" / "host[:port]/path/name[:tag]" / "…@sha256:…" rather than a file name:
// components of [A-Za-z0-9._-], at most a port, a tag and a digest, and a ':' or '/' somewhere.
bool looks_like_registry_ref(const std::string& s) {
  if (s.empty() || s[0] == '/' || s[0] == '.' || str::ends_with(s, ".sif") || str::ends_with(s, ".img") ||
      str::ends_with(s, ".sqsh") || str::ends_with(s, ".squashfs"))
    return false;
  std::string name = s.substr(0, s.find('@'));
  if (name.size() != s.size() && !str::starts_with(s.substr(name.size()), "@sha256:")) return false;
  auto word_ok = [](std::string_view w) {
    if (w.empty()) return false;
    for (char c : w)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
    return true;
  };
  auto parts = str::split(name, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    size_t colon = p.find(':');
    // A colon may separate a port (first component) or a tag (last component).
    if (colon != std::string_view::npos) {
      if (i != 0 && i + 1 != parts.size()) return false;
      if (!word_ok(p.substr(0, colon)) || !word_ok(p.substr(colon + 1))) return false;
    } else if (!word_ok(p)) {
      return false;
    }
  }
  return s.find(':') != std::string::npos || s.find('/') != std::string::npos;
}

std::string find_tool(const std::string& name) {
  std::string p = proc::which(name);
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
    if (p.empty() && ::access((std::string(dir) + name).c_str(), X_OK) == 0) p = std::string(dir) + name;
  return p;
}

int run_tool(const AgentContext& ctx, LaunchSpec spec) {
  spec.mode = ctx.plan.mode;
  spec.filter = ctx.filter;
  spec.on_line = ctx.on_line;
  return launch(spec);
}

void write_shell_runscript(const RootFs& root) {
  root.write_file(".singularity.d/runscript", "#!/bin/sh\n", 0755);
}

BootstrapResult scratch(const AgentContext& ctx) {
  write_base_environment(ctx.root, true);
  write_shell_runscript(ctx.root);
  return {true, std::nullopt, "an empty root filesystem"};
}

void download(const std::string& url, const std::string& dest) {
  UniqueFd out(::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755));
  if (!out) throw sys_error("create", dest);
  oci::http::Client client;
  oci::http::Request req;
  req.url = url;
  uint64_t written = 0;
  req.sink = [&](const char* data, size_t n) {
    written += n;
    return ::write(out.get(), data, n) == static_cast<ssize_t>(n);
  };
  auto resp = client.perform(req);
  if (resp.status < 200 || resp.status >= 300)
    throw Error("MirrorURL " + url + ": HTTP " + std::to_string(resp.status));
  std::string len = resp.header("content-length");
  if (!len.empty() && std::to_string(written) != len)
    throw Error("MirrorURL " + url + ": received " + std::to_string(written) + " bytes, expected " + len);
}

BootstrapResult busybox(const AgentContext& ctx) {
  const RootFs& root = ctx.root;
  write_base_environment(root, true);
  root.write_file("etc/passwd", "root:!:0:0:root:/root:/bin/sh\n", 0664);
  root.write_file("etc/group", "root:x:0:\n", 0664);
  root.write_file("etc/hosts",
                  "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n", 0664);
  root.mkdirs("bin", 0755);
  const std::string bin = root.host_path("bin/busybox");
  const std::string url = ctx.stage.header_value("mirrorurl");
  std::string what;
  if (!url.empty()) {
    log::info("downloading busybox from " + url);
    download(url, bin);
    what = "busybox from " + url;
  } else {
    std::string host = find_tool("busybox");
    if (host.empty())
      throw Error(where(ctx.stage) +
                  "Bootstrap: busybox without MirrorURL uses the host's busybox, which is not "
                  "installed; install busybox-static or set MirrorURL to a static busybox binary");
    if (is_dynamic_elf(host))
      throw Error(
          where(ctx.stage) + "the host's busybox (" + host +
          ") is dynamically linked and would not run in the image; install busybox-static or set MirrorURL");
    UniqueFd in(::open(host.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) throw sys_error("open", host);
    UniqueFd out = root.open("bin/busybox", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0755);
    char buf[1 << 16];
    for (ssize_t n; (n = ::read(in.get(), buf, sizeof buf)) > 0;)
      if (::write(out.get(), buf, static_cast<size_t>(n)) != n) throw sys_error("write", bin);
    ::fchmod(out.get(), 0755);
    what = "the host's busybox (" + host + ")";
  }
  LaunchSpec s;
  s.rootfs = root.path();
  s.argv = {"/bin/busybox", "--install", "/bin"};
  s.env = {std::string("PATH=") + kDefaultPath};
  if (int rc = run_tool(ctx, s); rc != 0)
    throw Error("busybox --install failed (exit " + std::to_string(rc) + ")");
  write_shell_runscript(root);
  return {true, std::nullopt, what};
}

std::string host_codename() {
  try {
    for (const auto& line : str::split_lines(fs::read_file("/etc/os-release")))
      if (str::starts_with(line, "VERSION_CODENAME=")) {
        std::string v = line.substr(17);
        v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
        return v;
      }
  } catch (const Error&) {
  }
  return "";
}

BootstrapResult debootstrap(const AgentContext& ctx) {
  const auto& st = ctx.stage;
  std::string tool = find_tool("debootstrap");
  if (tool.empty())
    throw Error(
        where(st) +
        "Bootstrap: debootstrap needs debootstrap on the host; install it (apt-get install debootstrap)");
  std::string mirror = st.header_value("mirrorurl");
  if (mirror.empty()) {
    mirror = host_apt_mirror();
    if (mirror.empty())
      throw Error(where(st) +
                  "no MirrorURL given and no Debian mirror found in /etc/apt/sources.list(.d); add e.g. "
                  "'MirrorURL: http://deb.debian.org/debian'");
    log::info("MirrorURL not set: using the host's mirror " + mirror);
  }
  std::string suite = st.header_value("osversion");
  if (suite.empty()) {
    suite = host_codename();
    if (suite.empty())
      throw Error(where(st) + "Bootstrap: debootstrap needs OSVersion (e.g. 'OSVersion: bookworm')");
    log::info("OSVersion not set: using the host's release " + suite);
  }
  std::string include =
      str::trim(st.header_value("include") + " " + (std::getenv("INCLUDE") ? std::getenv("INCLUDE") : ""));
  std::string inc = "apt";
  for (const auto& w : str::split(include, ' '))
    if (!str::trim(w).empty()) inc += "," + str::trim(w);

  const RootFs& root = ctx.root;
  root.mkdirs("dev", 0755);
  std::vector<std::string> argv = {tool, "--variant=minbase", "--exclude=openssl,udev,debconf-i18n,e2fsprogs",
                                   "--include=" + inc, "--arch=amd64"};
  std::optional<FileLock> cache_lock;
  if (!ctx.cache_dir.empty()) {
    // .debs are kept between builds; the lock keeps two builds from filling it at once.
    std::string cache = ctx.cache_dir + "/debootstrap/" + suite;
    fs::mkdir_p(cache, 0700);
    cache_lock.emplace(ctx.cache_dir + "/debootstrap/" + suite + ".lock");
    argv.push_back("--cache-dir=" + cache);
  }
  argv.insert(argv.end(), {suite, root.path(), mirror});
  LaunchSpec s;
  s.argv = argv;
  s.env = {std::string("PATH=") + kDefaultPath, "HOME=/root", "LANG=C", "DEBIAN_FRONTEND=noninteractive"};
  s.host_dev_targets = {root.path()};
  log::info("debootstrap " + suite + " from " + mirror + " (packages: minbase + " + inc + ")");
  int rc = run_tool(ctx, s);
  if (rc != 0) {
    std::string hint;
    if (auto logtext = root.read_file("debootstrap/debootstrap.log")) {
      auto lines = str::split_lines(*logtext);
      size_t from = lines.size() > 5 ? lines.size() - 5 : 0;
      for (size_t i = from; i < lines.size(); ++i) hint += "\n  " + lines[i];
    }
    throw Error("debootstrap failed (exit " + std::to_string(rc) + ")" +
                (hint.empty() ? "" : "; end of its log:" + hint));
  }
  // The placeholders host devices were bound onto, and the host files debootstrap copies in.
  for (const auto& n : host_device_names()) {
    auto stt = root.stat("dev/" + n);
    if (stt && S_ISREG(stt->st_mode) && stt->st_size == 0) root.remove("dev/" + n);
  }
  root.remove("etc/hostname");
  {
    UniqueFd fd = root.open("", O_RDONLY | O_DIRECTORY);
    ::fchmod(fd.get(), 0755);
  }
  write_base_environment(root, true);
  write_shell_runscript(root);
  return {true, std::nullopt, "debootstrap " + suite + " from " + mirror};
}

// Puts a cached base tree under ctx.root through an overlay; false when that is not possible
// (no cache, or the kernel refused the mount), and the caller unpacks into ctx.root instead.
bool overlay_cached(const AgentContext& ctx, const std::string& key,
                    const std::function<void(const std::string&)>& fill, const std::string& what) {
  const OverlaySlot& o = ctx.overlay;
  if (!o.cache || key.empty()) return false;
  bool hit = false;
  auto entry = o.cache->get(key, fill, &hit);
  fs::mkdir_p(o.upper, 0755);
  fs::mkdir_p(o.work, 0700);
  std::string why = mount_overlay(entry.tree, o.upper, o.work, ctx.root.path());
  if (!why.empty()) {
    log::verbose("overlay over the cached base refused (" + why + "); unpacking into the build tree");
    return false;
  }
  log::info(std::string(hit ? "using the cached base tree of " : "cached the base tree of ") + what +
            (hit ? "" : " for later builds"));
  o.pins->push_back(std::move(entry));
  ctx.root.reopen();
  return true;
}

BootstrapResult localimage(const AgentContext& ctx) {
  const std::string from = ctx.stage.header_value("from");
  if (!ctx.stage.header_value("fingerprints").empty())
    log::warn("Fingerprints: SIF signature checks are not supported by rbox; the image is used unverified");
  if (fs::is_dir(from)) {
    log::info("copying sandbox " + from);
    copy_tree(from, ctx.root);
  } else {
    auto loc = image::locate(from);
    image::ExtractOptions x;
    // Inside the build's user namespace "root" is the invoking user: keep set-id bits (the
    // image needs them); owners only mean something with a subuid map or real root.
    x.keep_setid_as_root = true;
    x.preserve_owners = ctx.plan.mode != container::FakerootMode::kRootMapped;
    auto extract = [&](const std::string& dir) {
      log::info("extracting " + std::string(image::format_name(loc.format)) + " image " + from);
      image::extract(loc, dir, x);
    };
    // A SIF names itself (random id + times in its header); with size and mtime that identifies
    // the bytes well enough to reuse an earlier extraction.
    std::string key;
    if (loc.format == image::Format::kSif) {
      struct stat st {};
      auto sif = image::sif::Sif::open(from);
      if (::stat(from.c_str(), &st) == 0)
        key = "sif\n" + sif.id_string() + "\n" + std::to_string(st.st_size) + "\n" +
              std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    }
    if (!overlay_cached(ctx, key, extract, from)) extract(ctx.root.path());
  }
  write_base_environment(ctx.root, false);
  return {false, std::nullopt, from};
}

std::string config_object(const std::string& raw) {
  try {
    auto j = nlohmann::json::parse(raw);
    if (j.contains("config") && j["config"].is_object()) return j["config"].dump();
  } catch (const std::exception&) {
  }
  return "{}";
}

BootstrapResult oci_agent(const AgentContext& ctx, Agent agent) {
  std::string source = oci_source(ctx.stage, agent);
  oci::PullOptions po;
  po.authfile = ctx.authfile;
  if (!ctx.cache_dir.empty()) po.cache_dir = ctx.cache_dir;
  log::info("fetching " + source);
  oci::ImageConfig config;
  std::string name, digest;
  bool done = false;
  if (ctx.overlay.cache) {
    auto info = oci::inspect_image(source, po);
    std::string key;
    if (!info.manifest_digest.empty()) key = "oci\n" + info.manifest_digest + "\n" + po.platform.str();
    done = overlay_cached(
        ctx, key, [&](const std::string& dir) { oci::unpack_image(source, dir, po); }, info.source);
    config = info.config;
    name = info.source;
    digest = info.manifest_digest;
  }
  if (!done) {
    auto img = oci::unpack_image(source, ctx.root.path(), po);
    config = img.config;
    name = img.source;
    digest = img.manifest_digest;
  }
  write_base_environment(ctx.root, true);
  OciImageConfig c;
  c.env = config.env;
  c.entrypoint = config.entrypoint;
  c.cmd = config.cmd;
  c.labels = config.labels;
  c.config_json = config_object(config.raw_json);
  c.base_name = name;
  c.base_digest = digest;
  write_oci_metadata(ctx.root, c);
  return {true, c, name};
}

}  // namespace

bool is_dynamic_elf(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  Elf64_Ehdr eh{};
  if (::pread(fd.get(), &eh, sizeof eh, 0) != sizeof eh || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    return false;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    off_t off = static_cast<off_t>(eh.e_phoff + static_cast<uint64_t>(i) * eh.e_phentsize);
    if (::pread(fd.get(), &ph, sizeof ph, off) != sizeof ph) return false;
    if (ph.p_type == PT_INTERP) return true;
  }
  return false;
}

std::string host_apt_mirror(const std::string& root) {
  const std::string base = (root == "/" ? "" : root) + "/etc/apt/";
  auto first_deb_uri = [](const std::string& text, bool deb822) -> std::string {
    if (!deb822) {
      for (const auto& raw : str::split_lines(text)) {
        std::string line = str::trim(raw.substr(0, raw.find('#')));
        if (!str::starts_with(line, "deb ") && !str::starts_with(line, "deb\t")) continue;
        for (const auto& w : str::split(line.substr(4), ' ')) {
          std::string t = str::trim(w);
          if (t.empty() || t[0] == '[') continue;  // [arch=… signed-by=…] options
          if (t.find("://") != std::string::npos) return t;
        }
      }
      return "";
    }
    // deb822: paragraphs of "Key: value"; the URIs of the first enabled paragraph of type deb.
    std::string types, uris;
    bool enabled = true;
    auto lines = str::split_lines(text);
    lines.emplace_back();  // the file's end closes the last paragraph
    for (const auto& raw : lines) {
      std::string line = str::trim(raw);
      if (line.empty()) {
        if (!uris.empty() && enabled && (" " + types + " ").find(" deb ") != std::string::npos)
          return str::split(uris, ' ')[0];
        types.clear();
        uris.clear();
        enabled = true;
        continue;
      }
      if (line[0] == '#') continue;
      std::string lower = str::lower(line);
      if (str::starts_with(lower, "types:")) types = str::trim(line.substr(6));
      if (str::starts_with(lower, "uris:")) uris = str::trim(line.substr(5));
      if (str::starts_with(lower, "enabled:")) enabled = str::lower(str::trim(line.substr(8))) != "no";
    }
    return "";
  };
  auto read = [](const std::string& p) -> std::string {
    try {
      return fs::read_file(p);
    } catch (const Error&) {
      return "";
    }
  };
  std::vector<std::string> candidates;
  if (auto m = first_deb_uri(read(base + "sources.list"), false); !m.empty()) candidates.push_back(m);
  std::vector<std::string> names;
  if (DIR* d = ::opendir((base + "sources.list.d").c_str())) {
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    std::string p = base + "sources.list.d/" + n;
    if (str::ends_with(n, ".list")) {
      if (auto m = first_deb_uri(read(p), false); !m.empty()) candidates.push_back(m);
    } else if (str::ends_with(n, ".sources")) {
      if (auto m = first_deb_uri(read(p), true); !m.empty()) candidates.push_back(m);
    }
  }
  // Prefer the main archive over security/updates mirrors.
  for (const auto& c : candidates)
    if (c.find("security") == std::string::npos) return c;
  return candidates.empty() ? "" : candidates[0];
}

Agent check_bootstrap(const deffile::Definition& stage) {
  const std::string agent = str::lower(stage.bootstrap());
  const std::string from = stage.header_value("from");
  const std::string at = where(stage);
  if (agent.empty())
    throw Error(
        at +
        "no Bootstrap: header; start the definition with e.g. 'Bootstrap: docker' and 'From: debian:12'");
  auto need_from = [&](const char* example) {
    if (from.empty())
      throw Error(at + "Bootstrap: " + agent + " needs a From: header (e.g. 'From: " + example + "')");
  };
  if (agent == "scratch") return Agent::kScratch;
  if (agent == "busybox") return Agent::kBusybox;
  if (agent == "debootstrap") return Agent::kDebootstrap;
  if (agent == "docker") return need_from("debian:bookworm"), Agent::kDocker;
  if (agent == "oci") return need_from("./layout-dir:tag"), Agent::kOci;
  if (agent == "oci-archive") return need_from("image.tar"), Agent::kOciArchive;
  if (agent == "docker-archive") return need_from("image.tar"), Agent::kDockerArchive;
  if (agent == "localimage") {
    need_from("base.sif");
    if (!fs::exists(from)) {
      if (looks_like_registry_ref(from))
        throw Error(
            at + "Bootstrap: localimage takes a SIF file, SquashFS file or sandbox directory, and '" + from +
            "' is not one here; it looks like a registry image: use 'Bootstrap: docker' with 'From: " + from +
            "'");
      throw Error(at + "Bootstrap: localimage: '" + from + "' does not exist (paths are relative to " +
                  fs::absolute(".") + ")");
    }
    return Agent::kLocalimage;
  }
  if (agent == "yum" || agent == "dnf")
    throw Error(at + "Bootstrap: " + agent + " is not supported by rbox (it needs rpm and " + agent +
                " on the host); start from a registry image instead, e.g. 'Bootstrap: docker' with 'From: "
                "rockylinux:9' (or fedora:40, almalinux:9), and install packages with dnf in %post");
  if (agent == "zypper")
    throw Error(at +
                "Bootstrap: zypper is not supported by rbox (it needs zypper and rpm on the host); use "
                "'Bootstrap: docker' with 'From: opensuse/leap:15.6' and zypper in %post");
  if (agent == "arch" || agent == "pacstrap")
    throw Error(at +
                "Bootstrap: arch is not supported by rbox; use 'Bootstrap: docker' with 'From: archlinux'");
  if (agent == "library" || agent == "oras" || agent == "shub" || agent == "docker-daemon" ||
      agent == "buildkit" || agent == "dockerfile")
    throw Error(at + "Bootstrap: " + agent +
                " is not supported by rbox; push the image to an OCI registry and use "
                "'Bootstrap: docker', or save it and use 'Bootstrap: docker-archive'");
  throw Error(
      at + "unknown Bootstrap: '" + stage.bootstrap() +
      "'; rbox supports docker, oci, oci-archive, docker-archive, localimage, debootstrap, busybox, scratch");
}

std::string oci_source(const deffile::Definition& stage, Agent agent) {
  std::string ref = stage.header_value("from");
  switch (agent) {
    case Agent::kDocker: {
      if (!stage.header_value("namespace").empty()) ref = stage.header_value("namespace") + "/" + ref;
      if (!stage.header_value("registry").empty()) ref = stage.header_value("registry") + "/" + ref;
      return "docker://" + ref;
    }
    case Agent::kOci:
      return "oci:" + ref;
    case Agent::kOciArchive:
      return "oci-archive:" + ref;
    case Agent::kDockerArchive:
      return "docker-archive:" + ref;
    default:
      return ref;
  }
}

BootstrapResult bootstrap(const AgentContext& ctx, Agent agent) {
  switch (agent) {
    case Agent::kScratch:
      return scratch(ctx);
    case Agent::kBusybox:
      return busybox(ctx);
    case Agent::kDebootstrap:
      return debootstrap(ctx);
    case Agent::kLocalimage:
      return localimage(ctx);
    default:
      return oci_agent(ctx, agent);
  }
}

}  // namespace rbox::build
