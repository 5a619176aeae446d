#!/usr/bin/env bash
# The test files, for node --test.
#   unit  the tests that need no real service, no build and no downloaded tool: the edit-run loop
#   all   every test: test/acceptance drives the built CLI against real Redis and Alertmanager,
#         test/helm needs helm, jq and promtool, test/stores needs Redis, test/escalation/alertmanager
#         a real Alertmanager
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in
  unit) find test -name '*.test.ts' -not -path 'test/acceptance/*' -not -path 'test/helm/*' -not -path 'test/stores/*' -not -path 'test/escalation/alertmanager.test.ts' | sort ;;
  all) find test -name '*.test.ts' | sort ;;
  *)
    echo "usage: $0 unit|all" >&2
    exit 2
    ;;
esac
