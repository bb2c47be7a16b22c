// Implementation of util/progress.hpp: a registry of live bars redrawn under one mutex, at most
// every 100 ms, using ANSI cursor-up to rewrite the block in place.
#include "util/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox {

using Clock = std::chrono::steady_clock;

struct Progress::State {
  std::string label;
  uint64_t total = 0;
  uint64_t done = 0;
  bool finished = false;
  Clock::time_point start = Clock::now();
};

namespace {

std::mutex g_mu;
std::vector<std::shared_ptr<Progress::State>> g_live;
size_t g_drawn_lines = 0;
Clock::time_point g_last_draw;

void write_err(const std::string& s) {
  ssize_t rc = ::write(STDERR_FILENO, s.data(), s.size());
  (void)rc;
}

std::string render(const Progress::State& s) {
  double secs = std::chrono::duration<double>(Clock::now() - s.start).count();
  std::string label = s.label.size() > 28 ? s.label.substr(0, 25) + "..." : s.label;
  char buf[256];
  if (s.total > 0) {
    int width = 24;
    double frac = std::min(1.0, static_cast<double>(s.done) / static_cast<double>(s.total));
    int fill = static_cast<int>(frac * width);
    std::string bar(static_cast<size_t>(fill), '#');
    bar += std::string(static_cast<size_t>(width - fill), '-');
    std::snprintf(buf, sizeof buf, "%-28s [%s] %3d%% %10s / %-10s", label.c_str(), bar.c_str(),
                  static_cast<int>(frac * 100), str::human_bytes(s.done).c_str(),
                  str::human_bytes(s.total).c_str());
  } else {
    double rate = secs > 0 ? static_cast<double>(s.done) / secs : 0;
    std::snprintf(buf, sizeof buf, "%-28s %10s  %10s/s", label.c_str(), str::human_bytes(s.done).c_str(),
                  str::human_bytes(static_cast<unsigned long long>(rate)).c_str());
  }
  return buf;
}

// Caller holds g_mu.
void redraw(bool force) {
  auto now = Clock::now();
  if (!force && now - g_last_draw < std::chrono::milliseconds(100)) return;
  g_last_draw = now;
  std::string out;
  if (g_drawn_lines > 0) out += "\033[" + std::to_string(g_drawn_lines) + "A";
  for (const auto& s : g_live) out += "\r\033[K" + render(*s) + "\n";
  g_drawn_lines = g_live.size();
  write_err(out);
}

}  // namespace

bool Progress::on_tty() {
  return log::level() >= log::Level::kNormal && ::isatty(STDERR_FILENO);
}

Progress::Progress(std::string label, uint64_t total) : state_(std::make_shared<State>()) {
  state_->label = std::move(label);
  state_->total = total;
  if (on_tty()) {
    std::lock_guard<std::mutex> lk(g_mu);
    g_live.push_back(state_);
    redraw(true);
  }
}

Progress::~Progress() {
  if (!state_->finished) finish();
}

void Progress::add(uint64_t n) {
  std::lock_guard<std::mutex> lk(g_mu);
  state_->done += n;
  if (on_tty()) redraw(false);
}

void Progress::set(uint64_t done) {
  std::lock_guard<std::mutex> lk(g_mu);
  state_->done = done;
  if (on_tty()) redraw(false);
}

void Progress::set_total(uint64_t total) {
  std::lock_guard<std::mutex> lk(g_mu);
  state_->total = total;
}

void Progress::finish(const std::string& note) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (state_->finished) return;
  state_->finished = true;
  double secs = std::chrono::duration<double>(Clock::now() - state_->start).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f s", secs);
  std::string line = state_->label + ": " + str::human_bytes(state_->done) + " in " + buf;
  if (!note.empty()) line += " (" + note + ")";
  if (on_tty()) {
    // Print the finished line above the live block, then redraw the remaining bars.
    auto it = std::find(g_live.begin(), g_live.end(), state_);
    if (it != g_live.end()) g_live.erase(it);
    std::string out;
    if (g_drawn_lines > 0) out += "\033[" + std::to_string(g_drawn_lines) + "A";
    out += "\r\033[Krbox: " + line + "\n";
    write_err(out);
    g_drawn_lines = 0;
    redraw(true);
  } else if (log::level() >= log::Level::kNormal) {
    write_err("rbox: " + line + "\n");
  }
}

}  // namespace rbox
