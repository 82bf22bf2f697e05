#!/bin/sh
# shiptrack-healthcheck: the HEALTHCHECK of the shiptrack image (docker/Dockerfile).
#
# Reads the container's main process (pid 1, or HEALTHCHECK_PID) and decides:
#   - it runs the api role (`run --roles ...api...`, `all`, or SHIPTRACK_ROLES with
#     api): healthy while GET /healthz on SHIPTRACK_API_LISTEN answers 200;
#   - it runs other roles only: healthy while it is alive (no HTTP server to ask;
#     the supervisor restarts a role that dies, and the container ends with it);
#   - anything else (migrate, the simulator, a shell): healthy while it is alive.
# Exit 0 healthy, 1 unhealthy, with one line on stdout saying why.
set -eu

pid=${HEALTHCHECK_PID:-1}
if [ ! -r "/proc/$pid/cmdline" ]; then
    echo "unhealthy: no process $pid"
    exit 1
fi

# The process's arguments, one per line, without an init wrapper or this
# image's entry point in front.
args=$(tr '\0' '\n' <"/proc/$pid/cmdline")
old_ifs=$IFS
IFS='
'
# shellcheck disable=SC2086 # split on newlines on purpose
set -- $args
IFS=$old_ifs
case "${1##*/}" in
docker-init | tini | dumb-init | catatonit)
    while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
    [ $# -gt 0 ] && shift
    ;;
esac
[ $# -gt 0 ] && [ "${1##*/}" = docker-entrypoint ] && shift
[ $# -gt 0 ] && [ "${1##*/}" = shiptrack ] && shift

# The roles it runs, when it runs any.
roles=
if [ $# -gt 0 ] && [ "$1" = run ]; then
    shift
    roles=${SHIPTRACK_ROLES:-}
    while [ $# -gt 0 ]; do
        case "$1" in
        --roles) roles=${2:-}; break ;;
        --roles=*) roles=${1#--roles=}; break ;;
        esac
        shift
    done
    if [ -z "$roles" ]; then # the binary's default
        roles=$(shiptrack config 2>/dev/null | sed -n 's/^SHIPTRACK_ROLES=\([^ ]*\).*/\1/p')
    fi
elif [ $# -gt 0 ]; then
    case "$1" in
    *[!a-z,]* | "") ;;
    *) roles=$1 ;; # the entry point's role-list form
    esac
fi

case ",$roles," in
*,api,* | ,all,) ;;
*)
    echo "healthy: process $pid is alive (it serves no HTTP)"
    exit 0
    ;;
esac

listen=${SHIPTRACK_API_LISTEN:-127.0.0.1:8080}
port=${listen##*:}
host=${listen%:*}
case "$host" in
"" | 0.0.0.0 | "*") host=127.0.0.1 ;;
"[::]") host="[::1]" ;;
esac
if curl -fsS -o /dev/null --max-time 4 "http://$host:$port/healthz"; then
    echo "healthy: http://$host:$port/healthz answered"
    exit 0
fi
echo "unhealthy: http://$host:$port/healthz did not answer 200"
exit 1
