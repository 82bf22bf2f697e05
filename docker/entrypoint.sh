#!/bin/sh
# docker-entrypoint: the entry point of the shiptrack image (docker/Dockerfile).
#
#   ROLE[,ROLE...] [OPTIONS]   shiptrack run --roles ROLE[,ROLE...] [OPTIONS]   (also: all)
#   -... | COMMAND [ARGS]      shiptrack COMMAND [ARGS] (run, migrate, register, config, ...)
#   PROGRAM [ARGS]             PROGRAM itself when it is on PATH (sh, shiptrack-carrier-sim, ...)
#
# shiptrack is exec'd, so it is the process that receives SIGTERM from
# `docker stop` (it drains its roles and exits 0).
set -eu

# The roles of `shiptrack run`; tests/deploy/check.py fails when this list and
# the binary's differ.
ROLES="poller relay intake notifier scanner api"

# True when $1 is a comma-separated list of known roles, or "all".
is_role_list() {
    [ "$1" = all ] && return 0
    case "$1" in "" | ,* | *, | *,,*) return 1 ;; esac
    old_ifs=$IFS
    IFS=,
    for r in $1; do
        case " $ROLES " in
        *" $r "*) ;;
        *) IFS=$old_ifs; return 1 ;;
        esac
    done
    IFS=$old_ifs
    return 0
}

if [ $# -eq 0 ]; then
    exec shiptrack run
fi
if is_role_list "$1"; then
    roles=$1
    shift
    exec shiptrack run --roles "$roles" "$@"
fi
case "$1" in
-*) exec shiptrack "$@" ;;
esac
if [ "$1" != shiptrack ] && command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi
[ "$1" = shiptrack ] && shift
exec shiptrack "$@"
