#!/usr/bin/env bash
# Runs a, b and c of ../shared/bench/anchors.sh for one chat-server build in memory, with
# DATA_FSYNC=interval and with always, alternating, ROUNDS times (BENCHMARKS.md, "The
# journal on disk"); a fresh DATA_DIR for each call, under DISK. With BEFORE (another
# build's binary), each journal mode runs with that build too, next to this one's, in the
# same rounds (this one first in odd rounds, the other first in even ones).
#
#   Benchmarks/journal-modes.sh BIN OUTDIR
#   ROUNDS (3), RUNS ("a b c"), DURATION (10s), DISK (/var/tmp; a tmpfs to leave the disk out),
#   MODES ("memory interval always"; round N starts with the Nth), BEFORE (unset)
# Everything it starts, the harness stops; all traffic is on 127.0.0.1.
set -euo pipefail
bin=$1 out=$2 rounds=${ROUNDS:-3} disk=${DISK:-/var/tmp}
harness=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
base="LOG_LEVEL=warning MAX_CONNECTIONS=20000 CONNECTIONS_PER_IP_PER_MINUTE=1000 LOGIN_TIMEOUT_SECONDS=600 OTP_REQUEST_INTERVAL_SECONDS=0 OTP_REQUESTS_PER_HOUR=1000 OTP_REQUESTS_PER_IP_PER_HOUR=100000 OTP_REQUESTS_PER_MINUTE=1000000 MESSAGE_BURST=10000 MESSAGES_PER_SECOND=10000 MAX_QUEUED_LINES=100000 SMTP_MAX_CONCURRENCY=16 SMTP_MAX_QUEUED=100000"
mkdir -p "$out"
modes=(${MODES:-memory interval always})
for round in $(seq "$rounds"); do
    # Each round starts with the next mode, so that no mode always runs first.
    for index in $(seq 0 $((${#modes[@]} - 1))); do
        mode=${modes[$(((index + round - 1) % ${#modes[@]}))]}
        builds="this"
        if [ -n "${BEFORE:-}" ] && [ "$mode" != memory ]; then
            builds="this before"
            if [ $((round % 2)) -eq 0 ]; then builds="before this"; fi
        fi
        for build in $builds; do
            dir=$(mktemp -d -p "$disk" journal-bench-XXXX)
            extra="" binary=$bin name=$mode
            if [ "$mode" != memory ]; then extra="DATA_DIR=$dir/data DATA_FSYNC=$mode"; fi
            if [ "$build" = before ]; then binary=$BEFORE name=$mode-before; fi
            PROJ_BIN=$binary PROJ_ENV="$base $extra" SERVERS=proj RUNS="${RUNS:-a b c}" TRIES=1 DURATION=${DURATION:-10s} \
                "$harness/anchors.sh" "$out/$name-$round" >"$out/$name-$round.log" 2>&1 || echo "call $name $round failed"
            rm -rf "$dir"
        done
    done
done
echo "tables: $out/<mode>[-before]-<round>/table.md"
