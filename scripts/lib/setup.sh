# shellcheck shell=bash
# Installs what the tests need when it is missing and starts the backends they talk to.
# Source it after common.sh; call ensure_tools, then ensure_services.
#
# Outside CI a tool or backend that can't be had is a warning (the tests that need it will
# fail and say so); under CI=true it fails the run at once: CI never skips a backend.

SETUP_APT_UPDATED=false

# missing_or_fatal MESSAGE: fails under CI, warns otherwise.
missing_or_fatal() {
    if is_ci; then
        die "$* (CI=true: a missing tool or backend fails the run)"
    fi
    warn "$*; tests that need it will fail"
}

# apt_install PACKAGE...: `apt-get update` once per run, then installs the packages.
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        warn "apt-get not found: install $* by hand"
        return 1
    fi
    info "apt-get install $*"
    if [[ $SETUP_APT_UPDATED == false ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq || return 1
        SETUP_APT_UPDATED=true
    fi
    as_root env DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq "$@"
}

# ensure_tools: protoc, nghttp/h2load, etcd/etcdctl, nats-server, rabbitmq-server, Python's
# grpcio, grpcio-tools, grpcio-health-checking and googleapis-common-protos, and the cargo
# subcommands.
ensure_tools() {
    section "tools"
    # command:package pairs; each package is installed only when its command is missing.
    local pairs=(
        protoc:protobuf-compiler
        nghttp:nghttp2-client
        h2load:nghttp2-client
        etcd:etcd-server
        etcdctl:etcd-client
        nats-server:nats-server
        rabbitmq-server:rabbitmq-server
        openssl:openssl
        ip:iproute2
        unshare:util-linux
        nsenter:util-linux
        chromium:chromium
    )
    local pair cmd pkg missing=()
    for pair in "${pairs[@]}"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        # nats-server and rabbitmq-server live in /usr/sbin, not always on a user's PATH.
        if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd ]]; then
            [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
        fi
    done
    if ((${#missing[@]})); then
        apt_install "${missing[@]}" || missing_or_fatal "could not install ${missing[*]}"
    fi
    for pair in "${pairs[@]}"; do
        cmd=${pair%%:*}
        if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd ]]; then
            missing_or_fatal "$cmd is not installed (package ${pair#*:})"
        fi
    done

    command -v python3 >/dev/null 2>&1 || missing_or_fatal "python3 is not installed"
    # grpcio-health-checking: the reference client of the standard health service.
    # googleapis-common-protos: its .proto files are the generator's real-world corpus; h2:
    # raw HTTP/2 frames for the attack tests.
    local modules='import grpc, grpc_tools, grpc_health.v1.health_pb2_grpc, google.api, h2'
    if command -v python3 >/dev/null 2>&1 && ! python3 -c "$modules" 2>/dev/null; then
        local packages=(grpcio grpcio-tools grpcio-health-checking googleapis-common-protos h2)
        info "python3 -m pip install ${packages[*]}"
        timeout 900 python3 -m pip install -q --disable-pip-version-check \
            --root-user-action=ignore "${packages[@]}" ||
            missing_or_fatal "could not pip install ${packages[*]}"
        python3 -c "$modules" 2>/dev/null ||
            missing_or_fatal "Python cannot import grpc, grpc_tools, grpc_health, google.api and h2"
    fi

    command -v cargo >/dev/null 2>&1 || die "cargo is not installed"
    # The fuzz targets (scripts/fuzz): the nightly toolchain and cargo-fuzz.
    if ! cargo +nightly --version >/dev/null 2>&1; then
        info "rustup toolchain install nightly"
        timeout 900 rustup toolchain install nightly --profile minimal ||
            missing_or_fatal "could not install the nightly toolchain (scripts/fuzz needs it)"
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        info "cargo install cargo-fuzz"
        timeout 900 cargo install --locked cargo-fuzz ||
            missing_or_fatal "could not install cargo-fuzz (scripts/fuzz needs it)"
    fi
    cargo fmt --version >/dev/null 2>&1 || die "rustfmt is not installed (rustup component add rustfmt)"
    cargo clippy --version >/dev/null 2>&1 || die "clippy is not installed (rustup component add clippy)"
    cargo nextest --version >/dev/null 2>&1 ||
        info "cargo-nextest not found: tests run with cargo test"
    info "protoc: $(protoc --version 2>/dev/null || echo missing)"
    info "etcd: $(command -v etcd || echo missing)"
    info "python: $(python3 -c 'import grpc; print("grpcio", grpc.__version__)' 2>/dev/null || echo 'grpcio missing')"
}

ensure_nats() {
    if port_open 127.0.0.1 4222; then
        info "NATS: up on 127.0.0.1:4222"
        return 0
    fi
    local bin=/usr/sbin/nats-server
    [[ -x $bin ]] || bin=$(command -v nats-server || true)
    if [[ -z $bin ]]; then
        missing_or_fatal "NATS is not running on 127.0.0.1:4222 and nats-server is not installed"
        return 0
    fi
    info "NATS: starting $bin on 127.0.0.1:4222 with JetStream"
    as_root mkdir -p /var/lib/nats-server || true
    as_root start-stop-daemon --start --oknodo --background --exec "$bin" -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log ||
        true
    if wait_port 127.0.0.1 4222 20; then
        info "NATS: up on 127.0.0.1:4222"
    else
        missing_or_fatal "NATS did not start on 127.0.0.1:4222 (see /var/log/nats-server.log)"
    fi
}

ensure_rabbitmq() {
    if port_open 127.0.0.1 5672; then
        info "RabbitMQ: up on 127.0.0.1:5672"
        return 0
    fi
    local bin=/usr/sbin/rabbitmq-server
    [[ -x $bin ]] || bin=$(command -v rabbitmq-server || true)
    if [[ -z $bin ]]; then
        missing_or_fatal "RabbitMQ is not running on 127.0.0.1:5672 and rabbitmq-server is not installed"
        return 0
    fi
    info "RabbitMQ: starting (rabbitmq-server -detached), waiting up to 60 s for 127.0.0.1:5672"
    # A node that is already booting refuses a second start: then just wait for it.
    as_root "$bin" -detached >/dev/null 2>&1 || true
    if wait_port 127.0.0.1 5672 60; then
        info "RabbitMQ: up on 127.0.0.1:5672"
    else
        missing_or_fatal "RabbitMQ did not start on 127.0.0.1:5672 within 60 s (see /var/log/rabbitmq/)"
    fi
}

# ensure_services: NATS and RabbitMQ. etcd is started by the Rust test helpers on free ports.
ensure_services() {
    section "services"
    ensure_nats
    ensure_rabbitmq
}
