#!/usr/bin/env bash
# CPU per delivery of two chat-server builds at the same fixed offered load, in alternating
# pairs, with the shared harness's load generator (../shared/bench). At a fixed rate below
# saturation both builds do the same work, so the server's CPU per delivery compares their
# efficiency without the scheduling noise of closed-loop runs (BENCHMARKS.md).
#
#   Benchmarks/fixed-rate-pairs.sh BEFORE_BIN AFTER_BIN [OUTDIR]
#   CLIENTS (100) RATE (8000 lines/s) DURATION (10s) PAIRS (6) change the run.
# Everything it starts, it stops; all traffic is on 127.0.0.1.
set -euo pipefail
before=$1 after=$2
out=${3:-$(mktemp -d)}
mkdir -p "$out"
clients=${CLIENTS:-100} rate=${RATE:-8000} duration=${DURATION:-10s} pairs=${PAIRS:-6}
harness=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
(cd "$harness/loadgen" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$work/loadgen" .)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_one() { # binary name index
    local mail=$work/mail-$2-$3 sink_port port
    mkdir -p "$mail"
    sink_port=$(free_port)
    python3 "$harness/smtp_sink.py" "$sink_port" "$mail" --ready-file "$mail.ready" --max-seconds 600 -q \
        >/dev/null 2>&1 &
    local sink=$!
    pids+=("$sink")
    for _ in $(seq 50); do [ -f "$mail.ready" ] && break; sleep 0.1; done
    local server
    # A free port can be taken by a client's ephemeral port before the server binds it:
    # then the server exits, and the run tries another port (up to three).
    for _ in 1 2 3; do
        port=$(free_port)
        env TCP_PORT="$port" SMTP_HOST=localhost SMTP_PORT="$sink_port" SMTP_SECURITY=none \
            SMTP_EMAIL=chat@example.com SMTP_PASSWORD=bench-pw LOG_LEVEL=warning MAX_CONNECTIONS=20000 \
            CONNECTIONS_PER_IP_PER_MINUTE=1000 LOGIN_TIMEOUT_SECONDS=600 OTP_REQUEST_INTERVAL_SECONDS=0 \
            OTP_REQUESTS_PER_HOUR=1000 OTP_REQUESTS_PER_IP_PER_HOUR=100000 OTP_REQUESTS_PER_MINUTE=1000000 \
            MESSAGE_BURST=10000 MESSAGES_PER_SECOND=10000 MAX_QUEUED_LINES=100000 SMTP_MAX_CONCURRENCY=16 \
            SMTP_MAX_QUEUED=100000 "$1" >"$out/$2-$3.server.log" 2>&1 &
        server=$!
        pids+=("$server")
        for _ in $(seq 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            kill -0 "$server" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$server" 2>/dev/null && break
    done
    "$work/loadgen" -protocol chat -maildir "$mail" -addr "127.0.0.1:$port" -n "$clients" -senders 5 \
        -rate "$rate" -duration "$duration" -server-pid "$server" -quiet >"$out/$2-$3.txt" 2>&1
    kill "$server" "$sink" 2>/dev/null || true
    wait "$server" "$sink" 2>/dev/null || true
}

for i in $(seq "$pairs"); do
    if [ $((i % 2)) = 1 ]; then order="before after"; else order="after before"; fi
    for which in $order; do
        if [ "$which" = before ]; then run_one "$before" before "$i"; else run_one "$after" after "$i"; fi
    done
done

python3 - "$out" "$pairs" <<'PY'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
def cpu(name):
    for line in open(f"{out}/{name}.txt"):
        if line.startswith("{"):
            phase = json.loads(line)["phases"][0]
            assert phase["received"] == phase["expected"], f"{name}: lost deliveries"
            return phase["server_cpu_s"] / phase["received"] * 1e6
values = {w: [cpu(f"{w}-{i}") for i in range(1, pairs + 1)] for w in ("before", "after")}
ratios = [a / b for a, b in zip(values["after"], values["before"])]
for w in ("before", "after"):
    print(f"{w}: server CPU us per delivery", " ".join(f"{v:.3f}" for v in values[w]),
          f"median {statistics.median(values[w]):.3f}")
print("after / before, pair by pair:", " ".join(f"{r:.3f}" for r in ratios),
      f"median {statistics.median(ratios):.3f}")
PY
