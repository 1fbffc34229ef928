#!/usr/bin/env bash
# Installs what the real-client scenarios need (idempotent): Python venvs with the v3 and the v4
# `weaviate-client` (PyPI; the v3 API is gone from 4.x, so they cannot share one), and the npm
# packages of tests/clients/ts (weaviate-ts-client 2.x, GraphQL) and tests/clients/ts-v3
# (weaviate-client 3.x, gRPC).
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

VENV4=.venv-clients-v4
if [ ! -x "$VENV4/bin/python" ] || ! "$VENV4/bin/python" -c 'import weaviate, weaviate.classes' 2>/dev/null; then
  echo "==> python venv $VENV4 with weaviate-client 4.x"
  python3 -m venv "$VENV4"
  "$VENV4/bin/pip" install --quiet --disable-pip-version-check -r tests/clients/python/requirements-v4.txt
fi

if [ ! -d tests/clients/ts-v3/node_modules/weaviate-client ]; then
  echo "==> npm ci in tests/clients/ts-v3"
  (cd tests/clients/ts-v3 && npm ci --no-audit --no-fund --loglevel=error)
fi
