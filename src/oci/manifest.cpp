// Parsing of manifests, indexes and image configs (manifest.hpp). Every digest is validated as
// sha256 here so later code can build cache paths from it without re-checking.
#include "oci/manifest.hpp"

#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

using json = nlohmann::json;

json parse_json(const std::string& body, const std::string& what) {
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    throw Error(what + ": invalid JSON (" + std::string(e.what()) + ")");
  }
}

std::string get_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::vector<std::string> get_strings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

Descriptor parse_descriptor(const json& j, const std::string& what) {
  if (!j.is_object()) throw Error(what + ": a descriptor is not a JSON object");
  Descriptor d;
  d.media_type = get_string(j, "mediaType");
  d.digest = get_string(j, "digest");
  if (!is_sha256_digest(d.digest)) {
    if (str::starts_with(d.digest, "sha512:"))
      throw Error(what + ": digest " + d.digest.substr(0, 20) + "… uses sha512, which rbox does not support");
    throw Error(what + ": invalid digest '" + d.digest.substr(0, 80) + "' (expected sha256:<64 hex>)");
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0)
    throw Error(what + ": descriptor " + d.digest + " has no valid size");
  d.size = size->get<int64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    Platform pl;
    pl.os = get_string(*p, "os");
    pl.arch = get_string(*p, "architecture");
    pl.variant = get_string(*p, "variant");
    d.platform = pl;
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object())
    for (const auto& [k, v] : a->items())
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
  return d;
}

}  // namespace

Compression layer_compression(const std::string& mt) {
  if (mt == "application/vnd.oci.image.layer.v1.tar" ||
      mt == "application/vnd.docker.image.rootfs.diff.tar" ||
      mt == "application/vnd.oci.image.layer.nondistributable.v1.tar")
    return Compression::kNone;
  if (str::ends_with(mt, "+gzip") || mt == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
      mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
    return Compression::kGzip;
  if (str::ends_with(mt, "+zstd")) return Compression::kZstd;
  if (str::ends_with(mt, "+xz")) return Compression::kXz;
  return Compression::kUnknown;
}

ManifestKind manifest_kind(const std::string& body, const std::string& content_type) {
  std::string ct = str::trim(content_type.substr(0, content_type.find(';')));
  json j = json::parse(body, nullptr, false);
  std::string mt = j.is_object() ? get_string(j, "mediaType") : "";
  if (mt.empty()) mt = ct;
  if (mt == media::kOciIndex || mt == media::kDockerList) return ManifestKind::kIndex;
  if (mt == media::kOciManifest || mt == media::kDockerManifest) return ManifestKind::kManifest;
  if (mt == media::kDockerSchema1 || mt == media::kDockerSchema1Signed ||
      (j.is_object() && j.value("schemaVersion", 0) == 1))
    throw Error(
        "the registry returned a Docker schema 1 manifest, which rbox does not support; "
        "push the image again with a current client (schema 2 or OCI)");
  if (j.is_object() && j.contains("manifests")) return ManifestKind::kIndex;
  return ManifestKind::kManifest;
}

Manifest parse_manifest(const std::string& body, const std::string& what) {
  if (body.size() > kMaxManifestBytes) throw Error(what + ": manifest is larger than 4 MiB");
  json j = parse_json(body, what);
  if (!j.is_object()) throw Error(what + ": manifest is not a JSON object");
  Manifest m;
  auto cfg = j.find("config");
  if (cfg == j.end()) throw Error(what + ": manifest has no config descriptor");
  m.config = parse_descriptor(*cfg, what);
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) throw Error(what + ": manifest has no layers array");
  for (const auto& l : *layers) m.layers.push_back(parse_descriptor(l, what));
  for (const auto& l : m.layers)
    if (layer_compression(l.media_type) == Compression::kUnknown)
      throw Error(what + ": layer " + l.digest + " has media type '" + l.media_type +
                  "', which is not a tar layer (gzip, zstd, xz or uncompressed)");
  return m;
}

Index parse_index(const std::string& body, const std::string& what) {
  if (body.size() > kMaxManifestBytes) throw Error(what + ": index is larger than 4 MiB");
  json j = parse_json(body, what);
  auto ms = j.is_object() ? j.find("manifests") : j.end();
  if (ms == j.end() || !ms->is_array()) throw Error(what + ": index has no manifests array");
  Index idx;
  for (const auto& m : *ms) idx.manifests.push_back(parse_descriptor(m, what));
  return idx;
}

const Descriptor& select_platform(const Index& index, const Platform& want, const std::string& what) {
  std::vector<const Descriptor*> hits;
  std::vector<std::string> available;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    const auto& p = *d.platform;
    if (p.os == "unknown" && p.arch == "unknown") continue;  // buildkit attestation manifests
    if (d.media_type != media::kOciManifest && d.media_type != media::kDockerManifest &&
        !d.media_type.empty())
      continue;
    available.push_back(p.os + "/" + p.arch + (p.variant.empty() ? "" : "/" + p.variant));
    if (want.matches(p.os, p.arch, p.variant)) hits.push_back(&d);
  }
  if (hits.empty()) {
    // An index without platform fields (e.g. a single-image OCI layout): take its only manifest.
    if (available.empty() && index.manifests.size() == 1) return index.manifests[0];
    std::string list = available.empty() ? "none" : str::join(available, ", ");
    throw Error(what + " has no image for " + want.str() + "; available platforms: " + list +
                " (choose one with --platform or --arch)");
  }
  // Prefer an exact variant match (e.g. arm/v7 over arm/v6 when both satisfy "arm").
  for (const Descriptor* d : hits)
    if (d->platform->variant == want.variant) return *d;
  return *hits.front();
}

ImageConfig parse_config(const std::string& body, const std::string& what) {
  if (body.size() > kMaxConfigBytes) throw Error(what + ": image config is larger than 32 MiB");
  json j = parse_json(body, what);
  if (!j.is_object()) throw Error(what + ": image config is not a JSON object");
  ImageConfig c;
  c.raw_json = body;
  c.created = get_string(j, "created");
  c.os = get_string(j, "os");
  c.architecture = get_string(j, "architecture");
  c.variant = get_string(j, "variant");
  if (auto cfg = j.find("config"); cfg != j.end() && cfg->is_object()) {
    c.env = get_strings(*cfg, "Env");
    c.entrypoint = get_strings(*cfg, "Entrypoint");
    c.cmd = get_strings(*cfg, "Cmd");
    c.working_dir = get_string(*cfg, "WorkingDir");
    c.user = get_string(*cfg, "User");
    if (auto l = cfg->find("Labels"); l != cfg->end() && l->is_object())
      for (const auto& [k, v] : l->items())
        if (v.is_string()) c.labels[k] = v.get<std::string>();
  }
  if (auto r = j.find("rootfs"); r != j.end() && r->is_object()) {
    c.diff_ids = get_strings(*r, "diff_ids");
    for (const auto& d : c.diff_ids)
      if (!is_sha256_digest(d))
        throw Error(what + ": image config has an invalid diff_id '" + d.substr(0, 80) + "'");
  }
  return c;
}

}  // namespace rbox::oci
