#!/usr/bin/env bash
# Measures what partitions cost a cluster of three `strait node` processes over Redis
# with one proxy: how long a topic of N partitions at RF 3 takes to open everywhere,
# each node's memory and file descriptors per partition, its CPU while idle (lease
# renewal and replica fetch rounds), and how long a node takes to start again on its
# data. See docs/benchmarks.md.
#
#   bench/scale.sh [partitions]     default 10000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

partitions=${1:-10000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }

echo "+ building strait into $work" >&2
go build -o "$work/strait" ./cmd/strait
redis-server --port 16379 --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
sleep 0.5
redis=redis://127.0.0.1:16379/0

start_node() { # $1: id
	"$work/strait" node --id "$1" --listen 127.0.0.1:1710"$1" --data-dir "$work/node-$1" \
		--redis $redis --admin 127.0.0.1:1760"$1" --log-level warn >>"$work/node-$1.log" 2>&1 &
	eval "node$1=$!"
}
for i in 1 2 3; do start_node $i; done
"$work/strait" proxy --listen 127.0.0.1:17092 --redis $redis --admin 127.0.0.1:17644 --default-replication-factor 3 \
	--log-level warn >"$work/proxy.log" 2>&1 &
for _ in $(seq 200); do curl -fs http://127.0.0.1:17644/readyz >/dev/null 2>&1 && break; sleep 0.1; done

dirs() { find "$work/node-$1" -maxdepth 1 -type d -name 'wide-*' | wc -l; }
echo "creating topic wide: $partitions partitions, RF 3"
start=$(date +%s.%N)
"$work/strait" bench --brokers 127.0.0.1:17092 --topic wide --partitions "$partitions" --records 1 --phase produce >/dev/null
while [ "$(dirs 1)" -lt "$partitions" ] || [ "$(dirs 2)" -lt "$partitions" ] || [ "$(dirs 3)" -lt "$partitions" ]; do
	sleep 0.5
done
echo "every node holds all $partitions partitions after $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e-s}') s"

sleep 10
for i in 1 2 3; do
	pid=$(eval echo "\$node$i")
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)
	fds=$(ls /proc/"$pid"/fd | wc -l)
	t0=$(awk '{print $14+$15}' /proc/"$pid"/stat)
	sleep 30
	t1=$(awk '{print $14+$15}' /proc/"$pid"/stat)
	hz=$(getconf CLK_TCK)
	echo "node $i: RSS $((rss / 1024)) MiB ($(awk -v r="$rss" -v p="$partitions" 'BEGIN {printf "%.1f", r/p}') KiB per replica), $fds descriptors ($(awk -v f="$fds" -v p="$partitions" 'BEGIN {printf "%.3f", f/p}') per replica), idle CPU $(awk -v d="$((t1 - t0))" -v hz="$hz" 'BEGIN {printf "%.1f", 100*d/hz/30}')% of a core"
done
lapsed=$(grep -c "lease expired" "$work/proxy.log" || true)
echo "node leases expired during the run: $lapsed"

echo "restarting node 1 on its data"
kill "$node1"
wait "$node1" 2>/dev/null || true
start=$(date +%s.%N)
start_node 1
for _ in $(seq 3000); do curl -fs http://127.0.0.1:17601/readyz >/dev/null 2>&1 && break; sleep 0.1; done
echo "node 1 ready again after $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e-s}') s"
