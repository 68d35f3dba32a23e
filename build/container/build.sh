#!/usr/bin/env bash
# Builds the wharf container image with the local docker engine, offline:
# a static binary from this checkout, the machine's CA bundle and a
# passwd/group naming the non-root user, on top of scratch.
#
#   bash build/container/build.sh [IMAGE]     # default IMAGE: wharf:dev
set -euo pipefail
image="${1:-wharf:dev}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -r "$ca_bundle" ]] || { echo "build.sh: $ca_bundle missing (apt-get install ca-certificates)" >&2; exit 1; }

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"

# -buildvcs=true: `wharf version` in the image names the commit it came from.
(cd "$root" && CGO_ENABLED=0 go build -buildvcs=true -trimpath -ldflags='-s -w' \
  -o "$ctx/rootfs/usr/local/bin/wharf" ./cmd/wharf)
cp "$ca_bundle" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nwharf:x:65532:65532:wharf:/var/lib/wharf:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nwharf:x:65532:\n' >"$ctx/rootfs/etc/group"
cp "$here/Dockerfile" "$ctx/Dockerfile"

docker build --network none -t "$image" "$ctx"
echo "built $image: $(docker run --rm --network none "$image" version)"
