# Source me: the no-ROS-distro environment (venv with ROS 2 Kilted wheels + local vision_msgs).
#   source scripts/vss_env.sh
_vss_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "${VSS_VENV:-$_vss_root/.venv}/bin/activate"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# DDS stays on this host (strict network separation): the profile binds UDP to 127.0.0.1 and
# sizes shared memory for camera frames. Nodes set both themselves (ros/dds_environment.py,
# where the profile makes the range SYSTEM_DEFAULT); these are for ros2 tools in this shell.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_vss_root/config/fastdds_localhost.xml}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
unset _vss_root
