#!/usr/bin/env bash
# Runs one cryptgpu subcommand as its three parties, one per host, and collects
# their output and exit status.
#
#   scripts/run-3hosts.sh --parties parties.json [--launcher 'ssh {host}'] \
#       [--cli 'cd ~/cryptgpu && npx -y deno@2.9.6 task cryptgpu'] [--logs DIR] -- SUBCOMMAND ARGS...
#
# --launcher is a command prefix in which {i} is the party index and {host}
# its host from the parties file: 'ssh {host}' (default), 'ip netns exec ns{i}',
# or any launcher of your own. Each party gets --party i --parties FILE (the
# path as the party sees it: pass --remote-parties if it differs) and a common
# --session. Party 0's output is printed; every party's full log is in DIR.
set -euo pipefail

parties="" launcher='ssh {host}' cli="" logs="" remote_parties=""
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
while [ $# -gt 0 ]; do
  case "$1" in
    --parties) parties="$2"; shift 2 ;;
    --remote-parties) remote_parties="$2"; shift 2 ;;
    --launcher) launcher="$2"; shift 2 ;;
    --cli) cli="$2"; shift 2 ;;
    --logs) logs="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "run-3hosts: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$parties" ] || { echo "run-3hosts: --parties FILE is required" >&2; exit 2; }
[ $# -gt 0 ] || { echo "run-3hosts: give the subcommand after --" >&2; exit 2; }
[ -f "$parties" ] || { echo "run-3hosts: no parties file $parties" >&2; exit 2; }
cli="${cli:-cd $root && npx -y deno@2.9.6 task cryptgpu}"
remote_parties="${remote_parties:-$(cd "$(dirname "$parties")" && pwd)/$(basename "$parties")}"
logs="${logs:-$(mktemp -d)}"
mkdir -p "$logs"
session="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
hosts=($(python3 -c 'import json,sys; print(" ".join(p["host"] for p in json.load(open(sys.argv[1]))["parties"]))' "$parties"))

quote() { printf '%q ' "$@"; }
pids=()
for i in 0 1 2; do
  prefix="${launcher//\{i\}/$i}"
  prefix="${prefix//\{host\}/${hosts[$i]}}"
  cmd="$cli $(quote "$@") --party $i --parties $(quote "$remote_parties") --session $session"
  # shellcheck disable=SC2086
  $prefix bash -c "$cmd" >"$logs/party$i.out" 2>"$logs/party$i.err" &
  pids+=($!)
done

status=0
for i in 0 1 2; do
  if wait "${pids[$i]}"; then code=0; else code=$?; fi
  echo "party $i: exit $code" >&2
  [ "$code" -eq 0 ] || status=1
done
cat "$logs/party0.out"
for i in 0 1 2; do
  if [ -s "$logs/party$i.err" ] && [ "$status" -ne 0 ]; then sed "s/^/[party $i] /" "$logs/party$i.err" | tail -5 >&2; fi
done
echo "logs: $logs" >&2
exit "$status"
