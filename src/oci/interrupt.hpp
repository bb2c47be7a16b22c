// The pull-wide interruption flag: set from a signal handler (SIGINT/SIGTERM/SIGHUP), read by
// every loop that waits (downloads, retries, back-off sleeps) so that rbox stops promptly and
// removes its temporary output. Holds no other state.
#pragma once

namespace rbox::oci {

// Asks running pulls to stop; async-signal-safe. They fail with "interrupted by signal N"
// (exit code 128+N) and their temporary output is removed.
void interrupt_pulls(int signal);
// The signal that interrupted the pulls, or 0.
int interrupt_signal();
// Throws rbox::Error("interrupted by signal N", 128 + N) once interrupt_pulls has been called.
void check_interrupted();

}  // namespace rbox::oci
