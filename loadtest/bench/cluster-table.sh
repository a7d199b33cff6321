#!/usr/bin/env bash
# Turns confab-load JSON reports of cluster.sh (lecture-NODES-RUN.json)
# into Markdown tables: one row per run, one per node and run, and the
# medians of each configuration.
#
#   loadtest/bench/cluster-table.sh /tmp/confab-clusterbench.*/lecture-*.json
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: cluster-table.sh REPORT.json..." >&2; exit 2; }

jq -nr '
def r(d): . * pow(10; d) | round / pow(10; d);
def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
def us_per_packet: if .packetsOut > 0 then .cpuSeconds / .packetsOut * 1e6 else 0 end;
def mbits(b): if .seconds > 0 then b * 8 / 1e6 / .seconds else 0 end;
# One run: what the viewers saw and what every node spent.
def run: {
	nodes: (.nodes | length),
	run: (input_filename | capture("-(?<i>[0-9]+)\\.json$").i | tonumber),
	joined: "\(.joined)/\(.peers)",
	p50: .joinMillis.P50, p95: .joinMillis.P95, p99: .joinMillis.P99,
	loss: .lossPercent, freezes: .freezes, top: (.layers.high // 0),
	cpu: .server.cpuSeconds, out: .server.packetsOut, us: (.server | us_per_packet),
	relayOut: (.server | mbits(.relay.bytesOut)),
	per: [.nodes[] | {joined: "\(.joined)/\(.participants)", p50: .joinMillis.P50, p95: .joinMillis.P95,
		loss: (if .packets + .lost > 0 then 100 * .lost / (.packets + .lost) else 0 end),
		cpu: .server.cpuSeconds, out: .server.packetsOut, in: .server.packetsIn, us: (.server | us_per_packet),
		relayOut: (.server | mbits(.relay.bytesOut)), relayIn: (.server | mbits(.relay.bytesIn)),
		relayShare: (if .server.packetsOut > 0 then 100 * .server.relay.packetsOut / .server.packetsOut else 0 end),
		relayPerPacketIn: (if .server.packetsIn > 0 then .server.relay.packetsOut / .server.packetsIn else 0 end)}]
};
[inputs | run] | sort_by(.nodes, .run) as $runs |
"| nodes | run | joined | join p50 / p95 / p99 ms | loss % | freezes | viewers on top layer | CPU-s (all nodes) | packets out | CPU µs per packet out | relay out Mbit/s |",
"|---|---|---|---|---|---|---|---|---|---|---|",
($runs[] | "| \(.nodes) | \(.run) | \(.joined) | \(.p50 | round) / \(.p95 | round) / \(.p99 | round) | \(.loss | r(3)) | \(.freezes) | \(.top) | \(.cpu | r(2)) | \(.out | round) | \(.us | r(1)) | \(.relayOut | r(2)) |"),
"",
"| nodes | run | node | joined | join p50 / p95 ms | loss % | CPU-s | packets out | CPU µs per packet out | relay out / in Mbit/s | relay share of packets out | relay out per packet in |",
"|---|---|---|---|---|---|---|---|---|---|---|---|",
($runs[] | . as $x | .per | to_entries[] | .key as $k | .value |
	"| \($x.nodes) | \($x.run) | \($k + 1) | \(.joined) | \(.p50 | round) / \(.p95 | round) | \(.loss | r(3)) | \(.cpu | r(2)) | \(.out | round) | \(.us | r(1)) | \(.relayOut | r(2)) / \(.relayIn | r(2)) | \(.relayShare | r(1)) % | \(.relayPerPacketIn | r(2)) |"),
"",
"| nodes (median of runs) | join p50 / p95 / p99 ms | loss % | freezes | CPU-s (all nodes) | packets out | CPU µs per packet out | per node: CPU-s | per node: CPU µs per packet out | relay out Mbit/s |",
"|---|---|---|---|---|---|---|---|---|---|",
($runs | group_by(.nodes)[] | . as $g | ($g[0].per | length) as $n |
	"| \($g[0].nodes) (\($g | length) runs) | \([$g[].p50] | median | round) / \([$g[].p95] | median | round) / \([$g[].p99] | median | round) | \([$g[].loss] | median | r(3)) | \([$g[].freezes] | median) | \([$g[].cpu] | median | r(2)) | \([$g[].out] | median | round) | \([$g[].us] | median | r(1)) | \([range($n) as $k | [$g[].per[$k].cpu] | median | r(2)] | join(" / ")) | \([range($n) as $k | [$g[].per[$k].us] | median | r(1)] | join(" / ")) | \([$g[].relayOut] | median | r(2)) |")
' "$@"
