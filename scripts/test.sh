#!/usr/bin/env bash
# The test command (README, "Quick start"): installs what the tests need, then runs them.
# Extra arguments go to `swift test` (e.g. `scripts/test.sh --filter ChatTests`).
set -euo pipefail
cd "$(dirname "$0")/.."

# The SMTP tests run a real SMTP server (aiosmtpd) as a child process, with the python3
# first on PATH, so install for that interpreter (a venv's, where one is active).
python3 -m pip install --quiet --disable-pip-version-check -r Tests/requirements.txt

swift test "$@"
