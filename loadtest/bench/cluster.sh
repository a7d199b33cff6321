#!/usr/bin/env bash
# One lecture served by one Confab node, then by three nodes joined by
# their embedded NATS servers (-nats-embed, -nats-routes), alternated
# RUNS times; everything on 127.0.0.1 with ICE restricted to lo.
# The presenter joins node 1; with three nodes its viewers are spread
# round robin over them. Every figure comes from confab-load's JSON
# report (join times, loss, freezes, and each node's /metrics over the
# run: CPU seconds, packets forwarded, relay packets and bytes).
#
#   loadtest/bench/cluster.sh                 # 3 runs of each, 100 viewers
#   RUNS=5 VIEWERS=200 loadtest/bench/cluster.sh
#
# Settings (environment): RUNS (3), VIEWERS (100), DURATION (15s),
# RAMP (40 joins/s), LAYER (high), IDLE (10: seconds the nodes are
# measured idle before each run), PIN (1: nodes on core 0, the load
# tool on core 1, the same for both configurations; 0: unpinned),
# PORT_BASE (18400: HTTP PORT_BASE+1..3, media UDP +11..13, NATS
# clients +21..23, NATS routes +31..33), OUT (a new temporary directory).
# Needs go, jq and, with PIN=1, taskset. Prints one row per run, then
# the medians, as Markdown, and how busy the machine was during each run
# (other work on it skews every figure); OUT keeps the reports and logs.
set -euo pipefail

RUNS=${RUNS:-3}
VIEWERS=${VIEWERS:-100}
DURATION=${DURATION:-15s}
RAMP=${RAMP:-40}
IDLE=${IDLE:-10}
LAYER=${LAYER:-high}
PIN=${PIN:-1}
PORT_BASE=${PORT_BASE:-18400}
OUT=${OUT:-$(mktemp -d /tmp/confab-clusterbench.XXXXXX)}

for tool in go jq curl; do
	command -v "$tool" >/dev/null || { echo "cluster.sh: $tool is needed" >&2; exit 2; }
done
if [ "$PIN" = 1 ] && ! command -v taskset >/dev/null; then
	echo "cluster.sh: taskset is needed for PIN=1 (or run with PIN=0)" >&2
	exit 2
fi
if [ "$PIN" = 1 ] && [ "$(nproc)" -lt 2 ]; then
	echo "cluster.sh: PIN=1 needs two cores" >&2
	exit 2
fi

BENCH=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/bin"
cd "$BENCH/../.."
go build -o "$OUT/bin/confab" ./cmd/confab
go build -o "$OUT/bin/confab-load" ./cmd/confab-load

nodes_cpu=() load_cpu=()
if [ "$PIN" = 1 ]; then
	nodes_cpu=(taskset -c 0)
	load_cpu=(taskset -c 1)
fi

# The load tool's CPU seconds go to lecture-N-I.time where GNU time is.
timed=()
if [ -x /usr/bin/time ]; then
	timed=(/usr/bin/time -f "%U %S" -o)
fi

pids=()
stop_nodes() {
	local pid
	for pid in "${pids[@]}"; do
		kill -INT "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		# A node that does not stop in 15 s is killed.
		for _ in $(seq 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}
trap stop_nodes EXIT

# metric URL NAME prints the sum of a metric's series on a node.
metric() {
	curl -fsS --max-time 5 "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}

# wait_for SECONDS WHAT COMMAND... retries COMMAND until it succeeds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	for _ in $(seq $((secs * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "cluster.sh: $what did not happen in $secs s" >&2
	return 1
}

# busy_ticks prints the machine's busy CPU time in clock ticks (every
# process, other users' too): the benchmark shares the machine.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

cluster_sees() { [ "$(metric "$1" confab_cluster_nodes)" = "$2" ]; }

# start_nodes N starts N nodes (N > 1: a cluster); URLS lists them.
URLS=""
start_nodes() {
	local n=$1 i routes="" urls=""
	for i in $(seq "$n"); do
		routes+="${routes:+,}127.0.0.1:$((PORT_BASE + 30 + i))"
	done
	for i in $(seq "$n"); do
		local url="http://127.0.0.1:$((PORT_BASE + i))"
		local args=(-listen "127.0.0.1:$((PORT_BASE + i))" -ice-interfaces lo -ice-loopback
			-ice-allowed-cidrs 127.0.0.0/8 -ice-udp-port $((PORT_BASE + 10 + i)) -max-participants 2000
			-max-conns-per-ip 0 -log-level warn)
		if [ "$n" -gt 1 ]; then
			args+=(-nats-embed -nats-listen "127.0.0.1:$((PORT_BASE + 20 + i))"
				-nats-cluster-listen "127.0.0.1:$((PORT_BASE + 30 + i))" -nats-routes "$routes"
				-nats-token clusterbench -node-id "node$i" -advertise-url "$url/")
		fi
		"${nodes_cpu[@]}" "$OUT/bin/confab" "${args[@]}" >>"$OUT/node$i-of-$n.log" 2>&1 &
		pids+=($!)
		urls+="${urls:+,}$url"
	done
	for url in ${urls//,/ }; do
		wait_for 30 "$url ready" curl -fsS --max-time 2 "$url/readyz"
		if [ "$n" -gt 1 ]; then
			wait_for 30 "$url seeing $n nodes" cluster_sees "$url" "$n"
		fi
	done
	URLS=$urls
}

# settled URL... checks after a run that no node relays anything any more
# and their goroutines came back to the baseline in $OUT/goroutines.
settled() {
	local url i=0 base
	for url in "$@"; do
		i=$((i + 1))
		base=$(sed -n "${i}p" "$OUT/goroutines")
		[ "$(metric "$url" confab_relay_links)" = 0 ] || return 1
		[ "$(metric "$url" confab_peer_connections)" = 0 ] || return 1
		[ "$(metric "$url" go_goroutines)" -le $((base + 5)) ] || return 1
	done
}

# one_run N I runs the lecture once on N nodes; its report is lecture-N-I.json.
one_run() {
	local n=$1 i=$2 urls url name="lecture-$1-$2"
	start_nodes "$n"
	urls=$URLS
	# What the nodes cost idle (heartbeats, NATS, the runtime), over IDLE s.
	local idle0=() idle=""
	for url in ${urls//,/ }; do
		idle0+=("$(metric "$url" process_cpu_seconds_total)")
	done
	sleep "$IDLE"
	local i_node=0
	for url in ${urls//,/ }; do
		idle+=" $(awk -v a="${idle0[$i_node]}" -v b="$(metric "$url" process_cpu_seconds_total)" -v s="$IDLE" 'BEGIN { printf "%.1f", (b - a) / s * 1000 }')"
		i_node=$((i_node + 1))
	done
	: >"$OUT/goroutines"
	for url in ${urls//,/ }; do
		metric "$url" go_goroutines >>"$OUT/goroutines"
	done
	echo "run $i, $n node(s): $urls" >&2
	local t0 b0 b1 t1 timer=()
	if [ ${#timed[@]} -gt 0 ]; then
		timer=("${timed[@]}" "$OUT/$name.time")
	fi
	t0=$(date +%s.%N) b0=$(busy_ticks)
	"${timer[@]}" "${load_cpu[@]}" "$OUT/bin/confab-load" -url "$urls" -scenario lecture -viewers "$VIEWERS" \
		-duration "$DURATION" -ramp "$RAMP" -layer "$LAYER" -json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1 ||
		echo "run $i on $n node(s) failed: $(tail -n 3 "$OUT/$name.txt")" >&2
	b1=$(busy_ticks) t1=$(date +%s.%N)
	awk -v b="$((b1 - b0))" -v hz="$(getconf CLK_TCK)" -v t="$t0" -v u="$t1" -v name="$name" -v idle="$idle" -v load="$(cut -d' ' -f1 /proc/loadavg)" -v tool="$(awk '{ s = $1 + $2 } END { print s }' "$OUT/$name.time" 2>/dev/null)" \
		'BEGIN { printf "%s: %.0f s, the machine busy %.2f cores (every process on it), the load tool %s CPU-s, idle nodes before the run%s CPU-ms/s, load average %s\n", name, u - t, b / hz / (u - t), tool, idle, load }' >>"$OUT/machine.txt"
	# Everyone left: relays closed, PeerConnections and goroutines gone.
	# shellcheck disable=SC2086
	if ! wait_for 20 "$n node(s) settling after the run" settled ${urls//,/ }; then
		echo "after run $i on $n node(s): relay links, PeerConnections or goroutines stayed (baseline $(tr '\n' ' ' <"$OUT/goroutines"))" >&2
		for url in ${urls//,/ }; do
			echo "  $url: links $(metric "$url" confab_relay_links), pcs $(metric "$url" confab_peer_connections), goroutines $(metric "$url" go_goroutines)" >&2
		done
	fi
	stop_nodes
}

for i in $(seq "$RUNS"); do
	one_run 1 "$i"
	one_run 3 "$i"
done

bash "$BENCH/cluster-table.sh" "$OUT"/lecture-*.json | tee "$OUT/table.md"
cat "$OUT/machine.txt"
echo "reports and logs: $OUT" >&2
