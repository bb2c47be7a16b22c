// Running a container from a Plan (the launcher side): namespaces while single-threaded, the
// session tmpfs, the image (in-process FUSE mount of a SIF, a sandbox directory, or an
// extracted copy), then the container child; the launcher keeps serving the image until the
// command and everything it left running are gone, forwarding signals, and returns the exit
// status contract of util/exit_codes.hpp: the command's code, 128+N for signal N, 255 when the
// container could not be set up, 126/127 when the command cannot run or does not exist.
#pragma once

#include "container/plan.hpp"

namespace rbox::container {

int run_container(const Plan& plan);

}  // namespace rbox::container
