#!/bin/sh
#
# Sourced by the container's action. When an app is selected (rbox run --app NAME, which sets
# SINGULARITY_APPNAME), put the app's directories first on PATH and LD_LIBRARY_PATH and read
# the app's own environment files from its SCIF metadata directory.

if test -n "${SINGULARITY_APPNAME:-}"; then
    export SINGULARITY_APPNAME
    _rbox_app="/scif/apps/${SINGULARITY_APPNAME:-}"

    if test -d "$_rbox_app/"; then
        SCIF_APPS="/scif/apps"
        SCIF_APPROOT="$_rbox_app"
        export SCIF_APPROOT SCIF_APPS
        PATH="$_rbox_app:/scif/apps/singularity:$PATH"

        if test -d "$_rbox_app/bin"; then
            PATH="$_rbox_app/bin:$PATH"
        elif test -d "/scif/apps/singularity/bin"; then
            PATH="/scif/apps/singularity/bin:$PATH"
        fi

        if test -d "$_rbox_app/lib"; then
            LD_LIBRARY_PATH="$_rbox_app/lib:$LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH
        elif test -d "/scif/apps/singularity/lib"; then
            LD_LIBRARY_PATH="/scif/apps/singularity/lib:$LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH
        fi

        for _rbox_env in 01-base.sh 90-environment.sh; do
            if [ -f "$_rbox_app/scif/env/$_rbox_env" ]; then
                . "$_rbox_app/scif/env/$_rbox_env"
            elif [ -f "/scif/apps/singularity/scif/env/$_rbox_env" ]; then
                . "/scif/apps/singularity/scif/env/$_rbox_env" "$@"
            fi
        done
        unset _rbox_env

        export PATH
    else
        echo "Could not locate the container application: ${SINGULARITY_APPNAME}"
        exit 1
    fi
    unset _rbox_app
fi
