#!/usr/bin/env bash
# bench-compare.sh: generate a synthetic capture (cmd/tcptap-synth), then run
# tcptap, tcptrace and tshark on it alternately, RUNS times each, and print
# the medians of packets/s, CPU seconds, peak RSS and the hypervisor's
# steal time with the ratios (performance issue 8). Whole processes, file in
# page cache.
#
#   scripts/bench-compare.sh [-p PACKETS] [-c CONNECTIONS] [-n RUNS] [-s SEED]
#                            [-m none|small|mss] [-w WORKERS] [-x] [-k] [-f FILE]
#
# Needs: go, tshark, tcptrace, GNU time (/usr/bin/time):
#   apt-get install tshark tcptrace time
# Defaults: 2,000,000 packets of 40,000 connections, 3 runs each; tcptap runs
# with one worker (tcptap-1w), with one worker held to one CPU
# (tcptap-1w-1cpu) and with WORKERS (default: one per CPU, tcptap-Nw) in its
# default trace configuration (trace on, cache-mode all, JSON to /dev/null).
# -x wraps every frame of the capture in VXLAN (remote mirroring); tcptrace
# does not decapsulate, so with -x its figures are for skipping UDP.
set -euo pipefail
cd "$(dirname "$0")/.."

packets=2000000 conns=40000 runs=3 seed=1 payload=small workers=$(nproc) keep=0 file="" vxlan=""
while getopts "p:c:n:s:m:w:xkf:h" o; do
	case $o in
	p) packets=$OPTARG ;;
	c) conns=$OPTARG ;;
	n) runs=$OPTARG ;;
	s) seed=$OPTARG ;;
	m) payload=$OPTARG ;;
	w) workers=$OPTARG ;;
	x) vxlan=--vxlan ;;
	k) keep=1 ;;
	f) file=$OPTARG ;;
	*) sed -n '2,19p' "$0"; exit 2 ;;
	esac
done

for t in tshark tcptrace /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bench-compare: $t missing (apt-get install tshark tcptrace time)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/bench-compare.XXXXXX)
trap '[ "$keep" = 1 ] && echo "kept $work" >&2 || rm -rf "$work"' EXIT
go build -o "$work/tcptap" ./cmd/tcptap
go build -o "$work/tcptap-synth" ./cmd/tcptap-synth
if [ -z "$file" ]; then
	file=$work/synth.pcap
	"$work/tcptap-synth" --connections "$conns" --packets "$packets" --seed "$seed" --payload "$payload" $vxlan --out "$file"
fi
npkts=$(capinfos -M -c "$file" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
[ -n "$npkts" ] || { echo "bench-compare: capinfos could not count $file" >&2; exit 1; }
cat "$file" >/dev/null # page cache

# The tshark analysis command of shared/testdata/peers/expected/tshark.
tshark_fields=(-n -Y tcp -T fields -E separator=/t -E occurrence=l
	-o tcp.analyze_sequence_numbers:TRUE -o tcp.relative_sequence_numbers:TRUE
	-o tcp.check_checksum:FALSE -o tcp.desegment_tcp_streams:TRUE -o tcp.reassemble_out_of_order:FALSE
	-e frame.number -e frame.time_epoch -e frame.protocols -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst
	-e tcp.srcport -e tcp.dstport -e tcp.stream -e tcp.flags -e tcp.len -e tcp.window_size_value
	-e tcp.analysis.retransmission -e tcp.analysis.fast_retransmission -e tcp.analysis.spurious_retransmission
	-e tcp.analysis.zero_window -e tcp.analysis.zero_window_probe -e tcp.analysis.zero_window_probe_ack
	-e tcp.analysis.keep_alive -e tcp.analysis.keep_alive_ack -e tcp.analysis.window_full
	-e tcp.analysis.duplicate_ack -e tcp.analysis.lost_segment -e tcp.analysis.ack_lost_segment
	-e tcp.analysis.out_of_order -e tcp.analysis.reused_ports)

tcptapN=tcptap-${workers}w
# tcptap-1w-1cpu is one worker with the whole process held to one CPU
# (taskset): the per-core figure, since one worker alone also keeps a
# second core partly busy with reading, decoding and JSON encoding.
tools=(tcptap-1w tcptap-1w-1cpu "$tcptapN" tcptrace tshark-analysis tshark-conv)
[ "$workers" = 1 ] && tools=(tcptap-1w tcptap-1w-1cpu tcptrace tshark-analysis tshark-conv)
command -v taskset >/dev/null || { echo "bench-compare: taskset missing (apt-get install util-linux)" >&2; exit 1; }
set_cmd() { # tool -> cmd (array)
	local tap=("$work/tcptap" read --trace --cache-mode all --format json --progress never)
	case $1 in
	tcptap-1w-1cpu) cmd=(taskset -c 0 "${tap[@]}" --workers 1 "$file") ;;
	tcptap-*w) local w=${1#tcptap-}; cmd=("${tap[@]}" --workers "${w%w}" "$file") ;;
	tcptrace) cmd=(tcptrace -n -l -r "$file") ;;
	tshark-analysis) cmd=(tshark -r "$file" "${tshark_fields[@]}") ;;
	tshark-conv) cmd=(tshark -n -q -r "$file" -z conv,tcp) ;;
	esac
}
# steal_ticks: the CPU time the hypervisor gave other guests, all CPUs
# (/proc/stat, USER_HZ ticks); 0 on bare metal.
steal_ticks() { awk '/^cpu / {print $9 + 0}' /proc/stat; }
hz=$(getconf CLK_TCK)
run_one() { # tool run -> "wall cpu rss_kib steal_pct"
	local out=$work/$1.$2.time cmd s0 s1
	set_cmd "$1"
	s0=$(steal_ticks)
	if ! /usr/bin/time -v -o "$out" "${cmd[@]}" >/dev/null 2>"$work/$1.err"; then
		echo "bench-compare: $1 failed:" >&2
		cat "$work/$1.err" >&2
		exit 1 # ends the command substitution; set -e ends the script
	fi
	s1=$(steal_ticks)
	awk -F': ' -v st=$((s1 - s0)) -v hz="$hz" -v cpus="$(nproc)" '
		/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
		/Elapsed \(wall clock\)/ {n=split($2,a,":"); w=0; for(i=1;i<=n;i++) w=w*60+a[i]}
		END {printf "%.3f %.3f %d %.1f\n", w, u+s, r, (w > 0 ? 100 * st / hz / (w * cpus) : 0)}' "$out"
}

echo "capture: $file  packets: $npkts  runs: $runs  tcptap workers: 1 and $workers  CPUs: $(nproc)" >&2
for t in "${tools[@]}"; do
	set_cmd "$t"
	echo "  $t: $(echo "${cmd[@]}" | cut -c1-160)" >&2
done
declare -A res
for ((r = 1; r <= runs; r++)); do
	for t in "${tools[@]}"; do
		res[$t]+="$(run_one "$t" "$r")"$'\n'
		echo "run $r $t: $(tail -n1 <<<"${res[$t]%$'\n'}")  (wall s, cpu s, rss KiB, steal %)" >&2
	done
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
declare -A wall cpu rss steal pps
for t in "${tools[@]}"; do
	wall[$t]=$(awk 'NF {print $1}' <<<"${res[$t]}" | median)
	cpu[$t]=$(awk 'NF {print $2}' <<<"${res[$t]}" | median)
	rss[$t]=$(awk 'NF {print $3}' <<<"${res[$t]}" | median)
	steal[$t]=$(awk 'NF {print $4}' <<<"${res[$t]}" | median)
	pps[$t]=$(awk -v n="$npkts" -v w="${wall[$t]}" 'BEGIN {printf "%.0f", (w > 0 ? n / w : 0)}')
done
printf '\n%-16s %12s %9s %9s %10s %12s %12s %8s\n' tool packets/s wall_s cpu_s rss_MiB "x tcptrace" "x tshark-an" steal_%
for t in "${tools[@]}"; do
	awk -v t="$t" -v p="${pps[$t]}" -v w="${wall[$t]}" -v c="${cpu[$t]}" -v r="${rss[$t]}" -v st="${steal[$t]}" \
		-v pt="${pps[tcptrace]}" -v ps="${pps[tshark-analysis]}" 'BEGIN {
		printf "%-16s %12.0f %9.2f %9.2f %10.1f %12.2f %12.2f %8.1f\n", t, p, w, c, r/1024, (pt ? p/pt : 0), (ps ? p/ps : 0), st }'
done
echo "(medians of $runs runs; packets/s = packets / wall seconds; ratios are packets/s over tcptrace's and tshark analysis';"
echo " steal_%: CPU time the hypervisor took for other guests during the run, of all CPUs' wall time — high values mean a noisy run)"
if [ "$workers" != 1 ]; then
	awk -v a="${pps[tcptap-1w]}" -v c="${pps[tcptap-1w-1cpu]}" -v b="${pps[$tcptapN]}" -v n="$workers" -v cpus="$(nproc)" 'BEGIN {
		printf "tcptap scaling: %d workers / 1 worker = %.2f\n", n, (a ? b / a : 0)
		printf "tcptap scaling: %d workers on %d CPUs / 1 worker on 1 CPU = %.2f\n", n, cpus, (c ? b / c : 0) }'
fi
