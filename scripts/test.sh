#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the real peers (Kamailio, baresip, SIPp, sipsak,
# Prometheus, Alertmanager, blackbox exporter) and the Python test extras, then ruff, mypy, pytest;
# without arguments, then the date-sensitive tests at fixed fake instants (scripts/test-dates.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
bootstrap_venv test
# npm only when none is on PATH: Debian's npm conflicts with a nodejs that bundles its own
# (NodeSource's, as on some build machines), and apt would then install nothing at all.
NPM=()
command -v npm >/dev/null || NPM=(npm)
if apt_install kamailio kamailio-tls-modules sipsak baresip sip-tester prometheus \
        prometheus-alertmanager prometheus-blackbox-exporter systemd chromium chromium-driver \
        "${NPM[@]}" postgresql openssl; then
    export SLAWATCH_REQUIRE_PEERS=1
else
    echo "slawatch: some peer programs are missing; tests that need them will be skipped" >&2
fi
# axe-core for the web view's accessibility checks (tests/test_web_browser.py), from npm into a
# cache folder; the tests inject it into Chromium (no network at test time beyond loopback).
AXE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/slawatch-npm"
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ] && command -v npm >/dev/null; then
    npm install --prefix "$AXE_DIR" --no-save --no-audit --no-fund axe-core@4 >/dev/null
fi
export SLAWATCH_AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"
echo "== ruff" && .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy --strict" && .venv/bin/mypy
echo "== pytest" && .venv/bin/pytest "$@"
# A whole-suite run also runs the date-sensitive tests at fixed fake instants (docs/testing.md).
if [ $# -eq 0 ]; then
    if apt_install faketime; then
        echo "== date-sensitive tests under faketime" && exec scripts/test-dates.sh
    elif [ "${SLAWATCH_REQUIRE_PEERS:-}" = 1 ]; then
        exit 1
    else
        echo "slawatch: faketime missing: the date-sensitive runs are skipped" >&2
    fi
fi
