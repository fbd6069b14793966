#!/usr/bin/env bash
# Runs a, b and c of ../shared/bench/anchors.sh for one chat-server build in memory, with
# DATA_FSYNC=interval and with always, alternating, ROUNDS times (BENCHMARKS.md, "The
# journal on disk"); a fresh DATA_DIR for each call, under DISK.
#
#   Benchmarks/journal-modes.sh BIN OUTDIR
#   ROUNDS (3), RUNS ("a b c"), DURATION (10s), DISK (/var/tmp; a tmpfs to leave the disk out)
# Everything it starts, the harness stops; all traffic is on 127.0.0.1.
set -euo pipefail
bin=$1 out=$2 rounds=${ROUNDS:-3} disk=${DISK:-/var/tmp}
harness=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
base="LOG_LEVEL=warning MAX_CONNECTIONS=20000 CONNECTIONS_PER_IP_PER_MINUTE=1000 LOGIN_TIMEOUT_SECONDS=600 OTP_REQUEST_INTERVAL_SECONDS=0 OTP_REQUESTS_PER_HOUR=1000 OTP_REQUESTS_PER_IP_PER_HOUR=100000 OTP_REQUESTS_PER_MINUTE=1000000 MESSAGE_BURST=10000 MESSAGES_PER_SECOND=10000 MAX_QUEUED_LINES=100000 SMTP_MAX_CONCURRENCY=16 SMTP_MAX_QUEUED=100000"
mkdir -p "$out"
for round in $(seq "$rounds"); do
    for mode in memory interval always; do
        dir=$(mktemp -d -p "$disk" journal-bench-XXXX)
        extra=""
        if [ "$mode" != memory ]; then extra="DATA_DIR=$dir/data DATA_FSYNC=$mode"; fi
        PROJ_BIN=$bin PROJ_ENV="$base $extra" SERVERS=proj RUNS="${RUNS:-a b c}" TRIES=1 DURATION=${DURATION:-10s} \
            "$harness/anchors.sh" "$out/$mode-$round" >"$out/$mode-$round.log" 2>&1 || echo "call $mode $round failed"
        rm -rf "$dir"
    done
done
echo "tables: $out/<mode>-<round>/table.md"
