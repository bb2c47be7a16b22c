#!/bin/sh
#
# rbox writes this file into /.singularity.d/env/ of every image it builds, in the place where
# Apptainer keeps its own 01-base.sh. It deliberately does nothing: it only keeps the layout the
# same so that tools expecting an Apptainer image find every file where they look for it.
