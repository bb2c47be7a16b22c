// Parsing of image references, sources and platforms (reference.hpp). The grammar follows the
// Docker distribution reference rules; errors quote the text and say what form is expected.
#include "oci/reference.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t[0])) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

bool valid_registry(std::string_view r) {
  if (r.empty()) return false;
  if (r.front() == '[') return r.find(']') != std::string_view::npos;  // IPv6 literal
  for (char c : r)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':') return false;
  return true;
}

[[noreturn]] void bad_ref(const std::string& text, const std::string& why) {
  throw Error(
      "invalid image reference '" + text + "': " + why +
      "; expected [registry/]repository[:tag][@sha256:digest], e.g. docker.io/library/busybox:latest");
}

}  // namespace

bool is_sha256_digest(const std::string& d) {
  if (d.size() != 71 || d.compare(0, 7, "sha256:") != 0) return false;
  for (size_t i = 7; i < d.size(); ++i) {
    char c = d[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string normalize_registry(const std::string& name) {
  std::string n = str::lower(name);
  if (str::starts_with(n, "https://"))
    n = n.substr(8);
  else if (str::starts_with(n, "http://"))
    n = n.substr(7);
  else if (str::starts_with(n, "docker://"))
    n = n.substr(9);
  auto slash = n.find('/');
  if (slash != std::string::npos) n = n.substr(0, slash);
  if (n == "index.docker.io" || n == "registry-1.docker.io" || n == "registry.hub.docker.com")
    n = "docker.io";
  return n;
}

bool is_loopback_host(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  host = str::lower(host);
  if (host == "localhost" || host == "::1" || str::ends_with(host, ".localhost")) return true;
  if (!str::starts_with(host, "127.")) return false;
  for (char c : host)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  return true;
}

Reference Reference::parse(const std::string& text) {
  if (text.empty()) bad_ref(text, "it is empty");
  if (text.size() > 512) bad_ref(text.substr(0, 40) + "…", "it is too long");
  Reference r;
  std::string rest = text;
  if (auto at = rest.find('@'); at != std::string::npos) {
    r.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (!is_sha256_digest(r.digest)) {
      if (r.digest.find(':') != std::string::npos && !str::starts_with(r.digest, "sha256:"))
        bad_ref(text, "only sha256 digests are supported");
      bad_ref(text, "the digest must be sha256: followed by 64 lower-case hex digits");
    }
  }
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash)) {
    r.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!valid_tag(r.tag)) bad_ref(text, "the tag '" + r.tag + "' may only contain letters, digits, _ . -");
  }
  auto first_slash = rest.find('/');
  std::string head = first_slash == std::string::npos ? "" : rest.substr(0, first_slash);
  bool has_registry = first_slash != std::string::npos &&
                      (head.find_first_of(".:") != std::string::npos || head == "localhost" ||
                       head.front() == '[' || str::lower(head) != head);
  if (has_registry) {
    if (!valid_registry(head)) bad_ref(text, "the registry '" + head + "' is not a host name");
    r.registry = normalize_registry(head);
    rest = rest.substr(first_slash + 1);
  } else {
    r.registry = "docker.io";
  }
  if (rest.empty()) bad_ref(text, "the repository name is missing");
  if (r.registry == "docker.io" && rest.find('/') == std::string::npos) rest = "library/" + rest;
  for (const auto& c : str::split(rest, '/')) {
    if (c.empty()) bad_ref(text, "the repository has an empty path component");
    if (str::lower(c) != c) bad_ref(text, "repository names must be lower-case");
    if (!valid_component(c)) bad_ref(text, "'" + c + "' is not a valid repository component");
  }
  if (rest.size() > 255) bad_ref(text, "the repository name is longer than 255 characters");
  r.repository = rest;
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

std::string Reference::str() const {
  std::string s = registry + "/" + repository;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::api_host() const {
  return registry == "docker.io" ? "registry-1.docker.io" : registry;
}

// ---- platforms ----

static std::string canonical_arch(std::string a, std::string* variant) {
  a = str::lower(a);
  if (a == "x86_64" || a == "x86-64" || a == "amd64") return "amd64";
  if (a == "aarch64" || a == "arm64") return "arm64";
  if (a == "i386" || a == "i486" || a == "i586" || a == "i686" || a == "386") return "386";
  if (a == "armhf" || a == "armv7l" || a == "armv7") {
    if (variant->empty()) *variant = "v7";
    return "arm";
  }
  if (a == "armel" || a == "armv6l" || a == "armv6") {
    if (variant->empty()) *variant = "v6";
    return "arm";
  }
  if (a == "armv5tel" || a == "armv5l") {
    if (variant->empty()) *variant = "v5";
    return "arm";
  }
  if (a == "ppc64el") return "ppc64le";
  if (a == "riscv64" || a == "s390x" || a == "ppc64le" || a == "arm" || a == "mips64le" || a == "loong64")
    return a;
  return a;
}

Platform Platform::host() {
  struct utsname u {};
  ::uname(&u);
  Platform p;
  p.arch = canonical_arch(u.machine, &p.variant);
  if (p.arch == "arm64") p.variant = "v8";
  return p;
}

Platform Platform::parse(const std::string& text) {
  auto parts = str::split(text, '/');
  Platform p;
  auto bad = [&] {
    throw Error("invalid platform '" + text + "': expected os/arch[/variant] (e.g. linux/arm64/v8) or arch");
  };
  for (const auto& part : parts)
    if (part.empty()) bad();
  if (parts.size() == 1) {
    p.arch = parts[0];
  } else if (parts.size() == 2 && (parts[0] == "linux" || parts[0] == "windows" || parts[0] == "darwin")) {
    p.os = parts[0];
    p.arch = parts[1];
  } else if (parts.size() == 2) {
    p.arch = parts[0];
    p.variant = parts[1];
  } else if (parts.size() == 3) {
    p.os = parts[0];
    p.arch = parts[1];
    p.variant = parts[2];
  } else {
    bad();
  }
  p.os = str::lower(p.os);
  p.variant = str::lower(p.variant);
  p.arch = canonical_arch(p.arch, &p.variant);
  return p;
}

std::string Platform::str() const {
  return os + "/" + arch + (variant.empty() ? "" : "/" + variant);
}

bool Platform::matches(const std::string& o, const std::string& a, const std::string& v) const {
  if (o != os) return false;
  std::string want_variant = variant, have_variant = str::lower(v);
  std::string have_arch = canonical_arch(a, &have_variant);
  if (have_arch != arch) return false;
  if (want_variant.empty()) return true;
  if (arch == "arm64") {
    if (want_variant == "v8" && have_variant.empty()) return true;
  }
  return have_variant == want_variant;
}

// ---- sources ----

Source Source::parse(const std::string& text) {
  Source s;
  auto after = [&](std::string_view prefix) { return text.substr(prefix.size()); };
  if (str::starts_with(text, "docker://")) {
    s.kind = Kind::kDocker;
    s.ref = Reference::parse(after("docker://"));
    return s;
  }
  std::string rest;
  if (str::starts_with(text, "oci:")) {
    s.kind = Kind::kOciLayout;
    rest = after("oci:");
  } else if (str::starts_with(text, "oci-archive:")) {
    s.kind = Kind::kOciArchive;
    rest = after("oci-archive:");
  } else if (str::starts_with(text, "docker-archive:")) {
    s.kind = Kind::kDockerArchive;
    rest = after("docker-archive:");
  } else {
    throw Error("unknown image source '" + text +
                "': write docker://REF, oci:DIR[:tag], oci-archive:FILE[:tag] or docker-archive:FILE");
  }
  if (rest.empty()) throw Error("image source '" + text + "' names no path");
  s.path = rest;
  // A path may itself contain ':'; treat the suffix as a tag only when the whole text is not an
  // existing file or directory.
  if (!fs::exists(rest)) {
    auto colon = rest.find(':');
    if (colon != std::string::npos && colon > 0) {
      s.path = rest.substr(0, colon);
      s.tag = rest.substr(colon + 1);
      if (s.tag.empty()) throw Error("image source '" + text + "' has an empty tag after ':'");
    }
  }
  return s;
}

std::string Source::str() const {
  switch (kind) {
    case Kind::kDocker:
      return "docker://" + ref.str();
    case Kind::kOciLayout:
      return "oci:" + path + (tag.empty() ? "" : ":" + tag);
    case Kind::kOciArchive:
      return "oci-archive:" + path + (tag.empty() ? "" : ":" + tag);
    case Kind::kDockerArchive:
      return "docker-archive:" + path + (tag.empty() ? "" : ":" + tag);
  }
  return {};
}

}  // namespace rbox::oci
