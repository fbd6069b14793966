#!/usr/bin/env bash
# Connections that come and go: a release chat-server's RSS after each of ROUNDS (5) rounds
# of CLIENTS (3000) logins that then disconnect. Once the first round has grown the
# allocator's pools, the server should hold what it held: the growth per connection over
# the later rounds is what each connection ever made leaves behind.
#
#   Benchmarks/churn.sh            SERVER_BIN=/path/to/chat-server runs another build
#
# Builds release binaries first. Everything it starts, it stops; all traffic is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product chat-server >/dev/null
swift build -c release --product chat-bench >/dev/null
server_bin=${SERVER_BIN:-.build/release/chat-server}
clients=${CLIENTS:-3000} rounds=${ROUNDS:-5}
mail_root=/dev/shm
[ -d "$mail_root" ] || mail_root=/tmp
work=$(mktemp -d "$mail_root/chat-churn.XXXXXX")
mkdir -p "$work/mail"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env $(grep -v '^#' Benchmarks/bench-server.env | xargs) MAIL_DIR="$work/mail" TCP_PORT="$port" LOG_LEVEL=error \
    "$server_bin" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/{print $2}' "/proc/$server/status"; }
sizes=("$(rss)")
echo "RSS before the first login: ${sizes[0]} kB"
for round in $(seq "$rounds"); do
    .build/release/chat-bench login --port "$port" --mail-dir "$work/mail" --clients "$clients" \
        --run-id "churn$round-$$" >/dev/null
    # The departures are handled; what a round freed stays in the allocator's arenas and
    # serves the next round's connections, so only what they leave behind adds up.
    sleep 3
    sizes+=("$(rss)")
    echo "after round $round ($clients logins, all gone): ${sizes[-1]} kB"
done
if [ "$rounds" -ge 2 ]; then
    grown=$((sizes[-1] - sizes[1]))
    echo "grown from round 1 to round $rounds: $grown kB, $((grown * 1024 / (clients * (rounds - 1)))) bytes per connection"
fi
