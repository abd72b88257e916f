"""Replay a bag into the graph: re-run detection, masking and rules on recorded footage.

    ros2 launch kaiserslautern_vss replay.launch.py bag:=/var/lib/vss/recordings/20261126T153012Z_cam01_...
        [config:=...] [rate:=1.0] [loop:=false] [record_root:=/tmp/replayed]

Starts the graph of vss.launch.py without camera drivers, on /clock, and vss-replay --clock
publishing the bag's images to /vss/<cam>/image_raw. Incident bags hold anonymised images
only: replayed footage is already anonymised. Use a separate record_root so replayed
incidents are not mixed with the site's recordings.
"""

import sys

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from kaiserslautern_vss.bringup.arguments import START_ARGUMENTS, parse_flag
from kaiserslautern_vss.paths import share_dir

GRAPH_ARGUMENTS = [a for a in START_ARGUMENTS if a.name not in ('use_sim_time', 'camera_drivers')]


def _replay(context):
    command = [sys.executable, '-m', 'kaiserslautern_vss.tools.replay',
               LaunchConfiguration('bag').perform(context), '--clock',
               '--rate', LaunchConfiguration('rate').perform(context)]
    if parse_flag('loop', LaunchConfiguration('loop').perform(context)):
        command.append('--loop')
    return [ExecuteProcess(cmd=command, output='screen')]


def generate_launch_description() -> LaunchDescription:
    graph_arguments = {a.name: LaunchConfiguration(a.name) for a in GRAPH_ARGUMENTS}
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='rosbag2 directory to replay (e.g. an incident bag)'),
        DeclareLaunchArgument('rate', default_value='1.0', description='playback speed factor'),
        DeclareLaunchArgument('loop', default_value='false', description='true: replay again and again'),
        *[DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
          for a in GRAPH_ARGUMENTS],
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(share_dir() / 'launch' / 'vss.launch.py')),
            launch_arguments={**graph_arguments, 'use_sim_time': 'true', 'camera_drivers': 'false'}.items()),
        OpaqueFunction(function=_replay),
    ])
