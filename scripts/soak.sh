#!/bin/sh
# Soak the sensor: the real tcptap binary on a lab's mirror port, tracing
# on, under continuous connection churn (real connections between network
# namespaces, every tenth aborted), for DURATION (default 10m) at RATE
# connections a second (default 100). Prints the resident memory,
# goroutines and open files after the warm-up with their slopes, the kernel
# drops, and whether opened = closed + tracked and the closes by reason match
# what the clients did. Needs root (network namespaces). CI runs the same
# test for 3 minutes (cmd/tcptap/soak_test.go).
#
#   sudo scripts/soak.sh            # 10 minutes at 100/s
#   sudo scripts/soak.sh 30m 200
set -eu
cd "$(dirname "$0")/.."
DURATION=${1:-10m}
RATE=${2:-100}
export TCPTAP_SOAK_DURATION="$DURATION" TCPTAP_SOAK_RATE="$RATE"
exec go test -count=1 -run '^TestSoak$' -timeout 0 -v ./cmd/tcptap
