#!/usr/bin/env bash
# Build the helm CLI from source with the Go toolchain (once) and print its path.
#
# Only package registries are reachable here (no prebuilt helm downloads), so helm
# is compiled through the Go module proxy into a per-version cache directory:
#   ${CROWDGUARD_CACHE:-$HOME/.cache/crowdguard}/go/bin/helm-<version>/helm
# Later calls find the binary and return at once. The first build takes a few
# minutes on 2 cores.
#
# Usage: scripts/ensure_helm.sh            -> prints /path/to/helm on stdout
#        HELM_VERSION=v3.x.y scripts/ensure_helm.sh
# Everything else (build log, progress) goes to stderr.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CACHE="${CROWDGUARD_CACHE:-$HOME/.cache/crowdguard}"
GOBIN_DIR="$CACHE/go/bin/helm-$HELM_VERSION"
HELM="$GOBIN_DIR/helm"

# Bump when the build flags change, so cached binaries are rebuilt.
BUILD_REV=2
have_helm() {
    [[ -x "$HELM" ]] && [[ "$(cat "$HELM.build-rev" 2>/dev/null)" == "$BUILD_REV" ]] \
        && [[ "$("$HELM" version --short 2>/dev/null)" == "$HELM_VERSION"* ]]
}

if have_helm; then
    echo "$HELM"
    exit 0
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
    if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
    else echo "ensure_helm: no Go toolchain (go not on PATH, no /usr/local/go/bin/go)" >&2; exit 1
    fi
fi

mkdir -p "$GOBIN_DIR"
# Serialise concurrent builds (pytest-xdist workers, parallel CI steps).
exec 9>"$GOBIN_DIR.lock"
flock 9
if have_helm; then
    echo "$HELM"
    exit 0
fi

echo "ensure_helm: building helm $HELM_VERSION with $("$GO" version) (first time only, a few minutes)..." >&2
start=$(date +%s)
# GOPROXY / GOFLAGS are taken as configured in the environment / go env.
# The -X flags are those of helm's own Makefile: the exact version for `helm version`,
# and the default Kubernetes version of `helm template`/`helm lint` derived from the
# client-go it is built with (client-go v0.N.x -> Kubernetes 1.N). Without them a
# source build assumes Kubernetes 1.20 and refuses charts with a newer kubeVersion.
moddir="$("$GO" mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
client_go="$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$moddir/go.mod")"
k8s_minor="$(cut -d. -f2 <<<"${client_go#v}")"
[[ "$k8s_minor" =~ ^[0-9]+$ ]] || { echo "ensure_helm: cannot read client-go version from $moddir/go.mod" >&2; exit 1; }
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
# CGO off: a static binary, no C toolchain needed. -trimpath: reproducible paths.
tmp="$(mktemp -d "$GOBIN_DIR.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 GOBIN="$tmp" "$GO" install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mv -f "$tmp/helm" "$HELM"
echo "$BUILD_REV" > "$HELM.build-rev"
echo "ensure_helm: built $HELM (default Kubernetes 1.$k8s_minor) in $(( $(date +%s) - start ))s" >&2
"$HELM" version --short >&2
echo "$HELM"
