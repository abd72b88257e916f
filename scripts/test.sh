#!/usr/bin/env bash
# The test suite: install what is missing, then pytest (unit + real-DDS integration tests).
#   scripts/test.sh [pytest options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/vss_env.sh"
# test/conftest.py reserves a DDS domain no other local run uses.
unset ROS_DOMAIN_ID
cd "$ROOT"
exec python -m pytest "$@"
