// Exit codes of rbox, shared by code and tests (tests/integration/lib.sh mirrors them).
// A container command's own status passes through unchanged; rbox's own failures use the
// codes below. Apptainer exits 255 when the container could not be set up; rbox does too.
#pragma once

namespace rbox::exit_code {

inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;            // rbox itself failed (bad input, I/O, registry, …)
inline constexpr int kUsage = 2;              // bad command line, or command not implemented yet
inline constexpr int kCannotExecute = 126;    // the command exists in the container but cannot run
inline constexpr int kNotFound = 127;         // the command does not exist in the container
inline constexpr int kSignalBase = 128;       // the command was killed by signal N: 128 + N
inline constexpr int kHostUnsupported = 253;  // this host forbids rootless containers (rbox check)
inline constexpr int kImageServerDied = 254;  // the in-process FUSE server failed under the command
inline constexpr int kRuntimeFailure = 255;   // the container could not be set up

}  // namespace rbox::exit_code
