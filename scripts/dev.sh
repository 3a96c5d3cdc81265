#!/usr/bin/env bash
# The project's main command: builds `ticketd` and runs `ticketd dev`, the
# local cluster with demo data. Installs what it needs. Extra arguments go
# to `ticketd dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --release -p node --bin ticketd -- dev --data-dir "${TICKETD_DEV_DATA:-.dev-data}" "$@"
