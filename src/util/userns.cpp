// Implementation of util/userns.hpp.
#include "util/userns.hpp"

#include <unistd.h>

#include <cstdio>

namespace rbox::userns {

bool is_real_root() {
  if (::geteuid() != 0) return false;
  FILE* f = std::fopen("/proc/self/uid_map", "re");
  if (!f) return false;
  unsigned long a = 1, b = 1, n = 0;
  int got = std::fscanf(f, "%lu %lu %lu", &a, &b, &n);
  std::fclose(f);
  return got == 3 && a == 0 && b == 0 && n == 4294967295ul;
}

}  // namespace rbox::userns
