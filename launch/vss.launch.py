"""Start the kaiserslautern_vss graph on site hardware.

    ros2 launch kaiserslautern_vss vss.launch.py [config:=/etc/vss/site.yaml]
        [cameras:=cam01,cam02] [record_root:=/var/lib/vss/recordings] [log_level:=info]
        [use_sim_time:=false]

Nodes and parameters come from kaiserslautern_vss.bringup.graph, the same code that
vss-bringup uses where launch_ros is not installed, so both start the same graph.
"""

import os
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from kaiserslautern_vss.bringup.graph import load_graph
from kaiserslautern_vss.paths import fastdds_profile, share_dir

DEFAULT_CONFIG = str(share_dir() / 'config' / 'vss.yaml')
RESPAWNED = {'camera_driver'}  # cameras misbehave; the rest should not crash and is not masked


def _nodes(context):
    config = LaunchConfiguration('config').perform(context)
    cameras = LaunchConfiguration('cameras').perform(context)
    record_root = LaunchConfiguration('record_root').perform(context)
    log_level = LaunchConfiguration('log_level').perform(context)
    use_sim_time = LaunchConfiguration('use_sim_time').perform(context).lower() == 'true'
    specs = load_graph(Path(config), cameras=cameras.split(',') if cameras else None)
    actions = []
    for spec in specs:
        parameters = dict(spec.parameters, use_sim_time=use_sim_time)
        if spec.executable == 'event_manager' and record_root:
            parameters['record_root'] = record_root
        actions.append(Node(
            package='kaiserslautern_vss', executable=spec.executable, name=spec.name,
            namespace=spec.namespace, parameters=[parameters], output='screen',
            arguments=['--ros-args', '--log-level', log_level],
            respawn=spec.executable in RESPAWNED, respawn_delay=2.0))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        # Camera frames need a large shared-memory segment; UDP stays on loopback.
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', str(fastdds_profile()))),
        DeclareLaunchArgument('config', default_value=DEFAULT_CONFIG, description='Graph config YAML'),
        DeclareLaunchArgument('cameras', default_value='', description='Comma-separated camera subset'),
        DeclareLaunchArgument('record_root', default_value='', description='Override incident bag root'),
        DeclareLaunchArgument('log_level', default_value='info', description='ROS log level'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='Use /clock (replay)'),
        OpaqueFunction(function=_nodes),
    ])
