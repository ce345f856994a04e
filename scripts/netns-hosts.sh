#!/usr/bin/env bash
# Three test hosts on this machine: network namespaces PREFIX0..PREFIX2 with
# addresses 10.251.0.1..3, joined by veth links to a bridge in a fourth
# namespace (PREFIXsw), so nothing touches the host's own network. As root.
#
#   scripts/netns-hosts.sh up [PREFIX] [RATE]   RATE e.g. 10gbit (tc tbf on each link)
#   scripts/netns-hosts.sh down [PREFIX]
#
# netem delay is not available on these kernels: model latency, don't emulate it.
set -euo pipefail
cmd="${1:-}" prefix="${2:-cg}" rate="${3:-}"
sw="${prefix}sw"

down() {
  for ns in "${prefix}0" "${prefix}1" "${prefix}2" "$sw"; do ip netns del "$ns" 2>/dev/null || true; done
}

case "$cmd" in
  up)
    down
    ip netns add "$sw"
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    ip -n "$sw" link set lo up
    for i in 0 1 2; do
      ns="${prefix}$i"
      ip netns add "$ns"
      ip link add "${prefix}h$i" type veth peer name "${prefix}s$i"
      ip link set "${prefix}h$i" netns "$ns"
      ip link set "${prefix}s$i" netns "$sw"
      ip -n "$ns" link set "${prefix}h$i" name eth0
      ip -n "$ns" addr add "10.251.0.$((i + 1))/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
      ip -n "$sw" link set "${prefix}s$i" master br0
      ip -n "$sw" link set "${prefix}s$i" up
      if [ -n "$rate" ]; then
        ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 4mb latency 50ms
      fi
    done
    echo "hosts: ${prefix}0=10.251.0.1 ${prefix}1=10.251.0.2 ${prefix}2=10.251.0.3${rate:+ (rate $rate)}"
    ;;
  down) down ;;
  *) echo "usage: $0 up|down [PREFIX] [RATE]" >&2; exit 2 ;;
esac
