#!/usr/bin/env bash
# The date-sensitive tests at fixed instants under libfaketime (Debian package faketime), so a
# test that depends on where in the month, year, week or day it runs, or on DST, fails here and
# not on some user's 1 December. scripts/test.sh runs this after the whole suite; docs/testing.md
# says which tests run at which instant and why.
#
# Usage: scripts/test-dates.sh                       every instant of the table below
#        scripts/test-dates.sh "2027-01-01 00:00:20" [ZONE [SET]]   one instant (UTC), host zone
#                                                    ZONE (default UTC), SET quick|full
#
# The clock is an offset from the real one (FAKETIME="+Ns"), computed when each run starts: it
# ticks, and every process the tests start (the daemon, ...) inherits LD_PRELOAD and FAKETIME and
# sees the same instant. Not "@YYYY-MM-DD hh:mm:ss": each child would restart at that instant,
# and libfaketime reads it in the host's zone, ambiguous in the hour the clocks go back.
set -euo pipefail
cd "$(dirname "$0")/.."

LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -r "$LIB" ] || LIB=$(find /usr/lib -name libfaketime.so.1 -print -quit 2>/dev/null || true)
if [ -z "$LIB" ] || [ ! -r "$LIB" ]; then
    echo "slawatch: libfaketime not found: install the Debian package faketime" >&2
    exit 1
fi

# The tests marked "calendar": those that read the wall clock's month, day or hour.
# quick: support deadlines and credits in the daemon, the demo's month, the report CLI, the
# metrics text; about 40 s, run at every instant.
QUICK=(tests/test_daemon_support.py tests/test_demo.py tests/test_report_cli.py
    tests/test_metrics_text.py)
# full: quick plus the daemon's bucket and month tests, about 90 s more, run at the instants
# that cross a month, a year or a DST change.
FULL=("${QUICK[@]}" tests/test_daemon.py)

# instant (UTC) | host zone | set | why
INSTANTS=(
    "2027-01-01 00:00:20|UTC|full|first minute of a month and a year"
    "2026-12-31 23:59:30|Europe/London|full|31 Dec 23:59: the year ends during the run"
    "2027-04-30 23:59:30|Europe/London|quick|last minute of a UTC month (00:59 BST, 1 May)"
    "2027-06-30 23:59:30|UTC|quick|last minute of a 30-day month"
    "2028-02-28 23:59:30|UTC|quick|28 Feb of a leap year, into 29 Feb"
    "2028-02-29 23:59:30|Europe/London|full|29 Feb of a leap year, into March"
    "2027-03-28 00:59:30|Europe/London|full|London clocks go forward at 01:00 UTC"
    "2027-03-28 01:00:30|Europe/London|quick|just after they went forward"
    "2027-10-31 00:59:30|Europe/London|full|London clocks go back at 01:00 UTC"
    "2027-10-31 01:00:30|Europe/London|quick|just after they went back (the repeated hour)"
    "2027-01-15 16:59:30|Europe/London|quick|Friday 16:59 in London: support hours close"
    "2027-07-16 15:59:30|UTC|quick|Friday 16:59 BST: support hours close in summer"
    "2027-01-16 10:00:00|Europe/London|quick|Saturday 10:00 in London: no support hours"
)

run_at() {
    local instant=$1 zone=$2 set=$3
    local target now offset
    target=$(date -u -d "$instant" +%s)
    now=$(date -u +%s)
    offset=$((target - now))
    local -a tests
    if [ "$set" = full ]; then tests=("${FULL[@]}"); else tests=("${QUICK[@]}"); fi
    echo "== pytest at $instant UTC, TZ=$zone ($set)"
    local started=$SECONDS status=0
    # -p no:cacheprovider: the fake clock must not leave its mark on .pytest_cache.
    TZ=$zone LD_PRELOAD="$LIB${LD_PRELOAD:+:$LD_PRELOAD}" FAKETIME="+${offset}s" \
        .venv/bin/pytest -q -p no:cacheprovider -m calendar "${tests[@]}" || status=$?
    echo "   ($((SECONDS - started)) s)"
    return "$status"
}

if [ $# -gt 0 ]; then
    run_at "$1" "${2:-UTC}" "${3:-full}"
    exit
fi
total=$SECONDS
failed=()
for row in "${INSTANTS[@]}"; do
    IFS='|' read -r instant zone set _why <<<"$row"
    run_at "$instant" "$zone" "$set" || failed+=("$instant UTC (TZ=$zone)")
done
if [ ${#failed[@]} -gt 0 ]; then
    printf 'slawatch: date-sensitive tests failed at %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "== date-sensitive tests passed at ${#INSTANTS[@]} instants in $((SECONDS - total)) s"
