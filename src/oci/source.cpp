// The four image sources (source.hpp). Every manifest, index and config read here is checked
// against its descriptor's digest and size before it is parsed; layer blobs are verified in
// fetch_layer (or, for docker-archive, against the config's diff_ids while applied).
#include "oci/source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "oci/tar_index.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

using json = nlohmann::json;

std::string hash_range(int fd, int64_t offset, int64_t size, const std::string& what,
                       const ProgressFn& progress) {
  Sha256 h;
  std::string buf(1 << 20, '\0');
  for (int64_t done = 0; done < size;) {
    size_t want = static_cast<size_t>(std::min<int64_t>(size - done, static_cast<int64_t>(buf.size())));
    ssize_t n = ::pread(fd, buf.data(), want, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(what + ": the blob is shorter than its descriptor says");
    h.update(buf.data(), static_cast<size_t>(n));
    done += n;
    if (progress && !progress(done)) throw Error(what + ": cancelled");
  }
  return "sha256:" + h.hex_digest();
}

// Checks that a single-image manifest is for the requested platform.
void check_config_platform(const ImageConfig& c, const SourceOptions& o, const std::string& what) {
  if (c.architecture.empty() || o.platform.matches(c.os.empty() ? "linux" : c.os, c.architecture, c.variant))
    return;
  std::string have =
      (c.os.empty() ? "linux" : c.os) + "/" + c.architecture + (c.variant.empty() ? "" : "/" + c.variant);
  if (o.platform_explicit)
    throw Error(what + " is a single-platform image for " + have + ", not " + o.platform.str());
  log::warn(what + " is built for " + have + ", not for this host (" + o.platform.str() + ")");
}

// ---- files of an OCI layout: a directory or an archive ----

class LayoutFiles {
 public:
  virtual ~LayoutFiles() = default;
  virtual bool exists(const std::string& name) const = 0;
  virtual std::string read(const std::string& name, size_t max) const = 0;
  virtual Blob open(const std::string& name) const = 0;
};

class DirFiles : public LayoutFiles {
 public:
  explicit DirFiles(std::string dir) : dir_(std::move(dir)) {}
  bool exists(const std::string& name) const override { return fs::exists(dir_ + "/" + name); }
  std::string read(const std::string& name, size_t max) const override {
    Blob b = open(name);
    if (b.size > static_cast<int64_t>(max))
      throw Error(dir_ + "/" + name + " is larger than " + str::human_bytes(max));
    return fs::read_file(dir_ + "/" + name);
  }
  Blob open(const std::string& name) const override {
    std::string p = dir_ + "/" + name;
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw sys_error("open", p);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) throw Error(p + " is not a regular file");
    return Blob{std::move(fd), 0, st.st_size, "", {}};
  }

 private:
  std::string dir_;
};

class ArchiveFiles : public LayoutFiles {
 public:
  explicit ArchiveFiles(std::shared_ptr<TarIndex> idx) : idx_(std::move(idx)) {}
  bool exists(const std::string& name) const override { return idx_->find(name).has_value(); }
  std::string read(const std::string& name, size_t max) const override { return idx_->read(name, max); }
  Blob open(const std::string& name) const override {
    auto m = idx_->find(name);
    if (!m) throw Error(idx_->path() + ": the archive has no " + name);
    UniqueFd fd(::fcntl(idx_->fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd) throw sys_error("dup", idx_->path());
    return Blob{std::move(fd), m->offset, m->size, "", {}};
  }

 private:
  std::shared_ptr<TarIndex> idx_;
};

std::string blob_name(const std::string& digest) {
  return "blobs/sha256/" + digest.substr(7);
}

// ---- oci: and oci-archive: ----

class LayoutSource : public ImageSource {
 public:
  LayoutSource(std::unique_ptr<LayoutFiles> files, Source src, SourceOptions opts)
      : files_(std::move(files)), src_(std::move(src)), opts_(std::move(opts)) {}

  ResolvedImage resolve() override {
    std::string what = src_.str();
    if (!files_->exists("index.json") || !files_->exists("oci-layout"))
      throw Error(what + ": not an OCI image layout (no index.json/oci-layout)");
    Index top = parse_index(files_->read("index.json", kMaxManifestBytes), what + " index.json");
    std::vector<Descriptor> cands;
    std::vector<std::string> tags;
    for (const auto& d : top.manifests) {
      auto it = d.annotations.find("org.opencontainers.image.ref.name");
      std::string tag = it == d.annotations.end() ? "" : it->second;
      if (!tag.empty()) tags.push_back(tag);
      if (src_.tag.empty() || tag == src_.tag) cands.push_back(d);
    }
    if (cands.empty())
      throw Error(what + ": no image tagged '" + src_.tag +
                  "'; tags: " + (tags.empty() ? "none" : str::join(tags, ", ")));
    Descriptor d;
    if (cands.size() == 1) {
      d = cands[0];
    } else {
      bool all_platforms = true;
      for (const auto& c : cands) all_platforms = all_platforms && c.platform.has_value();
      if (!all_platforms)
        throw Error(what + " holds several images; name one as " + src_.path +
                    ":TAG (tags: " + (tags.empty() ? "none" : str::join(tags, ", ")) + ")");
      Index sub;
      sub.manifests = cands;
      d = select_platform(sub, opts_.platform, what);
    }
    for (int depth = 0; is_index(d); ++depth) {
      if (depth > 4) throw Error(what + ": indexes nested too deeply");
      Index idx = parse_index(read_verified(d, kMaxManifestBytes, what), what);
      d = select_platform(idx, opts_.platform, what);
    }
    ResolvedImage img;
    img.source = what;
    img.manifest_json = read_verified(d, kMaxManifestBytes, what);
    img.manifest_digest = d.digest;
    img.manifest = parse_manifest(img.manifest_json, what + " manifest");
    img.config = parse_config(read_verified(img.manifest.config, kMaxConfigBytes, what), what + " config");
    check_config_platform(img.config, opts_, what);
    return img;
  }

  Blob fetch_layer(const Descriptor& d, const ProgressFn& progress,
                   const std::function<void(Blob)>&) override {
    std::string what = src_.str() + " layer " + d.digest.substr(0, 19) + "…";
    Blob b = files_->open(blob_name(d.digest));
    if (b.size != d.size)
      throw Error(what + ": the blob has " + std::to_string(b.size) + " bytes, the manifest says " +
                  std::to_string(d.size));
    if (hash_range(b.fd.get(), b.offset, b.size, what, progress) != d.digest)
      throw Error(what + ": the blob's content does not match its digest (corrupt layout)");
    b.digest = d.digest;
    return b;
  }

 private:
  static bool is_index(const Descriptor& d) {
    return d.media_type == media::kOciIndex || d.media_type == media::kDockerList;
  }
  std::string read_verified(const Descriptor& d, size_t max, const std::string& what) {
    std::string data = files_->read(blob_name(d.digest), max);
    if (static_cast<int64_t>(data.size()) != d.size || "sha256:" + Sha256::hex(data) != d.digest)
      throw Error(what + ": blob " + d.digest + " does not match its digest or size (corrupt layout)");
    return data;
  }

  std::unique_ptr<LayoutFiles> files_;
  Source src_;
  SourceOptions opts_;
};

// ---- docker-archive: (docker save) ----

class DockerArchiveSource : public ImageSource {
 public:
  DockerArchiveSource(std::shared_ptr<TarIndex> idx, Source src, SourceOptions opts)
      : idx_(std::move(idx)), src_(std::move(src)), opts_(std::move(opts)) {}

  ResolvedImage resolve() override {
    std::string what = src_.str();
    json m = json::parse(idx_->read("manifest.json", kMaxManifestBytes), nullptr, false);
    if (!m.is_array() || m.empty()) throw Error(what + ": manifest.json is not a list of images");
    const json* pick = nullptr;
    std::vector<std::string> all_tags;
    for (const auto& e : m) {
      if (!e.is_object()) continue;
      for (const auto& t : e.value("RepoTags", json::array()))
        if (t.is_string()) {
          all_tags.push_back(t.get<std::string>());
          if (!src_.tag.empty() && same_tag(t.get<std::string>(), src_.tag)) pick = &e;
        }
    }
    if (src_.tag.empty()) {
      if (m.size() > 1)
        throw Error(what + " holds " + std::to_string(m.size()) + " images; name one as docker-archive:" +
                    src_.path + ":NAME:TAG (" + str::join(all_tags, ", ") + ")");
      pick = &m[0];
    }
    if (!pick)
      throw Error(what + ": no image tagged '" + src_.tag +
                  "' (tags: " + (all_tags.empty() ? "none" : str::join(all_tags, ", ")) + ")");
    std::string config_name = pick->value("Config", "");
    if (config_name.empty()) throw Error(what + ": manifest.json names no Config");
    ResolvedImage img;
    img.source = what;
    std::string cfg = idx_->read(config_name, kMaxConfigBytes);
    img.config = parse_config(cfg, what + " config");
    check_config_platform(img.config, opts_, what);
    json layers = pick->value("Layers", json::array());
    if (img.config.diff_ids.size() != layers.size())
      throw Error(what + ": the config lists " + std::to_string(img.config.diff_ids.size()) +
                  " diff_ids for " + std::to_string(layers.size()) + " layers");
    img.manifest.config = {
        media::kDockerConfig, "sha256:" + Sha256::hex(cfg), static_cast<int64_t>(cfg.size()), {}, {}};
    json man{{"schemaVersion", 2}, {"mediaType", media::kDockerManifest}};
    man["config"] = {
        {"mediaType", media::kDockerConfig}, {"digest", img.manifest.config.digest}, {"size", cfg.size()}};
    man["layers"] = json::array();
    for (size_t i = 0; i < layers.size(); ++i) {
      if (!layers[i].is_string()) throw Error(what + ": manifest.json has a non-string layer name");
      std::string name = layers[i].get<std::string>();
      auto mem = idx_->find(name);
      if (!mem) throw Error(what + ": the archive has no layer " + name);
      Descriptor d{"application/vnd.docker.image.rootfs.diff.tar", img.config.diff_ids[i], mem->size, {}, {}};
      {
        std::lock_guard lock(mu_);
        members_[d.digest] = name;
      }
      img.manifest.layers.push_back(d);
      man["layers"].push_back({{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}});
    }
    img.manifest_json = man.dump();
    img.layers_checked_by_diff_id = true;
    return img;
  }

  Blob fetch_layer(const Descriptor& d, const ProgressFn& progress,
                   const std::function<void(Blob)>&) override {
    std::string name;
    {
      std::lock_guard lock(mu_);
      name = members_.at(d.digest);
    }
    auto m = idx_->find(name);
    UniqueFd fd(::fcntl(idx_->fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd || !m) throw Error(src_.str() + ": cannot open layer " + name);
    if (progress) progress(m->size);
    return Blob{std::move(fd), m->offset, m->size, d.digest, {}};
  }

 private:
  static bool same_tag(const std::string& a, const std::string& b) {
    if (a == b) return true;
    try {
      return Reference::parse(a).str() == Reference::parse(b).str();
    } catch (const Error&) {
      return false;
    }
  }
  std::shared_ptr<TarIndex> idx_;
  Source src_;
  SourceOptions opts_;
  std::mutex mu_;
  std::map<std::string, std::string> members_;  // diff_id → member name
};

// ---- docker:// ----

class RegistrySource : public ImageSource {
 public:
  RegistrySource(Source src, SourceOptions opts)
      : src_(std::move(src)), opts_(std::move(opts)), registry_(src_.ref, opts_.registry) {
    if (!opts_.store) throw Error("internal: registry source without a blob store");
  }

  bool remote() const override { return true; }

  ResolvedImage resolve() override {
    auto client = lease();
    std::string what = src_.str();
    auto top = registry_.get_manifest(*client, src_.ref.manifest_ref());
    ResolvedImage img;
    img.source = what;
    if (manifest_kind(top.body, top.media_type) == ManifestKind::kIndex) {
      Index idx = parse_index(top.body, what);
      const Descriptor& d = select_platform(idx, opts_.platform, what);
      auto m = registry_.get_manifest(*client, d.digest);
      if (static_cast<int64_t>(m.body.size()) != d.size)
        throw Error(what + ": the platform manifest's size does not match the index");
      if (manifest_kind(m.body, m.media_type) != ManifestKind::kManifest)
        throw Error(what + ": the index entry for " + opts_.platform.str() + " is not an image manifest");
      img.manifest_json = m.body;
      img.manifest_digest = m.digest;
    } else {
      img.manifest_json = top.body;
      img.manifest_digest = top.digest;
    }
    img.manifest = parse_manifest(img.manifest_json, what + " manifest");
    const Descriptor& c = img.manifest.config;
    std::string cfg;
    if (auto cached = opts_.store->get(c.digest, kMaxConfigBytes);
        cached && static_cast<int64_t>(cached->size()) == c.size) {
      cfg = *cached;
    } else {
      FileLock lock = opts_.store->lock_digest(c.digest);  // concurrent pulls fetch it once
      if (auto again = opts_.store->get(c.digest, kMaxConfigBytes);
          again && static_cast<int64_t>(again->size()) == c.size) {
        cfg = *again;
      } else {
        cfg = registry_.get_blob(*client, c.digest, c.size, kMaxConfigBytes);
        opts_.store->put(c.digest, cfg);
      }
    }
    img.config = parse_config(cfg, what + " config");
    check_config_platform(img.config, opts_, what);
    give_back(std::move(client));
    return img;
  }

  Blob fetch_layer(const Descriptor& d, const ProgressFn& progress,
                   const std::function<void(Blob)>& early) override {
    BlobStore& store = *opts_.store;
    if (auto b = store.open_verified(d.digest, d.size, false)) {
      if (progress) progress(d.size);
      return std::move(*b);
    }
    // One process downloads a digest at a time; the others wait here and then find it cached.
    FileLock lock = store.lock_digest(d.digest);
    if (auto b = store.open_verified(d.digest, d.size, true)) {
      if (progress) progress(d.size);
      return std::move(*b);
    }
    std::string partial = store.partial_path(d.digest);
    UniqueFd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw sys_error("create", partial);
    // A partial file left by an interrupted pull is resumed. Its bytes cannot be checked until
    // the end, so such a download is not streamed, and a mismatch gets one fresh attempt.
    struct stat st;
    bool resumed = ::fstat(fd.get(), &st) == 0 && st.st_size > 0;
    std::shared_ptr<BlobFeed> feed;
    if (early && !resumed) {
      feed = std::make_shared<BlobFeed>();
      UniqueFd rfd(::open(partial.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!rfd) throw sys_error("open", partial);
      early(Blob{std::move(rfd), 0, d.size, d.digest, feed});
    }
    auto client = lease();
    for (int attempt = 0;; ++attempt) {
      try {
        registry_.download_blob(*client, d.digest, d.size, fd.get(), [&](int64_t have) {
          if (feed) feed->update(have);
          return progress ? progress(have) : true;
        });
        Blob b = store.commit(partial, d.digest, d.size);
        if (feed) feed->finish();
        give_back(std::move(client));
        return b;
      } catch (const DigestMismatch& e) {
        if (resumed && attempt == 0) {
          log::warn(e.message() + "; the resumed partial download was bad, downloading it again");
          if (::ftruncate(fd.get(), 0) != 0) throw sys_error("truncate", partial);
          continue;
        }
        ::unlink(partial.c_str());  // wrong bytes are never kept, not even for resuming
        if (feed) feed->fail(std::current_exception());
        throw;
      } catch (...) {
        if (feed) feed->fail(std::current_exception());
        throw;
      }
    }
  }

 private:
  std::unique_ptr<http::Client> lease() {
    std::lock_guard lock(mu_);
    if (pool_.empty()) return std::make_unique<http::Client>(opts_.registry.ca_file);
    auto c = std::move(pool_.back());
    pool_.pop_back();
    return c;
  }
  void give_back(std::unique_ptr<http::Client> c) {
    std::lock_guard lock(mu_);
    pool_.push_back(std::move(c));
  }

  Source src_;
  SourceOptions opts_;
  Registry registry_;
  std::mutex mu_;
  std::vector<std::unique_ptr<http::Client>> pool_;  // keeps connections alive between blobs
};

}  // namespace

std::unique_ptr<ImageSource> open_source(const Source& src, const SourceOptions& opts) {
  switch (src.kind) {
    case Source::Kind::kDocker:
      return std::make_unique<RegistrySource>(src, opts);
    case Source::Kind::kOciLayout:
      if (!fs::is_dir(src.path)) throw Error(src.str() + ": " + src.path + " is not a directory");
      return std::make_unique<LayoutSource>(std::make_unique<DirFiles>(src.path), src, opts);
    case Source::Kind::kOciArchive: {
      if (!fs::exists(src.path)) throw Error(src.str() + ": " + src.path + " does not exist");
      auto idx = std::make_shared<TarIndex>(src.path);
      return std::make_unique<LayoutSource>(std::make_unique<ArchiveFiles>(idx), src, opts);
    }
    case Source::Kind::kDockerArchive: {
      if (!fs::exists(src.path)) throw Error(src.str() + ": " + src.path + " does not exist");
      auto idx = std::make_shared<TarIndex>(src.path);
      // Newer `docker save` writes an OCI layout too; without manifest.json, read that.
      if (!idx->find("manifest.json") && idx->find("index.json"))
        return std::make_unique<LayoutSource>(std::make_unique<ArchiveFiles>(idx), src, opts);
      return std::make_unique<DockerArchiveSource>(idx, src, opts);
    }
  }
  throw Error("internal: unknown source kind");
}

}  // namespace rbox::oci
