#!/usr/bin/env bash
# Installs slawatch into .venv and starts the daemon on the shipped demo configuration
# (SQLite under ./var, targets on loopback that this command starts itself).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
bootstrap_venv
exec .venv/bin/slawatch demo --config config/demo.yaml "$@"
