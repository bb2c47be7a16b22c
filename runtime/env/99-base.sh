#!/bin/sh
#
# Sourced last among the image's own files: make host libraries bound at run time into
# /.singularity.d/libs (GPU drivers, fakeroot) loadable, and give shells a default prompt.

if [ -z "$LD_LIBRARY_PATH" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi

if test -z "${PS1:-}"; then
    export PS1="Apptainer> "
fi
export LD_LIBRARY_PATH PS1
