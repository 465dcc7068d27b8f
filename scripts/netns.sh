#!/usr/bin/env bash
# Network partitions for one process: runs it (a feed-api instance) in a Linux
# network namespace whose only way out is a veth link to the host, so that a
# test can cut it off from its backends (Kafka brokers, PostgreSQL) and heal
# it again, while clients on the host keep reaching its HTTP port.
#
#   scripts/netns.sh create NAME --backend-ports P1,P2,... [--http-port Q[,Q2...]]
#                                [--subnet A.B.C.D/30]
#                       make namespace NAME; print "127.0.0.1:Q" (the address the
#                       host uses for the process's HTTP port) as the only
#                       stdout line, nothing when --http-port is absent
#   scripts/netns.sh exec NAME -- CMD...
#                       run CMD inside (ip netns exec execs it, so the pid the
#                       caller gets is CMD's own; the caller stops it)
#   scripts/netns.sh cut NAME      drop every packet between the process and the
#                                  backends, silently (no RST, no ICMP)
#   scripts/netns.sh heal NAME     stop dropping them; connections resume
#   scripts/netns.sh delete NAME   remove all that create made; safe to repeat
#                                  (stop the process inside first: one still
#                                  running keeps a namespace with only lo)
#   scripts/netns.sh status NAME   print name=, state= (connected or cut),
#                                  subnet=, host_address=, namespace_address=,
#                                  backend_ports=, http_ports= and pids= lines
#                                  and exit 0 when NAME exists, exit 3 when not
#
# While cut, a connection the process opens hangs (connect times out) and one
# it had open stays open but carries nothing either way; TCP retransmits, so
# after heal it carries on. Connections the host opens to the HTTP port are
# not part of the partition. Outside a cut a backend that is down still looks
# down: its port answers with a reset, as on the host.
#
# Inside the namespace the process uses the host's addresses unchanged:
# connecting to 127.0.0.1:Pi reaches the host's 127.0.0.1:Pi (Kafka advertises
# 127.0.0.1:port and the database URL names 127.0.0.1), and a server inside
# listening on 127.0.0.1:Q is reached from the host at 127.0.0.1:Q. Both ways
# the peer is seen as 127.0.0.1, so loopback-only access rules (pg_hba.conf)
# still admit it. IPv4 and TCP only; ::1 inside is the namespace's own.
#
# How: kernel NAT (nftables) over the veth, with route_localnet on both ends so
# 127.0.0.1 may be rewritten onto a real link; no userspace forwarders. NAME
# gets a /30 out of 198.18.0.0/15 (RFC 2544's range for test networks, which
# real LANs, VPNs and container bridges leave alone), picked by a hash of NAME
# and moved on when taken, so namespaces coexist; --subnet chooses one (in
# 10/8, 172.16/12, 192.168/16 or 198.18/15). Nothing on the host changes
# beyond the link fn-NAME, the nftables table "ip feed-netns-NAME" and the
# record /run/feed-netns/NAME, which marks NAME as made here: delete, exec,
# cut and heal refuse a namespace without it.
#
# While any namespace exists the host's connections are tracked by conntrack
# (NAT needs it); deleting the last one stops that.
#
# NAME is 1 to 12 of [a-z0-9-]. Needs root, iproute2 and nftables (Debian
# packages iproute2, nftables; scripts/install-deps.sh installs them).
# Messages go to stderr; stdout carries only the results named above.
set -euo pipefail

readonly STATE_ROOT=/run/feed-netns
readonly LOCK_TIMEOUT=30
readonly NS_LINK=veth0
# 198.18.0.0/15 as a number, and its count of /30 blocks.
readonly POOL_BASE=$(( 198 << 24 | 18 << 16 ))
readonly POOL_BLOCKS=32768
readonly SUBNET_TRIES=64

say() { echo "netns.sh: $*" >&2; }
die() { say "$*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}
misuse() { say "$*"; usage >&2; exit 2; }

need_tools() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces and nftables need CAP_NET_ADMIN)"
  command -v ip >/dev/null 2>&1 || die "ip not found; install iproute2 (Debian package: iproute2)"
  command -v nft >/dev/null 2>&1 || die "nft not found; install nftables (Debian package: nftables; scripts/install-deps.sh does)"
  command -v flock >/dev/null 2>&1 || die "flock not found; install util-linux"
  ip netns list >/dev/null 2>&1 || die "'ip netns' does not work here (no network namespace support?)"
}

check_name() {
  [[ "$1" =~ ^[a-z0-9-]{1,12}$ ]] ||
    die "NAME must be 1 to 12 of [a-z0-9-] (it names the link fn-NAME, at most 15 characters), got '$1'"
}

# A comma-separated list of distinct TCP ports, printed one a line.
parse_ports() {
  local what="$1" list="$2" p seen=" "
  [[ -n "$list" ]] || die "$what needs at least one port"
  local IFS=,
  for p in $list; do
    [[ "$p" =~ ^[0-9]+$ ]] && (( 10#$p >= 1 && 10#$p <= 65535 )) || die "$what: '$p' is not a TCP port"
    p=$(( 10#$p ))
    [[ "$seen" != *" $p "* ]] || die "$what: port $p is named twice"
    seen+="$p "
    echo "$p"
  done
}

host_link() { echo "fn-$1"; }
host_table() { echo "feed-netns-$1"; }
state_dir() { echo "$STATE_ROOT/$1"; }

ns_exists() {
  [[ -e "/run/netns/$1" ]] && return 0
  local list
  list="$(ip netns list 2>/dev/null)" || true
  [[ -n "$(awk -v n="$1" '$1 == n' <<<"$list")" ]]
}
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
table_exists() { nft list table ip "$1" >/dev/null 2>&1; }
ours() { [[ -f "$(state_dir "$1")/config" ]]; }

# Serialises create and delete, so two creates never pick one subnet.
lock() {
  mkdir -p "$STATE_ROOT"
  exec 9>"$STATE_ROOT/.lock"
  flock -w "$LOCK_TIMEOUT" 9 || die "timed out after ${LOCK_TIMEOUT}s waiting for another netns.sh create/delete"
}

# Reads key=value lines of NAME's record into the CFG_* variables.
load_config() {
  local name="$1" key value
  CFG_SUBNET='' CFG_HOST_ADDR='' CFG_NS_ADDR='' CFG_BACKEND_PORTS='' CFG_HTTP_PORTS=''
  while IFS='=' read -r key value; do
    case "$key" in
      subnet) CFG_SUBNET="$value" ;;
      host_address) CFG_HOST_ADDR="$value" ;;
      namespace_address) CFG_NS_ADDR="$value" ;;
      backend_ports) CFG_BACKEND_PORTS="$value" ;;
      http_ports) CFG_HTTP_PORTS="$value" ;;
    esac
  done <"$(state_dir "$name")/config"
}

# Every command but create works only on a namespace create made.
require_ours() {
  local name="$1"
  if ! ours "$name"; then
    if ns_exists "$name"; then
      die "namespace '$name' was not made by netns.sh (no $(state_dir "$name")); leaving it alone"
    fi
    die "no namespace '$name' (make it with: scripts/netns.sh create $name --backend-ports ...)"
  fi
  ns_exists "$name" || die "namespace '$name' is gone but its record remains; run: scripts/netns.sh delete $name"
  load_config "$name"
}

ip4_to_int() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  # 10#: an octet written "08" is not octal.
  echo $(( 10#$a << 24 | 10#$b << 16 | 10#$c << 8 | 10#$d ))
}
int_to_ip4() { echo "$(( $1 >> 24 & 255 )).$(( $1 >> 16 & 255 )).$(( $1 >> 8 & 255 )).$(( $1 & 255 ))"; }

# True when any address or route on the host already lies in the /30 at BASE.
subnet_taken() {
  local cidr
  cidr="$(int_to_ip4 "$1")/30"
  [[ -n "$(ip -4 -o addr show to "$cidr")" ]] && return 0
  # Captured before grep: with pipefail, grep -q closing a pipe early could
  # fail the writer, and with it this check.
  local routes
  routes="$(ip -4 route show table all match "$cidr" 2>/dev/null)" || true
  grep -qvE '^(default|$)' <<<"$routes"
}

# Prints the base (as a number) of a free /30: --subnet's, or one derived from
# NAME's checksum, stepping on past blocks in use.
pick_subnet() {
  local name="$1" wanted="$2" base i
  if [[ -n "$wanted" ]]; then
    [[ "$wanted" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/30$ ]] || die "--subnet must look like A.B.C.D/30, got '$wanted'"
    local octet
    for octet in $(tr './' '  ' <<<"${wanted%/30}"); do
      (( 10#$octet <= 255 )) || die "--subnet: '$wanted' is not an IPv4 address"
    done
    base=$(ip4_to_int "${wanted%/30}")
    (( base % 4 == 0 )) || die "--subnet: $wanted does not start a /30 (its last octet must be a multiple of 4)"
    # Only ranges that never mean anything beyond this host's own links.
    (( base >> 24 == 10 || base >> 20 == (172 << 4 | 1) || base >> 16 == (192 << 8 | 168) ||
       base >> 17 == POOL_BASE >> 17 )) ||
      die "--subnet: $wanted is not in 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 198.18.0.0/15"
    ! subnet_taken "$base" || die "--subnet: $wanted is already in use on this host"
    echo "$base"
    return 0
  fi
  local index=$(( $(printf '%s' "$name" | cksum | cut -d' ' -f1) % POOL_BLOCKS ))
  for (( i = 0; i < SUBNET_TRIES; i++ )); do
    base=$(( POOL_BASE + 4 * ((index + i) % POOL_BLOCKS) ))
    if ! subnet_taken "$base"; then
      echo "$base"
      return 0
    fi
  done
  die "no free /30 in 198.18.0.0/15 after $SUBNET_TRIES tries; pass --subnet"
}

ns_sysctl() {
  local name="$1" path="$2" value="$3"
  ip netns exec "$name" sh -c 'echo "$2" >"$1"' _ "$path" "$value"
}

# The rules that make 127.0.0.1 work across the link; see the header.
# Host side (table ip feed-netns-NAME in the host's namespace):
#   output:      127.0.0.1:Q from host processes  -> NS_ADDR:Q
#   postrouting: their source 127.0.0.1           -> HOST_ADDR (a 127/8 source
#                                                    may not leave on a real link)
#   prerouting:  HOST_ADDR:Pi from the namespace  -> 127.0.0.1:Pi (the backends
#                                                    listen on loopback only)
#   input:       source NS_ADDR                   -> 127.0.0.1 (pg_hba.conf)
#   input:       anything else the namespace starts toward the host is dropped,
#                so its only way out is the backend ports
#   partition:   empty while healed; cut adds a drop there
host_rules() {
  local name="$1" host_addr="$2" ns_addr="$3" backend="$4" http="$5" link table
  link="$(host_link "$name")" table="$(host_table "$name")"
  cat <<EOF
table ip $table {
  set backend_ports {
    type inet_service
    elements = { $backend }
  }
EOF
  if [[ -n "$http" ]]; then
    cat <<EOF
  set http_ports {
    type inet_service
    elements = { $http }
  }
  chain nat_output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.1 tcp dport @http_ports dnat to $ns_addr
  }
  chain nat_postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$link" ip saddr 127.0.0.0/8 snat to $host_addr
  }
EOF
  fi
  cat <<EOF
  chain nat_prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "$link" ip daddr $host_addr tcp dport @backend_ports dnat to 127.0.0.1
  }
  chain nat_input {
    type nat hook input priority 100; policy accept;
    iifname "$link" ip saddr $ns_addr snat to 127.0.0.1
  }
  chain filter_input {
    type filter hook input priority filter; policy accept;
    iifname "$link" ct direction original ct status dnat accept
    iifname "$link" ct direction original drop
  }
  chain partition {
    type filter hook prerouting priority mangle; policy accept;
  }
}
EOF
}

# Namespace side (table ip feed-netns inside it), the mirror image:
#   output:      127.0.0.1:Pi from the process    -> HOST_ADDR:Pi
#   postrouting: their source 127.0.0.1           -> NS_ADDR
#   prerouting:  NS_ADDR:Q from the host          -> 127.0.0.1:Q
#   input:       source HOST_ADDR                 -> 127.0.0.1
#   partition:   empty while healed; cut adds a drop there
ns_rules() {
  local host_addr="$1" ns_addr="$2" backend="$3" http="$4"
  cat <<EOF
table ip feed-netns {
  set backend_ports {
    type inet_service
    elements = { $backend }
  }
  chain nat_output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.1 tcp dport @backend_ports dnat to $host_addr
  }
  chain nat_postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "$NS_LINK" ip saddr 127.0.0.0/8 snat to $ns_addr
  }
EOF
  if [[ -n "$http" ]]; then
    cat <<EOF
  set http_ports {
    type inet_service
    elements = { $http }
  }
  chain nat_prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "$NS_LINK" ip daddr $ns_addr tcp dport @http_ports dnat to 127.0.0.1
  }
  chain nat_input {
    type nat hook input priority 100; policy accept;
    iifname "$NS_LINK" ip saddr $host_addr snat to 127.0.0.1
  }
EOF
  fi
  cat <<EOF
  chain partition {
    type filter hook prerouting priority mangle; policy accept;
  }
}
EOF
}

# Removes whatever of NAME exists, in reverse order of creation. Only called
# once NAME is known to be ours (its record exists).
teardown() {
  local name="$1" link table pids
  link="$(host_link "$name")" table="$(host_table "$name")"
  if ns_exists "$name"; then
    pids="$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ')"
    [[ -z "${pids// /}" ]] ||
      say "processes still inside '$name' (pids: ${pids% }) keep running with only a loopback; the namespace lasts until they exit"
  fi
  if table_exists "$table"; then nft delete table ip "$table"; fi
  # Deleting one end of a veth pair deletes both, synchronously.
  if link_exists "$link"; then ip link delete dev "$link"; fi
  if ns_exists "$name"; then ip netns delete "$name"; fi
  rm -rf "$(state_dir "$name")"
  if table_exists "$table" || link_exists "$link" || ns_exists "$name"; then
    die "could not remove all of '$name' (table $table, link $link, namespace $name)"
  fi
}

cmd_create() {
  [[ $# -ge 1 ]] || misuse "create needs NAME"
  local name="$1" backend_arg='' http_arg='' subnet_arg=''
  shift
  check_name "$name"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --backend-ports) [[ $# -ge 2 ]] || misuse "--backend-ports needs a value"; backend_arg="$2"; shift 2 ;;
      --backend-ports=*) backend_arg="${1#*=}"; shift ;;
      --http-port) [[ $# -ge 2 ]] || misuse "--http-port needs a value"; http_arg="$2"; shift 2 ;;
      --http-port=*) http_arg="${1#*=}"; shift ;;
      --subnet) [[ $# -ge 2 ]] || misuse "--subnet needs a value"; subnet_arg="$2"; shift 2 ;;
      --subnet=*) subnet_arg="${1#*=}"; shift ;;
      *) misuse "create: unknown argument '$1'" ;;
    esac
  done
  [[ -n "$backend_arg" ]] || misuse "create needs --backend-ports"
  # Parsed in a command substitution, so that a bad port stops create here.
  local backend=() http=() p list
  list="$(parse_ports --backend-ports "$backend_arg")"
  mapfile -t backend <<<"$list"
  if [[ -n "$http_arg" ]]; then
    list="$(parse_ports --http-port "$http_arg")"
    mapfile -t http <<<"$list"
  fi
  for p in "${http[@]}"; do
    [[ " ${backend[*]} " != *" $p "* ]] ||
      die "port $p is both a backend port and an HTTP port; inside, 127.0.0.1:$p can be only one of them"
  done
  need_tools

  lock
  local link table dir
  link="$(host_link "$name")" table="$(host_table "$name")" dir="$(state_dir "$name")"
  [[ ! -e "$dir" ]] || die "'$name' is in use (made earlier by netns.sh; delete it first)"
  ! ns_exists "$name" || die "a network namespace named '$name' already exists"
  ! link_exists "$link" || die "a link named $link already exists"
  ! table_exists "$table" || die "an nftables table ip $table already exists"
  # The host's 127.0.0.1:Q becomes the namespace's; a listener there, or
  # another namespace mapping Q, would silently lose its new connections.
  local other
  for p in "${http[@]}"; do
    [[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]] ||
      die "something on the host listens on port $p; choose another --http-port"
    for other in "$STATE_ROOT"/*/config; do
      if [[ -f "$other" ]] && grep -Eq "^http_ports=(.*,)?$p(,.*)?$" "$other"; then
        die "namespace '$(basename "$(dirname "$other")")' already maps host port $p"
      fi
    done
  done

  local base host_addr ns_addr
  base="$(pick_subnet "$name" "$subnet_arg")"
  host_addr="$(int_to_ip4 $(( base + 1 )))" ns_addr="$(int_to_ip4 $(( base + 2 )))"
  local backend_csv http_csv
  backend_csv="$(IFS=,; echo "${backend[*]}")"
  http_csv="$(IFS=,; echo "${http[*]}")"

  # The record goes first: it is what marks the namespace as ours, so a failed
  # create below can be undone by teardown and no other run takes the name.
  mkdir -p "$dir"
  cat >"$dir/config" <<EOF
subnet=$(int_to_ip4 "$base")/30
host_address=$host_addr
namespace_address=$ns_addr
backend_ports=$backend_csv
http_ports=$http_csv
EOF
  trap 'rc=$?; if (( rc != 0 )); then say "create failed; removing what it made"; teardown "'"$name"'" || true; fi' EXIT

  ip netns add "$name"
  ip -n "$name" link set lo up
  # The inner end is born inside the namespace, so its fixed name never
  # collides on the host.
  ip link add "$link" type veth peer name "$NS_LINK" netns "$name"
  ip addr add "$host_addr/30" dev "$link"
  ip -n "$name" addr add "$ns_addr/30" dev "$NS_LINK"
  # route_localnet lets 127.0.0.1 be routed on (and arrive from) this link
  # only; the host's other interfaces keep the default.
  echo 1 >"/proc/sys/net/ipv4/conf/$link/route_localnet"
  ns_sysctl "$name" "/proc/sys/net/ipv4/conf/$NS_LINK/route_localnet" 1
  ip link set "$link" up
  ip -n "$name" link set "$NS_LINK" up

  host_rules "$name" "$host_addr" "$ns_addr" "${backend_csv//,/, }" "${http_csv//,/, }" | nft -f -
  ns_rules "$host_addr" "$ns_addr" "${backend_csv//,/, }" "${http_csv//,/, }" | ip netns exec "$name" nft -f -
  trap - EXIT

  say "namespace '$name': host $host_addr <-> inside $ns_addr; backend ports $backend_csv${http_csv:+; HTTP on the host at 127.0.0.1:${http_csv//,/, 127.0.0.1:}}"
  for p in "${http[@]}"; do echo "127.0.0.1:$p"; done
}

cmd_exec() {
  [[ $# -ge 1 ]] || misuse "exec needs NAME"
  local name="$1"
  shift
  [[ "${1:-}" != "--" ]] || shift
  [[ $# -ge 1 ]] || misuse "exec needs a command after NAME --"
  check_name "$name"
  need_tools
  require_ours "$name"
  exec ip netns exec "$name" "$@"
}

# Drops, on arrival at the far end of the link, every packet of a connection
# the namespace opened (its backend connections, both ways), as a partition
# would; the host's connections to the HTTP port are opened by the host and
# pass. Dropping on arrival rather than on sending keeps the sender's kernel
# out of it (a drop in its own output path can fail a send with EPERM): the
# packet is simply lost on the wire.
cmd_cut() {
  [[ $# -eq 1 ]] || misuse "cut takes NAME"
  local name="$1" link table
  check_name "$name"
  need_tools
  require_ours "$name"
  link="$(host_link "$name")" table="$(host_table "$name")"
  nft -f - <<EOF
flush chain ip $table partition
add rule ip $table partition iifname "$link" ct direction original drop
EOF
  ip netns exec "$name" nft -f - <<EOF
flush chain ip feed-netns partition
add rule ip feed-netns partition iifname "$NS_LINK" ct direction reply drop
EOF
  say "'$name' is cut off from ports $CFG_BACKEND_PORTS"
}

cmd_heal() {
  [[ $# -eq 1 ]] || misuse "heal takes NAME"
  local name="$1"
  check_name "$name"
  need_tools
  require_ours "$name"
  ip netns exec "$name" nft flush chain ip feed-netns partition
  nft flush chain ip "$(host_table "$name")" partition
  say "'$name' reaches ports $CFG_BACKEND_PORTS again"
}

cmd_delete() {
  [[ $# -eq 1 ]] || misuse "delete takes NAME"
  local name="$1"
  check_name "$name"
  need_tools
  lock
  if ! ours "$name"; then
    if ns_exists "$name" || link_exists "$(host_link "$name")" || table_exists "$(host_table "$name")"; then
      die "'$name' was not made by netns.sh (no $(state_dir "$name")); leaving it alone"
    fi
    say "no namespace '$name'; nothing to delete"
    return 0
  fi
  teardown "$name"
  say "deleted '$name'"
}

cmd_status() {
  [[ $# -eq 1 ]] || misuse "status takes NAME"
  local name="$1" state
  check_name "$name"
  need_tools
  if ! ours "$name" || ! ns_exists "$name"; then
    say "no namespace '$name' made by netns.sh"
    exit 3
  fi
  load_config "$name"
  local chain
  chain="$(nft list chain ip "$(host_table "$name")" partition 2>/dev/null)" || true
  if [[ "$chain" == *" drop"* ]]; then
    state='cut'
  else
    state='connected'
  fi
  local pids
  pids="$(ip netns pids "$name" 2>/dev/null | sort -n | tr '\n' ',')"
  echo "name=$name"
  echo "state=$state"
  echo "subnet=$CFG_SUBNET"
  echo "host_address=$CFG_HOST_ADDR"
  echo "namespace_address=$CFG_NS_ADDR"
  echo "backend_ports=$CFG_BACKEND_PORTS"
  echo "http_ports=$CFG_HTTP_PORTS"
  echo "pids=${pids%,}"
}

[[ $# -ge 1 ]] || misuse "a command is needed"
cmd="$1"; shift
case "$cmd" in
  create) cmd_create "$@" ;;
  exec) cmd_exec "$@" ;;
  cut) cmd_cut "$@" ;;
  heal) cmd_heal "$@" ;;
  delete) cmd_delete "$@" ;;
  status) cmd_status "$@" ;;
  -h|--help|help) usage ;;
  *) misuse "unknown command '$cmd'" ;;
esac
