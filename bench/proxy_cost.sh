#!/usr/bin/env bash
# Measures what the front tier costs: the same `strait bench` through a forward-mode
# proxy and through a redirect-mode proxy (whose clients produce and fetch straight to
# the node), alternating, on one cluster of Redis, one node and the two proxies; the
# forward proxy's CPU seconds per GB relayed; and its memory per idle and per busy
# client connection. See docs/benchmarks.md.
#
#   bench/proxy_cost.sh [trials]     default 3
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

trials=${1:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$work"' EXIT
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }

echo "+ building strait into $work" >&2
go build -o "$work/strait" ./cmd/strait
(cd bench && go build -o "$work/conns" ./conns)
redis-server --port 16380 --save '' --appendonly no >"$work/redis.log" 2>&1 &
sleep 0.5
redis=redis://127.0.0.1:16380/0
"$work/strait" node --id 1 --listen 127.0.0.1:17201 --data-dir "$work/node" --redis $redis \
	--admin 127.0.0.1:17651 --log-level warn >"$work/node.log" 2>&1 &
for mode in forward redirect; do
	port=17292 admin=17692
	[ $mode = redirect ] && port=17293 admin=17693
	"$work/strait" proxy --mode $mode --listen 127.0.0.1:$port --redis $redis --admin 127.0.0.1:$admin \
		--log-level warn >"$work/proxy-$mode.log" 2>&1 &
	[ $mode = forward ] && forward_pid=$!
	for _ in $(seq 200); do curl -fs http://127.0.0.1:$admin/readyz >/dev/null 2>&1 && break; sleep 0.1; done
done

cpu() { awk '{print $14+$15}' /proc/"$1"/stat; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
hz=$(getconf CLK_TCK)

for i in $(seq "$trials"); do
	for mode in forward redirect; do
		port=17292
		[ $mode = redirect ] && port=17293
		before=$(cpu "$forward_pid")
		out=$("$work/strait" bench --brokers 127.0.0.1:$port --records 2000000 --record-size 100 --partitions 8 --topic "t$mode$i")
		after=$(cpu "$forward_pid")
		echo "$out" | grep "records of" | sed "s/^/$mode trial $i: /"
		echo "$out" | awk '/^produce: .* records of/ {print $(NF-1)}' >>"$work/$mode.produce"
		echo "$out" | awk '/^consume: .* records of/ {print $(NF-1)}' >>"$work/$mode.consume"
		if [ $mode = forward ]; then # 2,000,000 x 100 bytes in and out: 0.4 GB through the proxy
			awk -v d="$((after - before))" -v hz="$hz" 'BEGIN {printf "%.2f\n", d/hz/0.4}' >>"$work/cpu.per.gb"
		fi
		lat=$("$work/strait" bench --brokers 127.0.0.1:$port --mode latency --rate 5000 --duration 15s --partitions 4 --topic "l$mode$i" | grep "produce -> consumer")
		echo "$mode trial $i: $lat"
		echo "$lat" | awk '{for (i=1;i<=NF;i++) if ($i=="p50") print $(i+1)}' | tr -d ms >>"$work/$mode.p50"
		echo "$lat" | awk '{for (i=1;i<=NF;i++) if ($i=="p99") print $(i+1)}' | tr -d ms >>"$work/$mode.p99"
	done
done
for mode in forward redirect; do
	echo "median $mode: produce $(median <"$work/$mode.produce") MB/s, consume $(median <"$work/$mode.consume") MB/s, end to end p50 $(median <"$work/$mode.p50") ms, p99 $(median <"$work/$mode.p99") ms"
done
echo "forward proxy CPU per GB relayed (in + out): $(median <"$work/cpu.per.gb") s"

# Memory per connection is measured on a fresh forward proxy that collects garbage as
# GOGC alone says: below --gc-min-heap, garbage would count as the connections' memory.
kill "$forward_pid"
wait "$forward_pid" 2>/dev/null || true
"$work/strait" proxy --mode forward --listen 127.0.0.1:17292 --redis $redis --admin 127.0.0.1:17692 \
	--gc-min-heap 0 --log-level warn >"$work/proxy-forward-memory.log" 2>&1 &
forward_pid=$!
for _ in $(seq 200); do curl -fs http://127.0.0.1:17692/readyz >/dev/null 2>&1 && break; sleep 0.1; done
busy=$("$work/conns" --addr 127.0.0.1:17292 --conns 200 --busy --hold 10s --rss-pid "$forward_pid")
echo "forward proxy memory per busy client connection (200 producing 1 KiB batches in a loop): $busy KiB"
idle=$("$work/conns" --addr 127.0.0.1:17292 --conns 1000 --hold 5s --rss-pid "$forward_pid")
echo "forward proxy memory per idle client connection: $idle KiB"
