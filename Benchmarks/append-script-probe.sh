#!/usr/bin/env bash
# What Redis spends in the append script (PublishedAppend.swift), part by part: the script as
# the nodes sent it until a log entry became a call's batch (one XADD per append), and variants of it that each take one part away or do it another way,
# taking turns round by round on one redis-server (appendonly yes, as cluster.sh runs it)
# with two subscribers standing for two nodes. For each: Redis's CPU per call (user + system,
# from INFO cpu, so with its socket reads and the pushes' writes) and the time INFO
# commandstats gives the call itself. `redis-benchmark` drives it: 4 connections, no pipelining.
# (BENCHMARKS.md, "Two nodes over one, once more": "Redis's script, part by part")
#
#   Benchmarks/append-script-probe.sh [ROUNDS (3)] [CALLS (100000)] [ENTRIES (10)] [BYTES (150)]
#
# The variants (each EVALSHA unless named EVAL):
#   eval       that script as the nodes sent it, with EVAL (the script's text in every call)
#   evalsha    the same, loaded once and called by its SHA1
#   packed     the message's entries packed by the caller, sent once more as one argument, the
#              script adding the ids in front (cmsgpack.pack(previous, ids) .. ARGV[2])
#   keyed      as packed, and the id before the batch kept in a key (GET, SET) instead of
#              read with XREVRANGE
#   tiny       the script, publishing one byte instead of the message (what pushing its bytes
#              to two subscribers costs)
#   quiet      the script without the PUBLISH
#   batch      not a stream entry per log entry but one per call: the packed entries in one
#              XADD, published with its id in front (what the nodes send since, with EVAL)
# Needs redis-server and redis-benchmark (Redis 7). All traffic is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} calls=${2:-100000} entries=${3:-10} bytes=${4:-150}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
redis-server --port "$port" --bind 127.0.0.1 --appendonly yes --save "" --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
for _ in 1 2; do
    redis-cli -p "$port" subscribe chan >/dev/null &
    pids+=($!)
done

# The script as the nodes send it, from the source.
script=$(python3 -c '
import re, sys
text = open("Sources/ChatCluster/PublishedAppend.swift").read()
body = re.search(r"static let script = \"\"\"\n(.*?)\n\s*\"\"\"", text, re.S).group(1)
print("\n".join(line[8:] for line in body.split("\n")))')
tail_of() { # PUBLISH-LINE [FIRST-ENTRY-ARGUMENT]: the script without its XREVRANGE line, its PUBLISH replaced
    printf '%s\n' "$script" | sed -n '/^local ids/,$p' | sed "s/^local i = 2/local i = ${2:-2}/" |
        sed "s|^  redis.call('PUBLISH'.*|$1|"
}
packed="local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
$(tail_of "  redis.call('PUBLISH', ARGV[1], cmsgpack.pack(last[1] and last[1][1] or '0-0', ids) .. ARGV[2])" 3)"
keyed="local previous = redis.call('GET', KEYS[2])
if not previous then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  previous = last[1] and last[1][1] or '0-0'
end
$(tail_of "  redis.call('SET', KEYS[2], ids[#ids]); redis.call('PUBLISH', ARGV[1], cmsgpack.pack(previous, ids) .. ARGV[2])" 3)"
tiny="local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
$(tail_of "  redis.call('PUBLISH', ARGV[1], 'x')")"
batch="local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = redis.call('XADD', KEYS[1], '*', 'b', ARGV[2])
redis.call('PUBLISH', ARGV[1], cmsgpack.pack(last[1] and last[1][1] or '0-0', id) .. ARGV[2])
return {id}"
quiet="local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
$(tail_of "")"

value=$(head -c "$bytes" /dev/zero | tr '\0' x)
arguments=()
for _ in $(seq "$entries"); do arguments+=(2 c "$value"); done
# What `packed` and `keyed` send as the packed entries: as many bytes as the message's.
message=$(head -c $((entries * (bytes + 8))) /dev/zero | tr '\0' y)

cpu() { redis-cli -p "$port" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f", s }'; }
measure() { # label ids-answered command...
    local label=$1 answered=$2
    shift 2
    # Once first, to see that it appends every entry: a script that fails is not measured.
    local reply
    reply=$(redis-cli -p "$port" "$@" 2>&1)
    if [ "$(grep -c -- '^[0-9]*-[0-9]*$' <<<"$reply")" != "$answered" ]; then
        echo "  $label: not measured, the script answered: $reply" >&2
        exit 1
    fi
    redis-cli -p "$port" config resetstat >/dev/null
    redis-cli -p "$port" del log last >/dev/null
    local before after usec
    before=$(cpu)
    redis-benchmark -p "$port" -n "$calls" -c 4 -q "$@" >/dev/null 2>&1
    after=$(cpu)
    usec=$(redis-cli -p "$port" info commandstats | tr -d '\r' | grep -E '^cmdstat_eval(sha)?:' | sed 's/.*usec_per_call=\([0-9.]*\).*/\1/')
    python3 -c "print(f'  $label: Redis CPU {($after - $before) * 1e6 / $calls:.1f} µs per call, the call itself {$usec} µs')"
}
sha() { redis-cli -p "$port" script load "$1"; }
echo "$entries entries of $bytes bytes per call, $calls calls per variant"
for round in $(seq "$rounds"); do
    echo "round $round:"
    measure eval "$entries" EVAL "$script" 1 log chan "${arguments[@]}"
    measure evalsha "$entries" EVALSHA "$(sha "$script")" 1 log chan "${arguments[@]}"
    measure packed "$entries" EVALSHA "$(sha "$packed")" 1 log chan "$message" "${arguments[@]}"
    measure keyed "$entries" EVALSHA "$(sha "$keyed")" 2 log last chan "$message" "${arguments[@]}"
    measure tiny "$entries" EVALSHA "$(sha "$tiny")" 1 log chan "${arguments[@]}"
    measure quiet "$entries" EVALSHA "$(sha "$quiet")" 1 log chan "${arguments[@]}"
    measure batch 1 EVALSHA "$(sha "$batch")" 1 log chan "$message"
done
