#!/usr/bin/env bash
# Installs what the real-client scenarios need (idempotent): a Python venv with the v3
# `weaviate-client` (PyPI) and the npm packages of tests/clients/ts (weaviate-ts-client 2.x).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-clients
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import weaviate' 2>/dev/null; then
  echo "==> python venv $VENV with weaviate-client<4"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/python/requirements.txt
fi

if [ ! -d tests/clients/ts/node_modules/weaviate-ts-client ]; then
  echo "==> npm ci in tests/clients/ts"
  (cd tests/clients/ts && npm ci --no-audit --no-fund --loglevel=error)
fi
