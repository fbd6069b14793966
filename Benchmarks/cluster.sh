#!/usr/bin/env bash
# One node alone next to two nodes sharing a Redis, in the same run, with the same load:
# a room of CLIENTS (500) members split over the nodes, at RATE (100) lines/s and in a
# closed loop (rate 0). chat-bench counts every process's CPU: the node(s), and Redis.
# For the cluster runs it also gives the batches (from Redis's command counts): lines per call
# of the append script, which Redis pushes to the nodes as one message, and stream entries per
# call (one since the log's unit is a call; as many as the call's appends before), or entries
# per XREAD reply for a build that reads the stream instead (a BEFORE of 2026-12-07 morning
# or older).
#
#   Benchmarks/cluster.sh [OUTDIR]
#   CLIENTS (500) SENDERS (5) RATE (100) DURATION (15) ROUNDS (2) change the run.
#   CLUSTER_THREADS=n gives each cluster node n event loop threads (default: one per core,
#   as the single node has), e.g. 1 so two nodes on a 2-core machine do not oversubscribe it.
#   BEFORE=/path/to/chat-server also runs two nodes of that build (e.g. the commit before a
#   change), in the same rounds, so a change to the cluster path is measured side by side;
#   BEFORE_THREADS=n gives those nodes n event loop threads instead of CLUSTER_THREADS.
#   SENTINEL=1 also runs two nodes on a primary with one replica and three sentinels
#   (CLUSTER_REDIS_SENTINELS), once waiting for the replica before applying an entry
#   (CLUSTER_REDIS_WAIT_REPLICAS=1, the default) and once not (0), in the same rounds; the
#   CPU counted is then the nodes', the primary's, the replica's and the sentinels'.
#   SERVER_CPUS=list and BENCH_CPUS=list (taskset's, e.g. 0 and 1) keep the servers (node(s),
#   Redis, sentinels) and the load generator on cores of their own, in every configuration:
#   two nodes then cannot write their halves of a line at the same moment on shared cores.
# Builds release binaries first. Everything it starts, it stops; all traffic is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product chat-server >/dev/null
swift build -c release --product chat-bench >/dev/null
out=${1:-$(mktemp -d)}
mkdir -p "$out"
clients=${CLIENTS:-500} senders=${SENDERS:-5} rate=${RATE:-100} duration=${DURATION:-15} rounds=${ROUNDS:-2}
mail_root=/dev/shm
[ -d "$mail_root" ] || mail_root=/tmp
work=$(mktemp -d "$mail_root/chat-cluster-bench.XXXXXX")
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }

server_bin=.build/release/chat-server
on_server_cpus=() on_bench_cpus=()
[ -n "${SERVER_CPUS:-}" ] && on_server_cpus=(taskset -c "$SERVER_CPUS")
[ -n "${BENCH_CPUS:-}" ] && on_bench_cpus=(taskset -c "$BENCH_CPUS")
start_node() { # mail [redis_port|sentinels:host:port,...] -> pid in $node_pid, port in $node_port
    local extra=()
    # A free port can be taken by a client's ephemeral port before the node binds it: then
    # the node exits, and another port is tried (up to three).
    for _ in 1 2 3; do
        node_port=$(free_port)
        case "${2:-}" in
        "") ;;
        sentinels:*) extra=(CLUSTER_REDIS_SENTINELS="${2#sentinels:}" CLUSTER_REDIS_MASTER_NAME=chat
            CLUSTER_REDIS_WAIT_REPLICAS="$wait_replicas" NODE_ID="bench-$node_port"
            ${threads:+EVENT_LOOP_THREADS=$threads}) ;;
        *) extra=(CLUSTER_REDIS_URL="redis://127.0.0.1:$2" NODE_ID="bench-$node_port"
            ${threads:+EVENT_LOOP_THREADS=$threads}) ;;
        esac
        env $(grep -v '^#' Benchmarks/bench-server.env | xargs) MAIL_DIR="$1" TCP_PORT="$node_port" "${extra[@]}" \
            "${on_server_cpus[@]}" "$server_bin" >>"$out/server-$node_port.log" 2>&1 &
        node_pid=$!
        pids+=("$node_pid")
        wait_port "$node_port"
        kill -0 "$node_pid" 2>/dev/null && return
    done
}

start_redis() { # label name [redis-server arguments...] -> pid in $redis_pid, port in $redis_port
    redis_port=$(free_port)
    mkdir -p "$work/redis-$1-$2"
    "${on_server_cpus[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --appendonly yes --save "" --dir "$work/redis-$1-$2" \
        --logfile "$out/redis-$1-$2.log" "${@:3}" &
    redis_pid=$!
    pids+=("$redis_pid")
    wait_port "$redis_port"
}

run() { # label nodes(1|2|2b: two nodes of $BEFORE|2s, 2r: two nodes on sentinels, waiting or not) rate
    local mail=$work/mail-$1 ports=() server_pids=()
    mkdir -p "$mail"
    server_bin=.build/release/chat-server threads=${CLUSTER_THREADS:-}
    if [ "$2" = 2b ]; then server_bin=$BEFORE threads=${BEFORE_THREADS:-${CLUSTER_THREADS:-}}; fi
    if [ "$2" = 1 ]; then
        start_node "$mail"
        ports+=(--port "$node_port")
        server_pids+=(--server-pid "$node_pid")
    elif [ "$2" = 2s ] || [ "$2" = 2r ]; then
        wait_replicas=1
        [ "$2" = 2r ] && wait_replicas=0
        start_redis "$1" primary
        local primary_port=$redis_port
        server_pids+=(--server-pid "$redis_pid")
        start_redis "$1" replica --replicaof 127.0.0.1 "$primary_port"
        server_pids+=(--server-pid "$redis_pid")
        for _ in $(seq 100); do
            redis-cli -p "$redis_port" info replication | grep -q master_link_status:up && break
            sleep 0.1
        done
        local sentinels=""
        for n in 1 2 3; do
            local sentinel_port
            sentinel_port=$(free_port)
            mkdir -p "$work/sentinel-$1-$n"
            printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor chat 127.0.0.1 %s 2\n' \
                "$sentinel_port" "$work/sentinel-$1-$n" "$primary_port" >"$work/sentinel-$1-$n/sentinel.conf"
            "${on_server_cpus[@]}" redis-sentinel "$work/sentinel-$1-$n/sentinel.conf" >>"$out/sentinel-$1-$n.log" 2>&1 &
            pids+=($!)
            server_pids+=(--server-pid "$!")
            wait_port "$sentinel_port"
            sentinels+="${sentinels:+,}127.0.0.1:$sentinel_port"
        done
        redis_port=$primary_port
        for _ in 1 2; do
            start_node "$mail" "sentinels:$sentinels"
            ports+=(--port "$node_port")
            server_pids+=(--server-pid "$node_pid")
        done
    else
        local redis_port
        redis_port=$(free_port)
        mkdir -p "$work/redis-$1"
        "${on_server_cpus[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --appendonly yes --save "" --dir "$work/redis-$1" \
            --logfile "$out/redis-$1.log" &
        local redis=$!
        pids+=("$redis")
        wait_port "$redis_port"
        for _ in 1 2; do
            start_node "$mail" "$redis_port"
            ports+=(--port "$node_port")
            server_pids+=(--server-pid "$node_pid")
        done
        server_pids+=(--server-pid "$redis")
    fi
    "${on_bench_cpus[@]}" .build/release/chat-bench fanout --clients "$clients" --senders "$senders" --rate "$3" \
        --duration "$duration" --mail-dir "$mail" "${ports[@]}" "${server_pids[@]}" >"$out/$1.txt" 2>&1
    # Redis's command counts: the entries per push (or per XREAD reply) are the batch a node applies at once.
    if [ "$2" != 1 ]; then redis-cli -p "$redis_port" info commandstats >"$out/$1.redis-commands" 2>&1 || true; fi
    stop_all
    rm -rf "$mail" "$work/redis-$1" "$work/redis-$1"-* "$work/sentinel-$1"-*
}

for round in $(seq "$rounds"); do
    for rate_label in "rate:$rate" "closed:0"; do
        label=${rate_label%%:*} r=${rate_label##*:}
        if [ $((round % 2)) = 1 ]; then order="1 2${BEFORE:+ 2b}${SENTINEL:+ 2s 2r}"
        else order="${SENTINEL:+2r 2s }${BEFORE:+2b }2 1"; fi
        for nodes in $order; do run "$label-$nodes-node-$round" "$nodes" "$r"; done
    done
done

python3 - "$out" "$rounds" "${BEFORE:+2b}" "${SENTINEL:+2s 2r}" <<'PY'
import json, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
configurations = ["1", "2"] + " ".join(sys.argv[3:]).split()
names = {"1": "1 node", "2": "2 nodes", "2b": "2 nodes (BEFORE)",
         "2s": "2 nodes, Sentinel, waiting for the replica", "2r": "2 nodes, Sentinel, not waiting"}
def entries_per_read(name):
    path = f"{out}/{name}.redis-commands"
    if not os.path.exists(path):
        return ""
    text = open(path).read()
    calls = {c: int(n) for c, n in re.findall(r"cmdstat_(xadd|xread|eval):calls=(\d+)", text)}
    # The lines of the measured phase (each delivered to every client) over every call,
    # warm-up, logins and heartbeats included: the batch a node sends, and applies at once.
    # Each call of the append script publishes its batch once; a build that reads the stream
    # calls EVAL only to start a log.
    report = json.loads(next(line for line in open(f"{out}/{name}.txt") if line.startswith("{")))
    lines = report["phases"][0]["deliveries"] / report["clients"]
    if calls.get("eval", 0) > calls.get("xread", 0):
        # Since the log's unit is a call, Redis appends one stream entry per call.
        return (f", {lines / calls['eval']:.1f} lines per append call (and push),"
                f" {calls.get('xadd', 0) / calls['eval']:.1f} stream entries per call")
    if not calls.get("xread"):
        return ""
    # Each node reads every entry (two nodes).
    return f", {2 * calls.get('xadd', 0) / calls['xread']:.1f} entries per XREAD"
def phase(name):
    for line in open(f"{out}/{name}.txt"):
        if line.startswith("{"):
            return json.loads(line)["phases"][0]
for label in ("rate", "closed"):
    print(f"{label}:")
    for nodes in configurations:
        rows = [phase(f"{label}-{nodes}-node-{r}") for r in range(1, rounds + 1)]
        name = names[nodes]
        for r, p in enumerate(rows, 1):
            each = p.get("server_cpu_seconds_each", [])
            per = ", ".join(f"{c * 1e6 / max(p['deliveries'], 1):.3f}" for c in each)
            user = p.get("server_user_cpu_us_per_delivery")
            print(f"  {name} round {r}: {p['deliveries_per_second']:.0f} deliveries/s, "
                  f"p99 {p['p99_ms']:.2f} ms, CPU/delivery {p['server_cpu_us_per_delivery']:.3f} µs"
                  + (f" (user {user:.3f}, kernel {p['server_cpu_us_per_delivery'] - user:.3f})" if user is not None else "")
                  + (f" (nodes, Redis: {per})" if each else "")
                  + f", lost {p['lost']}, out of order {p['out_of_order']}"
                  + entries_per_read(f"{label}-{nodes}-node-{r}"))
    # Each round's cluster against the node alone of the same round: the machine drifts
    # between rounds more than the two differ.
    alone = [phase(f"{label}-1-node-{r}")["server_cpu_us_per_delivery"] for r in range(1, rounds + 1)]
    for nodes in configurations[1:]:
        ratios = [phase(f"{label}-{nodes}-node-{r}")["server_cpu_us_per_delivery"] / a
                  for r, a in enumerate(alone, 1)]
        print(f"  CPU/delivery, {names[nodes]} / 1 node, round by round: " + ", ".join(f"{x:.2f}" for x in ratios)
              + f" (median {statistics.median(ratios):.2f})")
        # Where the difference is: the processes' own code (user) or the kernel's work for
        # them (sockets, wake-ups), each against the node alone's CPU of the same round. The
        # kernel splits a process's time by sampling at its clock ticks: at 100 lines/s, a
        # few hundred ticks a run, the split moves by tens of percent between runs; in the
        # closed loop it holds.
        if all("server_user_cpu_us_per_delivery" in phase(f"{label}-{n}-node-{r}")
               for n in ("1", nodes) for r in range(1, rounds + 1)):
            parts = []
            for r in range(1, rounds + 1):
                one, two = phase(f"{label}-1-node-{r}"), phase(f"{label}-{nodes}-node-{r}")
                total = one["server_cpu_us_per_delivery"]
                user = (two["server_user_cpu_us_per_delivery"] - one["server_user_cpu_us_per_delivery"]) / total
                kernel = ((two["server_cpu_us_per_delivery"] - two["server_user_cpu_us_per_delivery"])
                          - (one["server_cpu_us_per_delivery"] - one["server_user_cpu_us_per_delivery"])) / total
                parts.append(f"{user:+.2f} user {kernel:+.2f} kernel")
            print(f"  of which, round by round: " + ", ".join(parts))
    # Sentinel's cost against the lone Redis of the same round.
    lone = [phase(f"{label}-2-node-{r}") for r in range(1, rounds + 1)]
    for nodes in [c for c in configurations if c in ("2s", "2r")]:
        rows = [phase(f"{label}-{nodes}-node-{r}") for r in range(1, rounds + 1)]
        cpu = [p["server_cpu_us_per_delivery"] / l["server_cpu_us_per_delivery"] for p, l in zip(rows, lone)]
        p99 = [p["p99_ms"] / max(l["p99_ms"], 1e-9) for p, l in zip(rows, lone)]
        print(f"  {names[nodes]} / 2 nodes on a lone Redis, round by round: CPU/delivery "
              + ", ".join(f"{x:.2f}" for x in cpu) + f" (median {statistics.median(cpu):.2f}), p99 "
              + ", ".join(f"{x:.2f}" for x in p99) + f" (median {statistics.median(p99):.2f})")
PY
echo "results in $out"
