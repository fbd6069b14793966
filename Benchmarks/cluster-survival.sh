#!/usr/bin/env bash
# What issue 12 asks to measure of a cluster, on loopback, with release builds:
#   1. start-up time of a node joining a cluster of USERS (10000) logged-in users;
#   2. Redis's memory after LINES (1000000) chat lines, with snapshots trimming the log;
#   3. how long a Redis outage of 5 s takes to recover: from Redis ready again to the
#      first line from node 1 reaching a user on node 2.
#   Benchmarks/cluster-survival.sh [OUTDIR]
# Everything it starts, it stops; all traffic is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product chat-server >/dev/null
swift build -c release --product chat-bench >/dev/null
out=${1:-$(mktemp -d)}
mkdir -p "$out"
users=${USERS:-10000} lines=${LINES:-1000000}
work=$(mktemp -d /dev/shm/chat-survival.XXXXXX)
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; }
now() { date +%s.%N; }

redis_port=$(free_port)
start_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --appendonly yes --save "" --dir "$work" \
        --logfile "$out/redis.log" &
    redis=$!
    pids+=("$redis")
    wait_port "$redis_port"
}
start_node() { # name -> $node_pid, $node_port
    node_port=$(free_port)
    env $(grep -v '^#' Benchmarks/bench-server.env | xargs) MAIL_DIR="$work/mail" TCP_PORT="$node_port" \
        CLUSTER_REDIS_URL="redis://127.0.0.1:$redis_port" NODE_ID="$1" CLUSTER_SNAPSHOT_SECONDS=5 \
        MAX_CONNECTIONS=200000 LOG_LEVEL=info .build/release/chat-server >"$out/$1.log" 2>&1 &
    node_pid=$!
    pids+=("$node_pid")
}
mkdir -p "$work/mail"
start_redis

# 1. A node joining a cluster of $users users.
start_node node1
wait_port "$node_port"
port1=$node_port
.build/release/chat-bench idle --clients "$users" --duration 40 --mail-dir "$work/mail" --port "$port1" \
    --login-concurrency 256 >"$out/idle.txt" 2>&1 &
bench=$!
for _ in $(seq 600); do
    grep -q "User logged in" "$out/node1.log" 2>/dev/null &&
        [ "$(grep -c 'User logged in' "$out/node1.log")" -ge "$users" ] && break
    sleep 0.2
done
sleep 6 # a snapshot (every 5 s) with everyone in it
started=$(now)
start_node node2
wait_port "$node_port"
joined=$(now)
port2=$node_port
echo "join: a node joining $users users listened after $(python3 -c "print(f'{$joined - $started:.2f}')") s;" \
    "$(grep 'Joined the cluster' "$out/node2.log")" | tee "$out/join.txt"
wait "$bench" || true

# 2. Redis's memory after $lines lines, snapshots trimming the log.
redis-cli -p "$redis_port" INFO memory | grep -E "^used_memory(_human)?:" >"$out/memory-before.txt"
.build/release/chat-bench fanout --clients 100 --senders 5 --rate 0 --duration $((lines / 10000)) \
    --mail-dir "$work/mail" --port "$port1" --port "$port2" >"$out/lines.txt" 2>&1
sleep 11 # two snapshot intervals: the log is trimmed behind the last snapshot
{
    echo "before the lines: $(tr '\r\n' '  ' <"$out/memory-before.txt")"
    echo "after them: $(redis-cli -p "$redis_port" INFO memory | grep -E '^used_memory(_human)?:' | tr '\r\n' '  ')"
    echo "entries added to the log in all: $(redis-cli -p "$redis_port" XINFO STREAM '{chat}:log' | sed -n '/entries-added/{n;p}')"
    echo "entries in the log now: $(redis-cli -p "$redis_port" XLEN '{chat}:log')"
    echo "snapshot bytes: $(redis-cli -p "$redis_port" STRLEN '{chat}:snapshot')"
} | tee "$out/memory.txt"
grep -E "deliveries/s|lost" "$out/lines.txt" | head -2

# 3. An outage of 5 s: Redis stopped (SIGTERM: its append-only file on disk), started again
# on the same port and folder 5 s later; a probe user on node 1 sends a line every 100 ms
# until one reaches a probe user on node 2.
python3 - "$port1" "$port2" "$work" "$redis" "$redis_port" "$out" <<'PY' | tee "$out/outage.txt"
import glob, os, re, signal, socket, subprocess, sys, time
port1, port2, work, redis_pid, redis_port, out = sys.argv[1:7]
def login(port, src, name):
    s = socket.socket(); s.bind((src, 0)); s.connect(("127.0.0.1", int(port))); s.settimeout(5)
    def until(text):
        data = b""
        while text.encode() not in data: data += s.recv(65536)
    until("Enter your email"); s.sendall(f"{name}@example.com\n".encode()); until("Enter OTP")
    code = None
    for _ in range(100):
        for path in glob.glob(f"{work}/mail/*.eml"):
            text = open(path, errors="replace").read()
            if f"{name}@example.com" in text:
                code = re.search(r"\b(\d{6})\b", text.split("\n\n", 1)[1]).group(1)
        if code: break
        time.sleep(0.05)
    s.sendall(f"{code}\n".encode()); until("Enter username"); s.sendall(f"{name}\n".encode()); until("/help")
    return s
a = login(port1, "127.0.3.1", "probea")
b = login(port2, "127.0.3.2", "probeb")
b.settimeout(0.02)
os.kill(int(redis_pid), signal.SIGTERM)
time.sleep(5)
again = subprocess.Popen(["redis-server", "--port", redis_port, "--bind", "127.0.0.1", "--appendonly", "yes",
                          "--save", "", "--dir", work, "--logfile", f"{out}/redis-again.log"])
open(f"{out}/redis-again.pid", "w").write(str(again.pid))
for _ in range(2000):  # up to 10 s for Redis to load its data and listen
    try:
        socket.create_connection(("127.0.0.1", int(redis_port)), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.005)
else:
    sys.exit("outage: Redis did not come back within 10 s")
ready = time.time()
n = 0
while time.time() - ready < 60:
    n += 1
    a.sendall(f"probe {n}\n".encode())
    deadline, got = time.time() + 0.1, b""
    while time.time() < deadline:
        try: got += b.recv(65536)
        except socket.timeout: pass
    if b"[probea]: probe" in got:
        print(f"outage: 5 s; a line from node 1 reached node 2 {time.time() - ready:.2f} s after Redis was ready again")
        break
else:
    print("outage: no line within 60 s")
PY
[ -f "$out/redis-again.pid" ] && pids+=("$(cat "$out/redis-again.pid")")
