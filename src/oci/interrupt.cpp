// Implementation of oci/interrupt.hpp: one lock-free atomic (a store is async-signal-safe).
#include "oci/interrupt.hpp"

#include <atomic>
#include <string>

#include "util/error.hpp"

namespace rbox::oci {

namespace {
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
}  // namespace

void interrupt_pulls(int signal) {
  g_signal.store(signal);
}

int interrupt_signal() {
  return g_signal.load();
}

void check_interrupted() {
  if (int sig = g_signal.load()) throw Error("interrupted by signal " + std::to_string(sig), 128 + sig);
}

}  // namespace rbox::oci
