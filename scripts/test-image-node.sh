#!/usr/bin/env bash
# The unit tests again on the Node.js the Docker image runs (the version of its FROM node: line),
# taken from the npm registry's `node` package: the shipped runtime is a tested runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -nE 's/^FROM node:([0-9]+\.[0-9]+\.[0-9]+).*/\1/p' Dockerfile | head -n 1)
if [ -z "$version" ]; then
  echo "test-image-node: the Dockerfile pins no node:X.Y.Z image" >&2
  exit 1
fi
echo "unit tests on node $version, the image's" >&2
# spec reporter: its summary does not read as the whole suite's TAP totals, which come last.
exec npm exec --yes --package="node@$version" -- \
  node --import tsx --test --test-concurrency=2 --test-reporter=spec $(bash scripts/test-files.sh unit)
