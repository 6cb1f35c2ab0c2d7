#!/usr/bin/env bash
# Run a command in a network namespace of its own: a loopback interface and
# nothing else, so no route leads off the machine. The test session runs in
# it (`make pytest`, `.ci/run`): whatever a component decides to do (Ray
# looking up cloud metadata, a resolver query, a version check), a connect
# to an outside address fails at once with "network unreachable". The test
# hosts' namespaces the tests create (veth pairs) join this one, not the
# machine's. Steps that need the package registries run before, outside.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "contained.sh: a network namespace of its own needs root (run as root or with sudo)" >&2
  exit 2
fi
if [ $# -eq 0 ]; then
  echo "usage: scripts/contained.sh COMMAND [ARGS...]" >&2
  exit 2
fi
# unshare without --fork execs the command itself: Ctrl-C and exit codes pass
# straight through, and the namespace ends with the last process in it.
# One address outside 127/8 on loopback, for servers that must advertise a
# non-loopback address (kube-apiserver picks the default route's otherwise, and
# there is none): 198.18.0.0/15 is the benchmarking range, used by no network.
SESSION_ADDRESS=198.18.255.254
exec unshare --net -- env CHAOSRAY_CONTAINED=1 CHAOSRAY_SESSION_ADDRESS="$SESSION_ADDRESS" \
  bash -c 'ip link set lo up && ip addr add "$CHAOSRAY_SESSION_ADDRESS/32" dev lo && exec "$@"' contained "$@"
