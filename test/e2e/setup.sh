#!/usr/bin/env bash
# Installs and starts what the end-to-end tests (test/e2e) need:
#   - Debian packages: docker.io (dockerd), skopeo, podman (used rootful, with
#     vfs storage; only push and pull, no containers), busybox-static (a base
#     image rootfs)
#   - versitygw (an S3 gateway over a directory) in /var/cache/wharf-test/bin,
#     for the S3 driver tests
#   - Go tools: the OCI conformance suite, crane, oras and regctl, in
#     $(go env GOPATH)/bin; the reference registry (distribution) in the
#     benchmarks' cache directory
#   - a running Docker engine that trusts registry.local:5000 over plain HTTP,
#     with registry.local resolving to 127.0.0.1 (see shared/docker-engine.md)
# Idempotent: a second run only checks, and takes a second or two.
# Runs as root (CI and developer machines are root).
set -euo pipefail

CONFORMANCE_MOD=github.com/opencontainers/distribution-spec/conformance
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111
CRANE_MOD=github.com/google/go-containerregistry/cmd/crane
CRANE_VERSION=v0.22.1
ORAS_MOD=oras.land/oras/cmd/oras
ORAS_VERSION=v1.3.6
REGCTL_MOD=github.com/regclient/regclient/cmd/regctl
REGCTL_VERSION=v0.9.2
VERSITYGW_MOD=github.com/versity/versitygw/cmd/versitygw
VERSITYGW_VERSION=v1.8.0
SERVICE_BIN=/var/cache/wharf-test/bin # internal/servicetest.DefaultBinDir
DOCKER_LOG=/var/log/wharf-e2e-dockerd.log
DOCKER_READY_TIMEOUT=60 # seconds

export PATH="/usr/local/go/bin:$PATH"
GOBIN_DIR="$(go env GOBIN)"
GOBIN_DIR="${GOBIN_DIR:-$(go env GOPATH)/bin}"
export PATH="$GOBIN_DIR:$PATH"

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v podman >/dev/null || missing+=(podman)
command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core)
# strace: the client store's durability test traces its own child process.
command -v strace >/dev/null || missing+=(strace)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
  missing+=(busybox-static)
# PostgreSQL 15: the metadata suites run on a throwaway cluster of it
# (internal/servicetest); the packaged `main` cluster is never started.
dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q 'install ok installed' ||
  missing+=(postgresql-15)
# PgBouncer: the PostgreSQL suites also run through it in transaction mode
# (servicetest.StartPgBouncer); the packaged service is never started.
command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Go tools ----------------------------------------------------------------
# `go version -m` tells which module version a binary was built from.
has_go_tool_in() { # dir binary module version
  [[ -x "$1/$2" ]] && go version -m "$1/$2" 2>/dev/null |
    grep -qE "^[[:space:]]+mod[[:space:]]+$3[[:space:]]+$4([[:space:]]|$)"
}
has_go_tool() { has_go_tool_in "$GOBIN_DIR" "$@"; }
pids=()
if ! has_go_tool conformance "$CONFORMANCE_MOD" "$CONFORMANCE_VERSION"; then
  log "go install $CONFORMANCE_MOD@$CONFORMANCE_VERSION"
  go install "$CONFORMANCE_MOD@$CONFORMANCE_VERSION" & pids+=($!)
fi
if ! has_go_tool crane github.com/google/go-containerregistry "$CRANE_VERSION"; then
  log "go install $CRANE_MOD@$CRANE_VERSION"
  go install "$CRANE_MOD@$CRANE_VERSION" & pids+=($!)
fi
if ! has_go_tool oras oras.land/oras "$ORAS_VERSION"; then
  log "go install $ORAS_MOD@$ORAS_VERSION"
  go install "$ORAS_MOD@$ORAS_VERSION" & pids+=($!)
fi
if ! has_go_tool regctl github.com/regclient/regclient "$REGCTL_VERSION"; then
  log "go install $REGCTL_MOD@$REGCTL_VERSION"
  go install "$REGCTL_MOD@$REGCTL_VERSION" & pids+=($!)
fi
# versitygw, a real S3 gateway over a directory, for the S3 driver's tests
# (internal/servicetest finds it here). Cached outside the repository: it
# takes minutes to build.
if ! has_go_tool_in "$SERVICE_BIN" versitygw github.com/versity/versitygw "$VERSITYGW_VERSION"; then
  log "go install $VERSITYGW_MOD@$VERSITYGW_VERSION into $SERVICE_BIN (a few minutes the first time)"
  mkdir -p "$SERVICE_BIN"
  GOBIN="$SERVICE_BIN" go install "$VERSITYGW_MOD@$VERSITYGW_VERSION" & pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid" || die "go install failed"; done
has_go_tool_in "$SERVICE_BIN" versitygw github.com/versity/versitygw "$VERSITYGW_VERSION" || die "versitygw not in $SERVICE_BIN"
has_go_tool conformance "$CONFORMANCE_MOD" "$CONFORMANCE_VERSION" || die "conformance not in $GOBIN_DIR"
has_go_tool crane github.com/google/go-containerregistry "$CRANE_VERSION" || die "crane not in $GOBIN_DIR"
has_go_tool oras oras.land/oras "$ORAS_VERSION" || die "oras not in $GOBIN_DIR"
has_go_tool regctl github.com/regclient/regclient "$REGCTL_VERSION" || die "regctl not in $GOBIN_DIR"

# The reference registry (CNCF distribution), whose data the import test
# moves into wharf: installed where the benchmarks keep it, by the same code
# (bench/reference), so one install serves both.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REFERENCE_BIN="$(cd "$REPO_ROOT" && go run ./bench/reference/install)" ||
  die "installing the reference registry failed"
log "reference registry: $REFERENCE_BIN"

# --- name and engine configuration ------------------------------------------
if ! grep -qE '^[[:space:]]*127\.0\.0\.1[[:space:]].*\bregistry\.local\b' /etc/hosts; then
  log "adding registry.local to /etc/hosts"
  echo '127.0.0.1 registry.local' >>/etc/hosts
fi

daemon_json='{"storage-driver":"vfs","iptables":false,"ip6tables":false,"bridge":"none",
 "insecure-registries":["registry.local:5000"]}'
mkdir -p /etc/docker
if [[ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$daemon_json" ]]; then
  log "writing /etc/docker/daemon.json"
  printf '%s\n' "$daemon_json" >/etc/docker/daemon.json
  # A running engine re-reads insecure-registries on SIGHUP.
  if [[ -s /var/run/docker.pid ]] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    kill -HUP "$(cat /var/run/docker.pid)"
  fi
fi

# --- Docker engine -------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: $DOCKER_LOG)"
  # Detached from our stdio so that nothing waits on its output.
  # dockerd outlives this script: it must not inherit descriptors beyond
  # the standard three, or a caller's `flock /tmp/e2e.lock` stays held by
  # the daemon for as long as it runs.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec setsid dockerd </dev/null >>"$DOCKER_LOG" 2>&1
  ) &
  deadline=$((SECONDS + DOCKER_READY_TIMEOUT))
  until docker info >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      tail -n 40 "$DOCKER_LOG" >&2 || true
      die "dockerd not ready after ${DOCKER_READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
fi
registries="$(docker info --format '{{range $name, $_ := .RegistryConfig.IndexConfigs}}{{$name}} {{end}}')"
[[ " $registries " == *" registry.local:5000 "* ]] ||
  die "dockerd does not list registry.local:5000 as insecure (it has: $registries); restart it"

# --- port 5000 ---------------------------------------------------------------
# The docker test runs wharf on 127.0.0.1:5000 (registry.local:5000).
if (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
  ss -ltnp 'sport = :5000' 2>/dev/null >&2 || true
  die "something already listens on 127.0.0.1:5000; the docker e2e test needs that port"
fi

log "ready: docker $(docker version --format '{{.Server.Version}}'), $(podman --version), crane $(crane version), oras $ORAS_VERSION, regctl $REGCTL_VERSION, conformance in $GOBIN_DIR"
