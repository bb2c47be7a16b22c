// Streaming SHA-256 (OpenSSL EVP) for blob verification and cache keys.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace rbox {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex_digest();  // lower-case hex; the object is then reset

  static std::string hex(std::string_view data);
  static std::string file_hex(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rbox
