#!/usr/bin/env bash
# The test suite: install what is missing, then pytest (unit + real-DDS integration tests).
#   scripts/test.sh [pytest options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/vss_env.sh"
# Each run gets its own DDS domain so parallel runs on one host never see each other.
export ROS_DOMAIN_ID="${VSS_TEST_DOMAIN_ID:-$(( (RANDOM % 100) + 100 ))}"
cd "$ROOT"
exec python -m pytest "$@"
