#!/usr/bin/env bash
# Builds the release binary with the Swift runtime linked in, and checks that it needs no
# Swift toolchain: no libswift* among its shared libraries, and it starts, listens and
# greets a client with an empty environment and no library path (docs/OPERATIONS.md).
# Usage: scripts/release.sh [output-path]   (default: .build/chat-server-release)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/chat-server-release}

swift build -c release --static-swift-stdlib --product chat-server
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)/chat-server"
cp "$bin" "$out"
strip "$out" 2>/dev/null || true

echo "shared libraries of $out:"
ldd "$out" | sed 's/^/  /'
if ldd "$out" | grep -q 'libswift\|libFoundation\|libdispatch\|libBlocksRuntime'; then
    echo "release.sh: $out still needs the Swift runtime" >&2
    exit 1
fi

# Start it as a stranger to the toolchain would: no environment, no library path, a free
# port, the development mail transport; it must greet a client and stop on SIGTERM.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
env -i PATH=/usr/bin:/bin "$out" --bind-address 127.0.0.1 --port "$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
greeting=""
for _ in $(seq 50); do
    greeting=$(python3 - "$port" <<'PY' 2>/dev/null || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
data = b""
while data.count(b"\n") < 3:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().splitlines()[0])
PY
)
    [ -n "$greeting" ] && break
    sleep 0.1
done
kill -TERM $pid
wait $pid || true
if [ "$greeting" != "*** Welcome to TCP Chat Server! ***" ]; then
    echo "release.sh: the release binary did not greet a client; its log:" >&2
    cat "$log" >&2
    exit 1
fi
echo "release.sh: $out ($(du -h "$out" | cut -f1)) starts without a Swift toolchain and greets: $greeting"
