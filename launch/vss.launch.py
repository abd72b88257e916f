"""Start the kaiserslautern_vss graph on site hardware.

    ros2 launch kaiserslautern_vss vss.launch.py [config:=/etc/vss/site_rathausvorplatz.yaml]
        [cameras:=cam01,cam02] [record_root:=/var/lib/vss/recordings] [log_level:=info]
        [use_sim_time:=false] [camera_drivers:=true]

``ros2 launch kaiserslautern_vss vss.launch.py --show-args`` describes every argument.
Processes, their nodes and parameters files come from kaiserslautern_vss.bringup
(derive_graph, plan_processes), the same code vss-bringup runs where launch_ros is not
installed, so both start the same processes with the same command-line arguments. A process
that crashed is started again, one that ended cleanly is not, and one that refused its
configuration stops the launch (bringup/respawn.py). An invalid config stops the launch
before any node starts. Stop with
SIGINT (Ctrl-C): launch forwards it to every node. However launch itself ends (SIGTERM,
SIGKILL), its nodes end with it (ros/supervisor.py).
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, SetEnvironmentVariable
from launch.actions import TimerAction
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from kaiserslautern_vss.bringup.arguments import START_ARGUMENTS, derive_graph, parse_flag
from kaiserslautern_vss.bringup.graph import GraphConfigError
from kaiserslautern_vss.bringup.process_hygiene import ParameterFiles
from kaiserslautern_vss.bringup.processes import ProcessPlan, plan_processes
from kaiserslautern_vss.bringup.respawn import RESPAWN_DELAY_S, AfterExit, after_exit
from kaiserslautern_vss.paths import PACKAGE_NAME
from kaiserslautern_vss.ros.dds_environment import node_environment
from kaiserslautern_vss.ros.supervisor import SUPERVISOR_PID


def _supervised(plan: ProcessPlan) -> list:
    """The process, and what happens when it ends (bringup/respawn.py): after a crash it is
    started again; a configuration error stops the launch; nothing while launch shuts down."""
    node = Node(package=PACKAGE_NAME, executable=plan.executable, arguments=list(plan.arguments),
                output='screen')

    def on_exit(event, context):
        action = after_exit(event.returncode)
        if context.is_shutdown or action is AfterExit.LEAVE:
            return None
        if action is AfterExit.STOP_GRAPH:  # launch stops every process and exits 1
            raise RuntimeError(f'{plan.name} refused its configuration (see its [FATAL] line); '
                               'stopping the graph')
        return [TimerAction(period=RESPAWN_DELAY_S, actions=_supervised(plan))]

    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit, handle_once=True))]


def _processes(context):
    value = {argument.name: LaunchConfiguration(argument.name).perform(context) for argument in START_ARGUMENTS}
    try:
        specs = derive_graph(value['config'], cameras=value['cameras'], record_root=value['record_root'],
                             use_sim_time=parse_flag('use_sim_time', value['use_sim_time']),
                             camera_drivers=parse_flag('camera_drivers', value['camera_drivers']))
    except (GraphConfigError, ValueError) as error:
        raise RuntimeError(f'vss.launch.py: invalid site configuration: {error}') from None
    params = ParameterFiles()  # in this process's memory: gone with it, however it ends
    actions = [RegisterEventHandler(OnShutdown(on_shutdown=lambda *_: params.close()))]
    for plan in plan_processes(specs, params, value['log_level']):
        actions += _supervised(plan)
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        # Every node: DDS on 127.0.0.1 and shared memory sized for frames (dds_environment.py).
        *[SetEnvironmentVariable(name, value) for name, value in node_environment().items()],
        # Every node dies with this launch process, however it ends (ros/supervisor.py).
        SetEnvironmentVariable(SUPERVISOR_PID, str(os.getpid())),
        *[DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
          for a in START_ARGUMENTS],
        OpaqueFunction(function=_processes),
    ])
