#!/usr/bin/env bash
# bench-live.sh: the live drop test (performance issue 8). A synthetic
# capture (cmd/tcptap-synth) is replayed with tcpreplay from one network
# namespace into a veth pair whose other end, in a second namespace, is the
# capture interface of `tcptap run`, as a mirror port would be. Each rate
# is run twice: without the daemon (what the sender and the veth carry on
# their own) and with it (a fresh daemon per run: tracing on, default
# 64 MiB ring per worker). Then a burst is queued into the 1 GiB ring of a
# stopped daemon, which is resumed to measure how fast one worker drains
# it, and, when trafgen is installed, one static frame at top speed shows
# the veth's ceiling. Prints one table row per run:
# packets offered and delivered to the interface, what the daemon's sockets
# got (its metrics: the kernel's PACKET_STATISTICS and frames read), kernel
# drops, the daemon's CPU (utime+stime from /proc) as cores and as CPU time
# per packet.
#
#   scripts/bench-live.sh [-r RATES] [-t SECONDS] [-p PACKETS] [-c CONNECTIONS]
#                         [-w WORKERS] [-b BURST] [-n RUNS] [-a] [-k]
#
#   -r  comma-separated rates in packets/s, "top" for tcpreplay --topspeed
#       (default top,250000,500000,1000000)
#   -t  seconds per fixed-rate run (default 4); a top-speed run sends
#       2 × PACKETS
#   -p  packets in the synthetic capture (default 1000000; looped with
#       tcpreplay --unique-ip so that every pass has new connections)
#   -c  connections in it (default 20000)
#   -w  daemon capture workers (default 1)
#   -b  packets of the burst into the stopped daemon (default 1000000; 0: none)
#   -n  run the whole sequence N times (default 1)
#   -a  pin the sender to CPU 0 and the daemon to CPU 1
#   -k  keep the work directory (capture, daemon logs, sender outputs)
#
# Needs root, go, tcpreplay, curl, iproute2 (apt-get install tcpreplay curl
# iproute2); trafgen (netsniff-ng) optional. Makes namespaces
# tcptap-bl-tx-PID and tcptap-bl-rx-PID, deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

rates=top,250000,500000,1000000 secs=4 packets=1000000 conns=20000 workers=1 burst=1000000 runs=1 pin=0 keep=0
while getopts "r:t:p:c:w:b:n:akh" o; do
	case $o in
	r) rates=$OPTARG ;;
	t) secs=$OPTARG ;;
	p) packets=$OPTARG ;;
	c) conns=$OPTARG ;;
	w) workers=$OPTARG ;;
	b) burst=$OPTARG ;;
	n) runs=$OPTARG ;;
	a) pin=1 ;;
	k) keep=1 ;;
	*) sed -n '2,35p' "$0"; exit 2 ;;
	esac
done
for v in "$secs" "$packets" "$conns" "$workers" "$runs"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench-live: '$v' is not a positive whole number" >&2; exit 2; }
done
[[ $burst =~ ^[0-9]+$ ]] || { echo "bench-live: burst '$burst' is not a whole number" >&2; exit 2; }
IFS=, read -ra rate_list <<<"$rates"
for rate in "${rate_list[@]}"; do
	[[ $rate == top || $rate =~ ^[1-9][0-9]*$ ]] || { echo "bench-live: rate '$rate' is neither 'top' nor packets/s" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench-live: needs root (network namespaces, AF_PACKET)" >&2; exit 1; }
for t in go tcpreplay curl ip; do
	command -v "$t" >/dev/null || { echo "bench-live: $t missing (apt-get install tcpreplay curl iproute2)" >&2; exit 1; }
done

tx=tcptap-bl-tx-$$ rx=tcptap-bl-rx-$$ txdev=bltx0 rxdev=blrx0 port=9911
work=$(mktemp -d /tmp/bench-live.XXXXXX)
daemon_pid=""
cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -CONT "$daemon_pid" 2>/dev/null || true
		kill "$daemon_pid" 2>/dev/null || true
	fi
	ip netns del "$tx" 2>/dev/null || true
	ip netns del "$rx" 2>/dev/null || true
	if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/tcptap" ./cmd/tcptap
go build -o "$work/tcptap-synth" ./cmd/tcptap-synth
"$work/tcptap-synth" --packets "$packets" --connections "$conns" --seed 1 --out "$work/synth.pcap" 2>"$work/synth.txt"
npkts=$(awk '$1 == "packets" {print $2; exit}' "$work/synth.txt")
[[ $npkts =~ ^[0-9]+$ ]] || { echo "bench-live: no packet count in tcptap-synth's summary:" >&2; cat "$work/synth.txt" >&2; exit 1; }

# Two namespaces joined by a veth pair: the sender writes on txdev, the
# daemon captures rxdev. IPv6 is off so that no neighbour discovery adds
# frames to the counts; the replayed frames carry their own addresses and
# MACs, so the receiving stack drops them after the capture (other host).
ip netns add "$tx"
ip netns add "$rx"
ip link add "$txdev" netns "$tx" type veth peer name "$rxdev" netns "$rx"
for ns in "$tx" "$rx"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link set lo up
done
ip -n "$tx" addr add 10.203.0.1/30 dev "$txdev"
ip -n "$rx" addr add 10.203.0.2/30 dev "$rxdev"
ip -n "$tx" link set "$txdev" up
ip -n "$rx" link set "$rxdev" up
for ((i = 0; i < 50; i++)); do
	ip -n "$rx" link show "$rxdev" | grep -q LOWER_UP && break
	sleep 0.1
done

sender_cpu=() daemon_cpu=()
if [ "$pin" = 1 ]; then sender_cpu=(taskset -c 0) daemon_cpu=(taskset -c 1); fi

counter() { # namespace device counter
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
}

# start_daemon RING: a fresh daemon capturing rxdev; waits until its HTTP
# endpoint answers, which is after its sockets are bound.
start_daemon() {
	cat >"$work/tcptap.yaml" <<-EOF
		capture:
		  interfaces: [$rxdev]
		  workers: $workers
		  ring_size: $1
		trace:
		  enable: true
		exporter:
		  listen: "127.0.0.1:$port"
		snmp:
		  listen: []
		control:
		  socket: $work/control.sock
	EOF
	rm -f "$work/daemon.pid"
	# shellcheck disable=SC2016 # $$ is the inner shell's, which execs the daemon
	ip netns exec "$rx" "${daemon_cpu[@]}" sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$work/daemon.pid" \
		"$work/tcptap" run --config "$work/tcptap.yaml" >>"$work/daemon.log" 2>&1 &
	for ((i = 0; i < 300; i++)); do
		[ -s "$work/daemon.pid" ] && daemon_pid=$(cat "$work/daemon.pid")
		if [ -n "$daemon_pid" ] && metrics >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "bench-live: the daemon did not start; its log:" >&2
	cat "$work/daemon.log" >&2
	exit 1
}

stop_daemon() {
	kill "$daemon_pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.1
	done
	daemon_pid=""
}

# metrics prints "frames kernel_packets kernel_drops queue_freezes" summed
# over the capture interface's workers.
metrics() {
	ip netns exec "$rx" curl -sf --max-time 5 "http://127.0.0.1:$port/metrics" | awk '
		/^tcptap_capture_frames_total/ {f=$2} /^tcptap_capture_kernel_packets_total/ {p=$2}
		/^tcptap_capture_kernel_drops_total/ {d=$2} /^tcptap_capture_kernel_queue_freezes_total/ {q=$2}
		END {if (p == "") exit 1; printf "%.0f %.0f %.0f %.0f\n", f, p, d, q}'
}

# drained waits (at most 30 s) until the workers have read all the kernel
# queued (frames + drops = packets) and the count stands still.
drained() {
	local last=-1 m frames packets drops
	for ((i = 0; i < 300; i++)); do
		m=$(metrics)
		read -r frames packets drops _ <<<"$m"
		if [ $((frames + drops)) = "$packets" ] && [ "$frames" = "$last" ]; then
			echo "$m"
			return 0
		fi
		last=$frames
		sleep 0.1
	done
	echo "bench-live: the daemon did not catch up with its ring within 30s: $m" >&2
	echo "$m"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }

# send NAME RATE COUNT: replays COUNT packets at RATE (or top speed), or
# with NAME "trafgen" one static frame; prints "sent seconds".
send() {
	local out=$work/sender.$1.$2.out limit=$((secs * 30 + 60))
	case $1 in
	tcpreplay)
		local loops=$((($3 + npkts - 1) / npkts)) speed=(--topspeed)
		[ "$2" = top ] || speed=(--pps "$2")
		ip netns exec "$tx" "${sender_cpu[@]}" timeout "$limit" tcpreplay "${speed[@]}" -K --no-flow-stats \
			--unique-ip -l "$loops" -L "$3" -i "$txdev" "$work/synth.pcap" >"$out" 2>&1 ||
			{ echo "bench-live: tcpreplay failed:" >&2; cat "$out" >&2; exit 1; }
		awk '/^Actual:/ {print $2, $(NF-1)}' "$out"
		;;
	trafgen)
		# An ACK with 32 bytes of data from a client that never changes.
		echo '{ eth(da=02:00:00:00:00:02, sa=02:00:00:00:00:01), ipv4(sa=10.64.0.1, da=10.128.0.1, ttl=64),
			tcp(sp=40000, dp=80, seq=1, aseq=1, ack, psh, win=65535), fill(0x41, 32) }' >"$work/static.trafgen"
		local t0 t1
		t0=$(date +%s.%N)
		ip netns exec "$tx" "${sender_cpu[@]}" timeout "$limit" trafgen -o "$txdev" -i "$work/static.trafgen" -n "$3" \
			-P 1 --no-sock-mem --notouch-irq --no-cpu-stats >"$out" 2>&1 ||
			{ echo "bench-live: trafgen failed:" >&2; cat "$out" >&2; exit 1; }
		t1=$(date +%s.%N)
		awk -v t0="$t0" -v t1="$t1" '/packets outgoing/ {gsub(/\r/, ""); n=$1} END {printf "%d %.3f\n", n, t1 - t0}' "$out"
		;;
	esac
}

rows=()
# run LABEL SENDER RATE COUNT WITH_DAEMON(0/1|burst)
run() {
	local label=$1 sender=$2 rate=$3 count=$4 mode=$5 rx0 rxd0 rx1 rxd1 c0 c1 t0 t1 m sent secs_sent
	if [ "$mode" != 0 ]; then
		local ring=64MiB
		[ "$mode" = burst ] && ring=1GiB # holds the whole burst while the daemon is stopped
		start_daemon "$ring"
	fi
	[ "$mode" = burst ] && kill -STOP "$daemon_pid"
	rx0=$(counter "$rx" "$rxdev" rx_packets) rxd0=$(counter "$rx" "$rxdev" rx_dropped)
	[ "$mode" = 1 ] && c0=$(cpu_ticks)
	m=$(send "$sender" "$rate" "$count")
	read -r sent secs_sent <<<"$m"
	rx1=$(counter "$rx" "$rxdev" rx_packets) rxd1=$(counter "$rx" "$rxdev" rx_dropped)
	local frames=- kpkts=- drops=- freezes=- cores=- us=- drain=-
	if [ "$mode" != 0 ]; then
		if [ "$mode" = burst ]; then
			c0=$(cpu_ticks)
			t0=$(date +%s.%N)
			kill -CONT "$daemon_pid"
		fi
		m=$(drained)
		c1=$(cpu_ticks)
		t1=$(date +%s.%N)
		read -r frames kpkts drops freezes <<<"$m"
		local hz
		hz=$(getconf CLK_TCK)
		us=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$frames" 'BEGIN {printf "%.2f", n ? c / hz / n * 1e6 : 0}')
		if [ "$mode" = burst ]; then
			# Cores are moot while it drains flat out; the drain rate is.
			drain=$(awk -v n="$frames" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.0f", n / (t1 - t0)}')
		else
			cores=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v s="$secs_sent" 'BEGIN {printf "%.2f", c / hz / s}')
		fi
		stop_daemon
	fi
	local row
	row=$(awk -v l="$label" -v r="$rate" -v n="$sent" -v s="$secs_sent" -v d=$((rx1 - rx0)) -v dd=$((rxd1 - rxd0)) \
		-v k="$kpkts" -v dr="$drops" -v q="$freezes" -v f="$frames" -v c="$cores" -v u="$us" -v w="$drain" 'BEGIN {
		printf "%-22s %8s %9d %9.0f %9d %5d %9s %7s %7s %9s %6s %6s %9s", l, r, n, n / s, d, dd, k, dr, q, f, c, u, w }')
	echo "$row" >&2
	rows+=("$row")
}

header=$(printf "%-22s %8s %9s %9s %9s %5s %9s %7s %7s %9s %6s %6s %9s" \
	run rate sent sent/s delivered rxdrp to_daemon drops freezes frames cores us/pkt drain/s)
echo "capture: $npkts packets, $conns connections (seed 1); $workers worker(s); CPUs: $(nproc); kernel $(uname -r)" >&2
echo "$header" >&2
for ((r = 1; r <= runs; r++)); do
	for rate in "${rate_list[@]}"; do
		if [ "$rate" = top ]; then count=$((2 * npkts)); else count=$((rate * secs)); fi
		run "tcpreplay alone" tcpreplay "$rate" "$count" 0
		run "tcpreplay + daemon" tcpreplay "$rate" "$count" 1
	done
	if [ "$burst" -gt 0 ]; then
		run "burst, daemon stopped" tcpreplay top "$burst" burst
	fi
	if command -v trafgen >/dev/null; then
		run "trafgen 1 frame alone" trafgen top $((2 * npkts)) 0
		run "trafgen 1 frame+daemon" trafgen top $((2 * npkts)) 1
	fi
done

echo
echo "$header"
printf '%s\n' "${rows[@]}"
cat <<EOF
(rate: asked of the sender; sent, sent/s: by the sender's own count and clock; delivered, rxdrp: the
capture interface's rx_packets and rx_dropped; to_daemon, drops, freezes: the kernel's PACKET_STATISTICS
for the daemon's sockets, from its /metrics; frames: frames the workers read; cores: daemon utime+stime
over the sending time; us/pkt: daemon CPU per frame; drain/s: frames per second the stopped daemon read
its ring with once resumed. The kernel work of capturing — filter, copy into the ring — runs in the
sender's softirq on a veth and counts against the sender, not the daemon.)
EOF
