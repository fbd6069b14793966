#!/usr/bin/env bash
# The test command (README, "Quick start"): installs what the tests need, then runs them.
# Extra arguments go to `swift test` instead (e.g. `scripts/test.sh --filter ChatTests`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run as real components (HAProxy in front of the server, the
# openssl command-line client, systemd-analyze for the service unit, tmux as the terminal
# chat-client runs in, redis-server for the Redis client, headless Chromium and its
# WebDriver for the web client), installed when missing: as root directly, else through sudo.
missing=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/bin/openssl ] || missing+=(openssl)
[ -x /usr/bin/systemd-analyze ] || missing+=(systemd)
[ -x /usr/bin/tmux ] || missing+=(tmux)
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/bin/redis-sentinel ] || missing+=(redis-sentinel)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages for the tests: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then apt=(); elif command -v sudo >/dev/null 2>&1; then apt=(sudo); else
        echo "scripts/test.sh: needs ${missing[*]} (apt-get install ${missing[*]}), and is not root" >&2
        exit 1
    fi
    "${apt[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${apt[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The SMTP tests run a real SMTP server (aiosmtpd) as a child process, with the python3
# first on PATH, so install for that interpreter (a venv's, where one is active).
python3 -m pip install --quiet --disable-pip-version-check -r Tests/requirements.txt

# Screenshots the browser tests take (the web client's login and chat view) go here.
export TEST_OUTPUT_DIR="${TEST_OUTPUT_DIR:-$PWD/.build/test-output}"

if [ $# -gt 0 ]; then
    swift test "$@"
else
    # The adversarial suite checks that attacks do not grow the process's memory, which it
    # reads for the whole test process: it runs in a process of its own, after the rest
    # (which runs in parallel and would make that figure move).
    swift test --skip ChatAdversarialTests
    swift test --skip-build --filter ChatAdversarialTests
fi
