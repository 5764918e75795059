# The fleet's test hosts, for scripts/test-fleet-hosts and scripts/bench-fleet (sourced, as
# root, from the repository's root): three network namespaces on a bridge
# (tests/fleet_hosts/netns.sh) and a private PostgreSQL (scripts/pg-cluster) listening on the
# bridge too, with the password role; both removed on exit (trap), even on failure.
#
#   fleet_hosts_up   exports FLEET_HOSTS, FLEET_BRIDGE_IP, FLEET_PG_URL (no password),
#                    FLEET_PG_PASSWORD and PGPASSWORD, and scripts/pg-cluster's PG_CLUSTER_*

# shellcheck source=tests/fleet_hosts/netns.sh
. tests/fleet_hosts/netns.sh
# shellcheck source=scripts/pg-cluster
. scripts/pg-cluster

fleet_hosts_cleanup() {
  local rc=$?
  set +e
  [ -n "${PG_CLUSTER_DIR:-}" ] && pg_cluster_stop "$PG_CLUSTER_DIR"
  fleet_net_down
  exit "$rc"
}

fleet_hosts_up() {
  export FLEET_NET_ID=$$
  # A cluster scripts/test started is its own: never stop it here.
  unset PG_CLUSTER_DIR OAUTH_LOCK_TEST_PG_URL OAUTH_LOCK_TEST_PG_ADMIN
  trap fleet_hosts_cleanup EXIT
  trap 'exit 130' INT TERM

  printf '\n== fleet hosts: three namespaces on a bridge\n'
  fleet_net_up
  echo "bridge $FLEET_BRIDGE $FLEET_BRIDGE_IP; hosts $FLEET_HOSTS"

  printf '\n== fleet hosts: PostgreSQL, a private cluster listening on the bridge too\n'
  PG_CLUSTER_KEEP=1 pg_cluster_start
  echo "host all all ${FLEET_BRIDGE_IP%.1}.0/24 scram-sha-256" >>"$PG_CLUSTER_DIR/data/pg_hba.conf"
  pg_cluster_as "$PG_CLUSTER_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" -l "$PG_CLUSTER_DIR/log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1,$FLEET_BRIDGE_IP -p $PG_CLUSTER_PORT -k $PG_CLUSTER_DIR -c max_connections=200 -c fsync=off" \
    restart >/dev/null
  FLEET_PG_PASSWORD=$(cat "$PG_CLUSTER_DIR/pw")
  export FLEET_PG_PASSWORD PGPASSWORD=$FLEET_PG_PASSWORD
  export FLEET_PG_URL="postgresql://oauth_lock@$FLEET_BRIDGE_IP:$PG_CLUSTER_PORT/oauth_lock_test?sslmode=disable"
  echo "store $FLEET_PG_URL (password in PGPASSWORD)"
}
