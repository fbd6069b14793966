#!/usr/bin/env bash
# Start-up time and memory of a node on its own after a million journaled chat lines, with
# and without a snapshot, and the journal's bytes per line (BENCHMARKS.md, "The journal on
# disk"). Fills one DATA_DIR with run b of ../shared/bench/anchors.sh (DATA_FSYNC=interval,
# snapshots held off, so the whole journal is one segment), then starts the server on it
# STARTS times, has it write a snapshot, and starts it STARTS times from that; memory only
# (no DATA_DIR) for reference. Each start: the wall time until it listens, the replay the
# server logs, its resident memory once listening and the most it held until then (VmHWM).
# With BEFORE (another build's binary), each start of the journal is made with that build
# too, right after this one's, on the same files.
#
#   Benchmarks/journal-startup.sh BIN OUTDIR
#   DURATION (200s of run b: over a million lines on this project's test machines; the
#   script says how many there were), STARTS (3), DISK (/var/tmp), BEFORE (unset)
# Everything it starts, it stops; all traffic is on 127.0.0.1.
set -euo pipefail
bin=$(realpath "$1") out=$2 disk=${DISK:-/var/tmp} starts=${STARTS:-3}
harness=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
base="LOG_LEVEL=warning MAX_CONNECTIONS=20000 CONNECTIONS_PER_IP_PER_MINUTE=1000 LOGIN_TIMEOUT_SECONDS=600 OTP_REQUEST_INTERVAL_SECONDS=0 OTP_REQUESTS_PER_HOUR=1000 OTP_REQUESTS_PER_IP_PER_HOUR=100000 OTP_REQUESTS_PER_MINUTE=1000000 MESSAGE_BURST=10000 MESSAGES_PER_SECOND=10000 MAX_QUEUED_LINES=100000 SMTP_MAX_CONCURRENCY=16 SMTP_MAX_QUEUED=100000"
held="DATA_SNAPSHOT_SECONDS=86400 DATA_SNAPSHOT_ENTRIES=100000000"
mkdir -p "$out"
work=$(mktemp -d -p "$disk" journal-startup-XXXX)
data=$work/data
server=""
cleanup() {
    if [ -n "$server" ]; then kill -9 "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

PROJ_BIN=$bin PROJ_ENV="$base DATA_DIR=$data DATA_FSYNC=interval $held" SERVERS=proj RUNS=b TRIES=1 \
    DURATION=${DURATION:-200s} "$harness/anchors.sh" "$out/fill" >"$out/fill.log" 2>&1
journal_bytes=$(cat "$data"/journal-*.log | wc -c)

# Starts the server with the settings given, waits (60 s at most) until it listens (and,
# with UNTIL set, until it logs that), and prints: wall milliseconds to listening, records
# replayed, the replay's own duration, RSS kB once listening.
start() {
    local log=$1
    shift
    local began=$(date +%s%N)
    env -i PATH="$PATH" $base LOG_LEVEL=info TCP_PORT=0 BIND_ADDRESS=127.0.0.1 MAIL_TRANSPORT=file \
        MAIL_DIR="$work/mail" "$@" "${BINARY:-$bin}" >"$log" 2>&1 &
    server=$!
    for _ in $(seq 600); do
        if grep -q "Listening" "$log"; then break; fi
        sleep 0.1
    done
    grep -q "Listening" "$log" || { echo "no start: $log" >&2; exit 1; }
    local listening=$((($(date +%s%N) - began) / 1000000))
    local rss=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
    local peak=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
    if [ -n "${UNTIL:-}" ]; then
        for _ in $(seq 600); do
            if grep -q "$UNTIL" "$log"; then break; fi
            sleep 0.1
        done
        grep -q "$UNTIL" "$log" || { echo "never logged $UNTIL: $log" >&2; exit 1; }
    fi
    local replay=$(grep "Journal replayed" "$log" || true)
    local replayed=$(echo "$replay" | grep -o 'records_replayed=[0-9]*' | cut -d= -f2)
    local duration=$(echo "$replay" | grep -o 'duration=[0-9.e-]* seconds' | cut -d= -f2 | cut -d' ' -f1)
    kill -TERM "$server"
    wait "$server" || true
    server=""
    echo "$listening | ${replayed:--} | ${duration:--} | $rss | $peak"
}

{
    echo "journal: $journal_bytes bytes in $(ls "$data"/journal-*.log | wc -l) segment(s)"
    echo "start | ms to listening | records replayed | replay s | RSS kB | peak RSS kB"
    for n in $(seq "$starts"); do echo "memory only | $(start "$out/memory-$n.log")"; done
    for n in $(seq "$starts"); do
        echo "whole journal | $(start "$out/journal-$n.log" DATA_DIR="$data" $held)"
        if [ -n "${BEFORE:-}" ]; then
            echo "whole journal, BEFORE | $(BINARY=$BEFORE start "$out/journal-before-$n.log" DATA_DIR="$data" $held)"
        fi
    done
    # A snapshot of the state, then a start from it with nothing after it to replay.
    UNTIL="Snapshot written" start "$out/snapshot-writer.log" DATA_DIR="$data" DATA_SNAPSHOT_SECONDS=1 >/dev/null
    echo "snapshot: $(grep -o 'bytes=[0-9]*' "$out/snapshot-writer.log" | head -1)"
    for n in $(seq "$starts"); do
        echo "from a snapshot | $(start "$out/snapshot-$n.log" DATA_DIR="$data" $held)"
        if [ -n "${BEFORE:-}" ]; then
            echo "from a snapshot, BEFORE | $(BINARY=$BEFORE start "$out/snapshot-before-$n.log" DATA_DIR="$data" $held)"
        fi
    done
} | tee "$out/startup.txt"
