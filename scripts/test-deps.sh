#!/usr/bin/env bash
# Installs the real services the test suite runs against (Debian packages), when missing.
# The tests start and stop their own instances on free loopback ports; nothing runs as a daemon.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Redis Sentinel's failover is tested with three real sentinels (test/stores/redis-sentinel.test.ts).
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# The built-in WorkflowTemplates' scripts use jq; their tests run them against a fake kubectl.
command -v jq >/dev/null 2>&1 || missing+=(jq)
# The chart's PrometheusRule is loaded and its alerts evaluated by promtool (test/helm/prometheusrule.test.ts).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The page (GET /) is driven in Debian's headless Chromium by playwright-core, which downloads no browser.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]} > 0)); then
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "test-deps: need ${missing[*]}: run as root or install them: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  echo "test-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
