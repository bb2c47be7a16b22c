#!/bin/sh
#
# Written by rbox into /.singularity.d/env/ of every image it builds, as Apptainer does.
# Files in this directory are sourced in lexical order by the container's action; this one
# is a placeholder kept for layout compatibility with Apptainer images.
