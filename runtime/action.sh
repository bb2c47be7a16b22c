# rbox's action driver. rbox runs it inside the container as
#   /bin/sh -c "<this file>" /.singularity.d/actions/ACTION ARGS...
# only when the image's environment files need a real shell; otherwise rbox does the same steps
# natively (src/container/environment.cpp, action.cpp) and both must stay in step. It mirrors
# Apptainer's action script: source /.singularity.d/env/*.sh in order, inject APPTAINERENV_
# values after 99-base.sh, restore host variables not already set, then dispatch. Embedded in
# the rbox binary; never written into an image.

__rbox_default_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Apptainer clears PATH before the image's files run; some shells (busybox ash) invent one.
unset PS1 PATH

__rbox_fixpath() {
  if [ -z "${PATH+x}" ]; then
    PATH=$__rbox_default_path
  else
    __rbox_ifs=$IFS
    IFS=:
    for __rbox_d in $__rbox_default_path; do
      case ":$PATH:" in
        *":$__rbox_d:"*) ;;
        *) PATH="${PATH:+$PATH:}$__rbox_d" ;;
      esac
    done
    IFS=$__rbox_ifs
  fi
  export PATH
}

# Evaluates the snippet rbox passed in $1_0 … $1_(N-1) (split to respect the kernel's 128 KiB
# limit on one environment string).
__rbox_eval_chunks() {
  __rbox_i=0
  eval "__rbox_n=\${${1}_N:-0}"
  while [ "$__rbox_i" -lt "$__rbox_n" ]; do
    eval "eval \"\${${1}_$__rbox_i}\""
    __rbox_i=$((__rbox_i + 1))
  done
}

# restore_env(): a saved variable comes back unless set; set but empty means unset.
__rbox_restore() {
  if eval "[ -z \"\${$1+x}\" ]"; then
    export "$1=$2"
  elif eval "[ -z \"\${$1}\" ]"; then
    unset "$1"
  fi
}

__rbox_injected=
__rbox_runtimevars=
if [ -d /.singularity.d/env ]; then
  for __rbox_f in /.singularity.d/env/*.sh; do
    [ -f "$__rbox_f" ] || continue
    if [ "$__rbox_f" = /.singularity.d/env/90-environment.sh ] && [ -z "${PATH+x}" ]; then
      PATH=$__rbox_default_path
      export PATH
    fi
    . "$__rbox_f"
    case "$__rbox_f" in
      /.singularity.d/env/10-docker2singularity.sh | /.singularity.d/env/10-docker.sh) __rbox_fixpath ;;
      /.singularity.d/env/99-base.sh)
        __rbox_eval_chunks RBOX_ENV_INJECT_SH
        __rbox_injected=1
        ;;
      /.singularity.d/env/99-runtimevars.sh) __rbox_runtimevars=1 ;;
    esac
  done
  [ -n "$__rbox_injected" ] || __rbox_eval_chunks RBOX_ENV_INJECT_SH
else
  if [ -f /environment ]; then
    . /environment
    __rbox_fixpath
  fi
  __rbox_eval_chunks RBOX_ENV_INJECT_SH
fi

if [ -z "$__rbox_runtimevars" ]; then
  if [ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PREPEND_PATH}:${PATH}"
    unset SING_USER_DEFINED_PREPEND_PATH
  fi
  if [ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ]; then
    PATH="${PATH}:${SING_USER_DEFINED_APPEND_PATH}"
    unset SING_USER_DEFINED_APPEND_PATH
  fi
  if [ -n "${SING_USER_DEFINED_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PATH}"
    unset SING_USER_DEFINED_PATH
  fi
  [ -z "${PATH+x}" ] || export PATH
fi

__rbox_eval_chunks RBOX_ENV_RESTORE_SH
__rbox_action=$RBOX_ACTION
__rbox_i=0
while [ "$__rbox_i" -lt "${RBOX_ENV_INJECT_SH_N:-0}" ]; do
  unset "RBOX_ENV_INJECT_SH_$__rbox_i"
  __rbox_i=$((__rbox_i + 1))
done
__rbox_i=0
while [ "$__rbox_i" -lt "${RBOX_ENV_RESTORE_SH_N:-0}" ]; do
  unset "RBOX_ENV_RESTORE_SH_$__rbox_i"
  __rbox_i=$((__rbox_i + 1))
done
unset RBOX_ENV_INJECT_SH_N RBOX_ENV_RESTORE_SH_N RBOX_ACTION

if [ -z "${PS1:-}" ]; then
  PS1="Apptainer> "
  export PS1
fi
if [ -z "${PROMPT_COMMAND:-}" ]; then
  export PROMPT_COMMAND="PS1=\"${PS1}\"; unset PROMPT_COMMAND"
else
  export PROMPT_COMMAND="${PROMPT_COMMAND:-}; PROMPT_COMMAND=\"\${PROMPT_COMMAND%%; PROMPT_COMMAND=*}\"; PS1=\"${PS1}\""
fi
export APPTAINER_ENVIRONMENT="${APPTAINER_ENVIRONMENT:-/.singularity.d/env/91-environment.sh}"
export SINGULARITY_ENVIRONMENT="${APPTAINER_ENVIRONMENT}"

case "$__rbox_action" in
  exec)
    exec "$@"
    ;;
  shell)
    if [ -n "${SINGULARITY_SHELL:-}" ] && [ -x "${SINGULARITY_SHELL}" ]; then
      exec "$SINGULARITY_SHELL" "$@"
    elif [ -x /bin/bash ]; then
      SHELL=/bin/bash
      export SHELL
      exec /bin/bash --norc "$@"
    elif [ -x /bin/sh ]; then
      SHELL=/bin/sh
      export SHELL
      exec /bin/sh "$@"
    fi
    echo "rbox: error: /bin/sh does not exist in the container" >&2
    exit 1
    ;;
  run)
    if [ -n "${SINGULARITY_APPNAME:-}" ]; then
      if [ -x "/scif/apps/${SINGULARITY_APPNAME}/scif/runscript" ]; then
        exec "/scif/apps/${SINGULARITY_APPNAME}/scif/runscript" "$@"
      fi
      echo "rbox: error: no runscript for app ${SINGULARITY_APPNAME} in the container" >&2
      exit 1
    elif [ -x /.singularity.d/runscript ]; then
      exec /.singularity.d/runscript "$@"
    elif [ -x /apptainer ]; then
      exec /apptainer "$@"
    elif [ -x /bin/sh ]; then
      echo "rbox: no runscript in the container, running /bin/sh" >&2
      exec /bin/sh "$@"
    fi
    echo "rbox: error: no runscript and no /bin/sh in the container" >&2
    exit 1
    ;;
  test)
    if [ -n "${SINGULARITY_APPNAME:-}" ]; then
      if [ -x "/scif/apps/${SINGULARITY_APPNAME}/scif/test" ]; then
        exec "/scif/apps/${SINGULARITY_APPNAME}/scif/test" "$@"
      fi
      echo "rbox: error: no test for app ${SINGULARITY_APPNAME} in the container" >&2
      exit 1
    elif [ -x /.singularity.d/test ]; then
      exec /.singularity.d/test "$@"
    fi
    echo "rbox: no test script in the container" >&2
    exit 0
    ;;
esac
echo "rbox: error: unknown action '$__rbox_action'" >&2
exit 1
