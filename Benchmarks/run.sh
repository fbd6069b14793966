#!/usr/bin/env bash
# Runs one chat-bench measurement against a fresh release chat-server on loopback.
#   Benchmarks/run.sh <chat-bench arguments...>
# e.g. Benchmarks/run.sh fanout --clients 500 --senders 5 --rate 100 --duration 20
#      Benchmarks/run.sh fanout --tls --clients 500 --senders 5 --rate 100 --duration 20
#      Benchmarks/run.sh fanout --websocket --clients 500 --senders 5 --rate 100 --duration 20
# Builds both in release mode first. Everything it starts, it stops.
# BENCH_PORT (18888) and BENCH_MAIL_ROOT (/dev/shm) change where it runs; SERVER_BIN runs
# another chat-server build instead of this one (e.g. the commit before a change, to take
# turns with it).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product chat-server >/dev/null
swift build -c release --product chat-bench >/dev/null
# The mail folder is on tmpfs when there is one: on ext4, creating the mail files (which
# the bench deletes once read) costs the server as much CPU as the rest of a login.
# BENCH_MAIL_ROOT chooses another place.
mail_root=${BENCH_MAIL_ROOT:-/dev/shm}
[ -d "$mail_root" ] || mail_root=/tmp
mail=$(mktemp -d "$mail_root/chat-bench-mail.XXXXXX")
port=${BENCH_PORT:-18888}
# With --tls among the arguments the server gets a TLS listener (a self-signed certificate
# for 127.0.0.1, made here with openssl) and the clients connect to it.
listener_env=()
for arg in "$@"; do
    if [ "$arg" = --tls ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
            -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$mail.key" -out "$mail.crt" 2>/dev/null
        listener_env=(TLS_PORT="$port" TLS_CERT_FILE="$mail.crt" TLS_KEY_FILE="$mail.key")
        port_plain=$((port + 1))
    fi
done
# With --websocket the clients connect to the web listener (WEB_PORT) instead.
for arg in "$@"; do
    if [ "$arg" = --websocket ]; then
        listener_env=(WEB_PORT="$port")
        port_plain=$((port + 1))
    fi
done
env $(grep -v '^#' Benchmarks/bench-server.env | xargs) MAIL_DIR="$mail" TCP_PORT="${port_plain:-$port}" \
    "${listener_env[@]}" "${SERVER_BIN:-.build/release/chat-server}" >"$mail.server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$mail" "$mail.server.log" "$mail.key" "$mail.crt"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
ulimit -n "$(ulimit -Hn)"
.build/release/chat-bench "$@" --port "$port" --mail-dir "$mail" --server-pid "$server"
