# shellcheck shell=bash
# Helpers shared by the project's scripts: logging, CI detection, TCP port checks.
# Source it; it defines functions only.

# `true` when running under CI (CI=true, as the CI runner sets it).
is_ci() {
    [[ ${CI:-} == true ]]
}

# A section header, with the time since the script started.
section() {
    printf '\n==> [%s] %s\n' "$(fmt_duration "$SECONDS")" "$*"
}

info() {
    printf '    %s\n' "$*"
}

warn() {
    printf 'WARNING: %s\n' "$*" >&2
}

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# fmt_duration SECONDS -> 1h02m03s / 2m03s / 3s
fmt_duration() {
    local s=$1
    if ((s >= 3600)); then
        printf '%dh%02dm%02ds' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
    elif ((s >= 60)); then
        printf '%dm%02ds' $((s / 60)) $((s % 60))
    else
        printf '%ds' "$s"
    fi
}

# port_open HOST PORT: whether something accepts TCP connections there (loopback only).
port_open() {
    # shellcheck disable=SC2016 # $0 and $1 are the inner shell's arguments.
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# wait_port HOST PORT SECONDS: waits until the port answers; fails after SECONDS.
wait_port() {
    local host=$1 port=$2 limit=$3 start=$SECONDS
    until port_open "$host" "$port"; do
        if ((SECONDS - start >= limit)); then
            return 1
        fi
        sleep 1
    done
}

# as_root CMD...: runs CMD as root (directly, or with non-interactive sudo).
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        warn "not root and no sudo: cannot run $*"
        return 1
    fi
}
