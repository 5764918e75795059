# Three hosts for the fleet store's multi-host proof (issue 15, DESIGN.md §10): network
# namespaces joined by a bridge in the root namespace. Sourced by scripts/test-fleet-hosts and
# scripts/bench-fleet (as root, like CI).
#
#   fleet_net_up     creates the bridge (10.77.N.1/24, N picked free), three namespaces
#                    (10.77.N.11-13) with a veth each, and exports FLEET_NET_ID, FLEET_BRIDGE,
#                    FLEET_BRIDGE_IP, FLEET_HOSTS ("ns:ip:ifname ..."), FLEET_NS (names)
#   fleet_net_down   removes whatever this run created (idempotent; safe in a trap)
#
# Names carry the run's id (the shell's pid), so a run never collides with another's leftovers;
# the subnet is one no interface of the machine uses.

fleet_net_need_ip() {
  command -v ip >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "fleet-net: iproute2 is missing and only root may install it" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >&2
}

fleet_net_up() {
  fleet_net_need_ip || return 1
  if [ "$(id -u)" != 0 ]; then
    echo "fleet-net: network namespaces need root" >&2
    return 1
  fi
  FLEET_NET_ID=${FLEET_NET_ID:-$$}
  local id=$FLEET_NET_ID n used i ns ip
  used=$(ip -4 -o addr show | awk '{print $4}')
  n=
  for i in $(seq $((id % 200 + 20)) 250) $(seq 20 250); do
    if ! grep -q "^10\.77\.$i\." <<<"$used"; then n=$i; break; fi
  done
  [ -n "$n" ] || { echo "fleet-net: no free 10.77.N.0/24" >&2; return 1; }
  FLEET_BRIDGE="olb$id"
  FLEET_BRIDGE_IP="10.77.$n.1"
  FLEET_NS=
  FLEET_HOSTS=
  ip link add "$FLEET_BRIDGE" type bridge || return 1
  ip addr add "$FLEET_BRIDGE_IP/24" dev "$FLEET_BRIDGE" || return 1
  ip link set "$FLEET_BRIDGE" up || return 1
  for i in 1 2 3; do
    ns="olh$id-$i"
    ip="10.77.$n.$((10 + i))"
    ip netns add "$ns" || return 1
    FLEET_NS="$FLEET_NS $ns"
    ip link add "olv$id$i" type veth peer name "olp$id$i" || return 1
    ip link set "olv$id$i" master "$FLEET_BRIDGE" up || return 1
    ip link set "olp$id$i" netns "$ns" || return 1
    ip -n "$ns" link set "olp$id$i" name eth0 || return 1
    ip -n "$ns" addr add "$ip/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up || return 1
    ip -n "$ns" link set lo up || return 1
    ip -n "$ns" route add default via "$FLEET_BRIDGE_IP" || return 1
    FLEET_HOSTS="$FLEET_HOSTS $ns:$ip:eth0"
  done
  FLEET_NS=${FLEET_NS# }
  FLEET_HOSTS=${FLEET_HOSTS# }
  export FLEET_NET_ID FLEET_BRIDGE FLEET_BRIDGE_IP FLEET_NS FLEET_HOSTS
}

fleet_net_down() {
  local id=${FLEET_NET_ID:-$$} i
  for i in 1 2 3; do
    ip netns pids "olh$id-$i" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "olh$id-$i" 2>/dev/null || true
    ip link del "olv$id$i" 2>/dev/null || true
  done
  ip link del "olb$id" 2>/dev/null || true
}
