#!/usr/bin/env bash
# Measures Strait and franz-go's in-memory kfake broker side by side with the same
# client code (`strait bench`), alternating trials so both see the same machine, and
# prints each trial and the medians. See docs/benchmarks.md.
#
#   bench/compare.sh throughput [trials]     produce, then consume, 100-byte records
#   bench/compare.sh latency [trials]        10,000 records/s for 20 s, end to end
#   bench/compare.sh replication [trials]    acks=all latency on strait dev --nodes 3 (after a 5 s warm-up),
#                                            RF 3, with 10, 300 and 3,000 partitions
#   bench/compare.sh rf [trials]             produce throughput on strait dev --nodes 3,
#                                            acks=all at RF 3 against RF 1
#
# STRAIT_DEV_ARGS adds flags to `strait dev`; BENCH_ARGS to every `strait bench`.
# PORT_BASE moves the ports used (PORT_BASE+92 Kafka, +192 kfake, +644 admin; default
# 19000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

what=${1:-throughput}
trials=${2:-5}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "+ building strait and kfake into $work" >&2
go build -o "$work/strait" ./cmd/strait
(cd bench && go build -o "$work/kfake" ./kfake)

base=${PORT_BASE:-19000}
strait_port=$((base + 92)) kfake_port=$((base + 192)) admin_port=$((base + 644))

start_strait() { # $@: extra strait dev flags
	rm -rf "$work/data"
	"$work/strait" dev --data-dir "$work/data" --listen 127.0.0.1:$strait_port \
		--admin 127.0.0.1:$admin_port ${STRAIT_DEV_ARGS:-} "$@" >"$work/strait.log" 2>&1 &
	strait_pid=$!
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "strait dev did not become ready; its log:" >&2
	cat "$work/strait.log" >&2
	exit 1
}
stop_strait() { kill "$strait_pid" 2>/dev/null || true; wait "$strait_pid" 2>/dev/null || true; }
start_kfake() {
	"$work/kfake" --listen 127.0.0.1:$kfake_port >"$work/kfake.log" 2>&1 &
	kfake_pid=$!
	sleep 0.5
}
stop_kfake() { kill "$kfake_pid" 2>/dev/null || true; wait "$kfake_pid" 2>/dev/null || true; }

bench() { # $1: port, rest: strait bench flags
	local port=$1
	shift
	"$work/strait" bench --brokers 127.0.0.1:"$port" ${BENCH_ARGS:-} "$@"
}

# median reads numbers, one a line, and prints their median.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

case "$what" in
throughput)
	for i in $(seq "$trials"); do
		for target in strait kfake; do
			"start_$target"
			port=$strait_port
			[ "$target" = kfake ] && port=$kfake_port
			out=$(bench $port --records 3000000 --record-size 100 --partitions 8 --topic "t$i")
			"stop_$target"
			echo "$out" | grep -E "records of" | sed "s/^/$target trial $i: /"
			echo "$out" | awk '/^produce: .* records of/ {print $(NF-1)}' >>"$work/$target.produce.all"
			echo "$out" | awk '/^consume: .* records of/ {print $(NF-1)}' >>"$work/$target.consume.all"
		done
	done
	for phase in produce consume; do
		s=$(median <"$work/strait.$phase.all") k=$(median <"$work/kfake.$phase.all")
		echo "median $phase MB/s: strait $s, kfake $k, ratio $(awk -v s="$s" -v k="$k" 'BEGIN {printf "%.2f", s/k}')"
	done
	;;
latency)
	for i in $(seq "$trials"); do
		for target in strait kfake; do
			"start_$target"
			port=$strait_port
			[ "$target" = kfake ] && port=$kfake_port
			out=$(bench $port --mode latency --rate 10000 --duration 20s --partitions 4 --topic "l$i")
			"stop_$target"
			line=$(echo "$out" | grep "produce -> consumer")
			echo "$target trial $i: $line"
			echo "$line" | awk '{for (i=1;i<=NF;i++) if ($i=="p50") print $(i+1)}' | tr -d ms >>"$work/$target.p50"
			echo "$line" | awk '{for (i=1;i<=NF;i++) if ($i=="p99") print $(i+1)}' | tr -d ms >>"$work/$target.p99"
		done
	done
	for q in p50 p99; do
		echo "median end-to-end $q ms: strait $(median <"$work/strait.$q"), kfake $(median <"$work/kfake.$q")"
	done
	;;
replication)
	# Trials alternate the partition counts, so that all three see the same machine.
	for i in $(seq "$trials"); do
		for partitions in 10 300 3000; do
			start_strait --nodes 3
			out=$(bench $strait_port --mode latency --rate 1000 --warmup 5s --duration 15s --partitions 1 \
				--idle-partitions $((partitions - 1)) --topic "r$i")
			stop_strait
			line=$(echo "$out" | grep "produce -> ack")
			echo "$partitions partitions trial $i: $line"
			echo "$line" | awk '{for (i=1;i<=NF;i++) if ($i=="p99") print $(i+1)}' | tr -d ms >>"$work/r$partitions.p99"
			echo "$line" | awk '{for (i=1;i<=NF;i++) if ($i=="p50") print $(i+1)}' | tr -d ms >>"$work/r$partitions.p50"
		done
	done
	for partitions in 10 300 3000; do
		echo "median acks=all with $partitions partitions: p50 $(median <"$work/r$partitions.p50") ms, p99 $(median <"$work/r$partitions.p99") ms"
	done
	;;
rf)
	for i in $(seq "$trials"); do
		for rf in 3 1; do
			start_strait --nodes 3 --default-replication-factor $rf
			out=$(bench $strait_port --records 2000000 --record-size 100 --partitions 8 --acks all \
				--phase produce --topic "rf$rf-$i")
			stop_strait
			echo "$out" | grep -E "records of" | sed "s/^/RF $rf trial $i: /"
			echo "$out" | awk '/^produce: .* records of/ {print $(NF-1)}' >>"$work/rf$rf.all"
		done
	done
	r3=$(median <"$work/rf3.all") r1=$(median <"$work/rf1.all")
	echo "median acks=all produce MB/s: RF 3 $r3, RF 1 $r1, ratio $(awk -v a="$r3" -v b="$r1" 'BEGIN {printf "%.2f", a/b}')"
	;;
*)
	echo "usage: $0 throughput|latency|replication|rf [trials]" >&2
	exit 2
	;;
esac
