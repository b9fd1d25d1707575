#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real peers (Kamailio, baresip, SIPp, sipsak,
# Prometheus, Alertmanager, blackbox exporter) and the Python test extras, then ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
bootstrap_venv test
if apt_install kamailio sipsak baresip sip-tester prometheus prometheus-alertmanager \
        prometheus-blackbox-exporter systemd openssl; then
    export SLAWATCH_REQUIRE_PEERS=1
else
    echo "slawatch: some peer programs are missing; tests that need them will be skipped" >&2
fi
echo "== ruff" && .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy --strict" && .venv/bin/mypy
echo "== pytest" && exec .venv/bin/pytest "$@"
