#!/usr/bin/env bash
# System packages crowdguard needs, installed with apt when missing.
#   run:  Java (the local Kafka broker) and Maven (fetches Kafka's jars from Maven Central)
#   test: the above, plus Prometheus with promtool (metric and alert tests) and Go + helm
set -euo pipefail
mode=${1:-test}
need=()
command -v java >/dev/null || need+=(default-jre-headless)
command -v mvn >/dev/null || need+=(maven)
if [ "$mode" = test ]; then
  command -v promtool >/dev/null || need+=(prometheus)
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || need+=(golang-go)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # the Debian package may start a system Prometheus; the tests run their own
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl stop prometheus || true
  fi
  pkill -x prometheus 2>/dev/null || true
fi
if [ "$mode" = test ]; then
  # helm for the chart tests: built once with `go install` from the Go module proxy, cached
  bash "$(dirname "$0")/ensure_helm.sh" >/dev/null
fi
