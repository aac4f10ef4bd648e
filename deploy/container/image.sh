#!/usr/bin/env bash
# Builds the vigil container image from the repo's Dockerfile and runs it, offline, with Debian's podman:
# no container registry and no Docker daemon are needed.
#   deploy/container/image.sh            # install, build, smoke-test (what CI runs); idempotent
#   deploy/container/image.sh install    # podman, runc, mmdebstrap (apt-get) and the offline base image
#   deploy/container/image.sh build      # install, then build the image; prints its name
#   deploy/container/image.sh env        # print the `export CONTAINERS_CONF=...` line for running podman by hand
#
# How it works offline:
# - The base: `mmdebstrap --variant=minbase` builds a Debian bookworm root filesystem from Debian's packages
#   (with ca-certificates and libssl3 already in it), cached as a tarball in $VIGIL_TOOLS/container;
#   `podman import` makes it an image tagged docker.io/library/debian:bookworm-slim, so the Dockerfile's
#   unchanged `FROM debian:bookworm-slim` resolves locally.
# - The binary: `FROM rust:...` cannot be pulled here, so the script builds the Dockerfile's `local` stage
#   (runtime + a binary from the build context) with the binary cargo already built on this host: the
#   stripped target/debug/vigil, or target/release/vigil with VIGIL_IMAGE_PROFILE=release (built with
#   `cargo build -p vigil-cli [--release]` if missing). Users elsewhere build the default `release` stage.
# - podman runs with a containers.conf this script owns ($VIGIL_TOOLS/container/containers.conf, through
#   CONTAINERS_CONF; /etc is not touched): runc (crun fails on this host's hybrid cgroups) and rlimits
#   the host allows.
# Smoke test: `vigil --version`, `vigil validate` on pipelines/demo.toml, the demo pipeline in the container
# (read-only root filesystem, no capabilities, no network, uid 65532) writing its evidence to a mounted host
# folder, then `vigil verify` of that folder from the host. Prints the image size.
# Environment: VIGIL_TOOLS (default ~/.cache/vigil-tools); VIGIL_IMAGE (default localhost/vigil:dev);
# VIGIL_IMAGE_PROFILE (debug, default, or release).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOOLS="${VIGIL_TOOLS:-$HOME/.cache/vigil-tools}"
DIR="$TOOLS/container"
SUITE="bookworm"
BASE_IMAGE="docker.io/library/debian:bookworm-slim"
IMAGE="${VIGIL_IMAGE:-localhost/vigil:dev}"
PROFILE="${VIGIL_IMAGE_PROFILE:-debug}"
export CONTAINERS_CONF="$DIR/containers.conf"

work=""
die() { echo "image.sh: $*" >&2; exit 1; }
say() { echo "image.sh: $*" >&2; }
# Runs a step and says how long it took.
timed() {
  local name="$1" start ms
  shift
  start=$(date +%s%3N)
  "$@"
  ms=$(($(date +%s%3N) - start))
  say "$(printf '%-26s %4d.%d s' "$name" $((ms / 1000)) $((ms % 1000 / 100)))"
}

install_packages() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "needs ${missing[*]} (Debian packages); install them with your package manager"
  say "installing ${missing[*]} from Debian's packages"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed (above)"
  fi
}

write_conf() {
  mkdir -p "$DIR"
  local want
  want='# Written by deploy/container/image.sh (CONTAINERS_CONF points here; /etc/containers is not used).
[containers]
# Higher limits than the host grants make runc fail to start the container.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
# crun fails on hybrid cgroup hosts like this one; runc works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
  [ -f "$CONTAINERS_CONF" ] && [ "$(cat "$CONTAINERS_CONF")" = "$want" ] || printf '%s\n' "$want" >"$CONTAINERS_CONF"
}

# Like debian:bookworm-slim: minbase with merged /usr (without the usrmerge package, which pulls in perl),
# no docs (copyrights kept), man pages or translations; plus ca-certificates and libssl3, which the
# Dockerfile would otherwise fetch with apt-get. The tarball's name changes with these options.
BASE_OPTS=(--variant=minbase "--include=ca-certificates,libssl3"
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  --aptopt='Acquire::Retries "3"')
BASE_ID="$SUITE-$(printf '%s\n' "${BASE_OPTS[@]}" | sha256sum | cut -c1-12)"
BASE_TAR="$DIR/debian-$BASE_ID.tar"

base_image() {
  [ "$(podman image inspect --format '{{index .Labels "dev.vigil.base"}}' "$BASE_IMAGE" 2>/dev/null)" = "$BASE_ID" ] \
    && return
  if [ ! -s "$BASE_TAR" ]; then
    say "building a $SUITE root filesystem with mmdebstrap (once; cached in $BASE_TAR)"
    rm -f "$DIR"/debian-*.tar
    mmdebstrap --format=tar "${BASE_OPTS[@]}" "$SUITE" "$BASE_TAR.part" >"$DIR/mmdebstrap.log" 2>&1 \
      || { tail -30 "$DIR/mmdebstrap.log" >&2; die "mmdebstrap failed (above; log: $DIR/mmdebstrap.log); it needs Debian's package mirror"; }
    mv "$BASE_TAR.part" "$BASE_TAR"
  fi
  podman import --quiet --change 'CMD ["bash"]' --change "LABEL dev.vigil.base=$BASE_ID" "$BASE_TAR" "$BASE_IMAGE" \
    >/dev/null || die "podman import of $BASE_TAR failed (above)"
}

install() {
  timed "packages (apt-get)" install_packages
  write_conf
  timed "base image (mmdebstrap)" base_image
}

binary() {
  local bin="$ROOT/target/$PROFILE/vigil"
  case "$PROFILE" in
    debug) [ -x "$bin" ] || (cd "$ROOT" && cargo build --locked -p vigil-cli) || die "cargo build -p vigil-cli failed" ;;
    release) [ -x "$bin" ] || (cd "$ROOT" && cargo build --release --locked -p vigil-cli) || die "cargo build --release -p vigil-cli failed" ;;
    *) die "VIGIL_IMAGE_PROFILE must be debug or release, not '$PROFILE'" ;;
  esac
  echo "$bin"
}

# The build context: the stripped binary and the rule pack the Dockerfile's runtime stage copies.
context() {
  local bin ctx
  bin="$(binary)"
  ctx="$ROOT/target/vigil-image/$PROFILE"
  mkdir -p "$ctx/pipelines/rules/soc2"
  if [ ! -f "$ctx/vigil" ] || [ "$bin" -nt "$ctx/vigil" ]; then
    strip -o "$ctx/vigil.part" "$bin" && mv "$ctx/vigil.part" "$ctx/vigil"
  fi
  rm -f "$ctx"/pipelines/rules/soc2/*.sql
  cp "$ROOT"/pipelines/rules/soc2/*.sql "$ctx/pipelines/rules/soc2/"
  echo "$ctx"
}

build() {
  local ctx old new version revision
  ctx="$(context)"
  version="$("$ctx/vigil" --version | awk '{print $2}')"
  revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
  old="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  podman build --pull=never --network=none --target local \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -f "$ROOT/Dockerfile" -t "$IMAGE" "$ctx" >"$ctx.build.log" 2>&1 \
    || { tail -40 "$ctx.build.log" >&2; die "podman build failed (above; log: $ctx.build.log)"; }
  new="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
  # The image this tag named before, unless something else still uses it.
  if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
}

# Runs the image the way Kubernetes' securityContext in deploy/kubernetes does: read-only root, no
# capabilities, no privilege gain, the image's non-root user; no network (nothing here needs one).
run() {
  podman run --rm --network=none --read-only --cap-drop=ALL --security-opt=no-new-privileges "$@"
}

smoke() {
  local host_version out user
  host_version="$("$ROOT/target/vigil-image/$PROFILE/vigil" --version)"
  out="$(run "$IMAGE" --version)" || die "vigil --version failed in the container"
  [ "$out" = "$host_version" ] || die "the container says '$out', the binary '$host_version'"
  user="$(podman image inspect --format '{{.Config.User}}' "$IMAGE")"
  [ "$user" = "65532:65532" ] || die "the image's user is '$user', not 65532:65532"

  # The demo pipeline, unchanged: pipelines/ and fixtures/ read-only, out/ a fresh host folder owned by
  # the image's user (demo.toml writes ../out/demo/{evidence,alerts.ndjson,dead_letters.ndjson}).
  work="$(mktemp -d "${TMPDIR:-/tmp}/vigil-image.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/out"
  chown 65532:65532 "$work/out"
  local mounts=(-v "$ROOT/pipelines:/srv/vigil/pipelines:ro" -v "$ROOT/fixtures:/srv/vigil/fixtures:ro"
    -v "$work/out:/srv/vigil/out")
  run "${mounts[@]}" "$IMAGE" validate --config /srv/vigil/pipelines/demo.toml >"$work/validate.log" 2>&1 \
    || { cat "$work/validate.log" >&2; die "vigil validate of pipelines/demo.toml failed in the container"; }
  run "${mounts[@]}" "$IMAGE" run --config /srv/vigil/pipelines/demo.toml --no-progress \
    --summary-json /srv/vigil/out/summary.json >"$work/run.log" 2>&1 \
    || { cat "$work/run.log" >&2; die "the demo pipeline failed in the container"; }
  [ -s "$work/out/demo/alerts.ndjson" ] || die "the demo run in the container wrote no alerts"
  "$ROOT/target/vigil-image/$PROFILE/vigil" verify --evidence "$work/out/demo/evidence" >"$work/verify.log" 2>&1 \
    || { cat "$work/verify.log" >&2; die "vigil verify (host) of the evidence the container wrote failed"; }
  local alerts files owner
  alerts="$(wc -l <"$work/out/demo/alerts.ndjson")"
  files="$(find "$work/out/demo/evidence" -name '*.parquet' | wc -l)"
  owner="$(stat -c %u "$work/out/demo/evidence")"
  say "smoke test passed: --version, validate, demo run ($alerts alerts, $files Parquet files, owned by uid $owner), verify on the host"
}

size() {
  local bytes base
  bytes="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
  base="$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE")"
  say "image $IMAGE ($PROFILE binary): $((bytes / 1000000)) MB (base $((base / 1000000)) MB, vigil binary $(($(stat -c %s "$ROOT/target/vigil-image/$PROFILE/vigil") / 1000000)) MB stripped)"
}

case "${1:-all}" in
  install) install ;;
  build) install; timed "build ($PROFILE binary)" build; echo "$IMAGE" ;;
  env) write_conf; echo "export CONTAINERS_CONF=$CONTAINERS_CONF" ;;
  all)
    install
    timed "build ($PROFILE binary)" build
    timed "smoke test" smoke
    size
    ;;
  *) echo "usage: $0 [all|install|build|env]" >&2; exit 2 ;;
esac
