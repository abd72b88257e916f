"""Start the kaiserslautern_vss graph on site hardware.

    ros2 launch kaiserslautern_vss vss.launch.py [config:=/etc/vss/site_rathausvorplatz.yaml]
        [cameras:=cam01,cam02] [record_root:=/var/lib/vss/recordings] [log_level:=info]
        [use_sim_time:=false] [camera_drivers:=true] [group_cameras:=false]

``ros2 launch kaiserslautern_vss vss.launch.py --show-args`` describes every argument.
Nodes and parameters come from kaiserslautern_vss.bringup.arguments.derive_graph, the
same code vss-bringup uses where launch_ros is not installed, so both start the same
graph. Camera drivers respawn after a crash; an invalid config stops the launch before
any node starts, with the config error as the message.
"""

import os
import tempfile
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from kaiserslautern_vss.bringup.arguments import START_ARGUMENTS, derive_graph, node_action_arguments, parse_flag
from kaiserslautern_vss.bringup.graph import GraphConfigError, process_groups
from kaiserslautern_vss.paths import fastdds_profile


def _nodes(context):
    value = {argument.name: LaunchConfiguration(argument.name).perform(context) for argument in START_ARGUMENTS}
    try:
        specs = derive_graph(value['config'], cameras=value['cameras'], record_root=value['record_root'],
                             use_sim_time=parse_flag('use_sim_time', value['use_sim_time']),
                             camera_drivers=parse_flag('camera_drivers', value['camera_drivers']))
    except (GraphConfigError, ValueError) as error:
        raise RuntimeError(f'vss.launch.py: invalid site configuration: {error}') from None
    groups = process_groups(specs, parse_flag('group_cameras', value['group_cameras']))
    params_dir = Path(tempfile.mkdtemp(prefix='vss-launch-'))
    return [Node(output='screen', **node_action_arguments(group, value['log_level'], params_dir))
            for group in groups]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        # Camera frames need a large shared-memory segment; UDP stays on loopback.
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', str(fastdds_profile()))),
        *[DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
          for a in START_ARGUMENTS],
        OpaqueFunction(function=_nodes),
    ])
