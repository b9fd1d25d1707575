# Sourced by scripts/run.sh and scripts/test.sh: makes .venv with Python >= 3.11 and the project.
# Usage: bootstrap_venv [extras]   e.g. bootstrap_venv test
set -euo pipefail

apt_install() {
    # Debian packages, only when we are root and something is missing.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "slawatch: missing Debian packages: ${missing[*]} (run as root or install them)" >&2
        return 1
    fi
    echo "slawatch: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d keeps the packaged services (prometheus, kamailio, ...) from starting on install.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created_policy=1; fi
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
}

find_python() {
    for py in python3.13 python3.12 python3.11 python3; do
        if command -v "$py" >/dev/null && "$py" -c "import sys; sys.exit(sys.version_info < (3, 11))" 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    return 1
}

bootstrap_venv() {
    local extras="${1:-}"
    local py
    if ! py=$(find_python); then
        apt_install python3 python3-venv
        py=$(find_python) || { echo "slawatch: needs Python >= 3.11" >&2; exit 1; }
    fi
    if [ ! -x .venv/bin/python ]; then
        "$py" -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; "$py" -m venv .venv; }
    fi
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    local stamp=".venv/.slawatch-installed-${extras:-base}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null
        .venv/bin/python -m pip install -q -e "$spec"
        touch "$stamp"
    fi
}
