#!/usr/bin/env bash
# The main job: install what is missing, run the whole graph on the sample video (or the
# video/camera URL given) and leave incident bags under recordings/.
#   scripts/demo.sh [VIDEO_OR_URL] [vss-demo options, e.g. --fast]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/vss_env.sh"
cd "$ROOT"
exec python -m kaiserslautern_vss.tools.demo "$@"
