// Progress bars on a TTY (stderr), one line per step otherwise, nothing with --quiet.
// Thread-safe: several bars (one per layer) may update concurrently; they are redrawn
// together as a block.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace rbox {

class Progress {
 public:
  // total == 0: unknown size (shows bytes and rate only).
  Progress(std::string label, uint64_t total);
  ~Progress();  // finishes the bar if finish() was not called
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t n);
  void set(uint64_t done);
  void set_total(uint64_t total);
  void finish(const std::string& note = {});  // final line: label, size, time, note

  static bool on_tty();  // stderr is a terminal and not --quiet

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace rbox
