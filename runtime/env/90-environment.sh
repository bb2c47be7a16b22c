#!/bin/sh
# The %environment section of the definition file is added below this line at build time.

