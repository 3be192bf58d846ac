#!/usr/bin/env bash
# The one install path: README, Makefile, CI and the Docker image all run this.
# Creates (or reuses) a virtual environment and installs Spyglass with the pins in
# constraints.txt, so torch resolves to 2.13.0 and never to a newer CUDA build.
#   VENV=path   where the environment goes (default .venv)
#   EXTRAS=...  optional extras, e.g. "test" (default none)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
target="."
[ -n "${EXTRAS:-}" ] && target=".[${EXTRAS}]"
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e "$target"
echo "installed spyglass into $VENV"
