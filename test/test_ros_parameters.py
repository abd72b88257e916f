"""List parameters of a running node, read over DDS by another node: an unconfigured one is an
empty string array (``ros2 param get`` shows it), a configured one arrives as written, and
both stay read-only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import rclpy
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters

from conftest import shared_file
from kaiserslautern_vss.bringup.processes import ros_environment

ZONES = ['0,0 200,0 200,150 0,150']
#: cam01 has zones; cam02's are an empty list in the file (as vss-bringup writes every value);
#: the detector's class_thresholds are not in the file at all
SECTIONS = {
    '/vss/cam01/camera_driver': {'camera_id': 'cam01', 'url': 'testpattern://', 'privacy_zones': ZONES,
                                 'privacy_zones_width': 768, 'privacy_zones_height': 576},
    '/vss/cam02/camera_driver': {'camera_id': 'cam02', 'url': 'testpattern://', 'privacy_zones': []},
    '/vss/detector': {'cameras': ['cam01', 'cam02']},
    '/vss/privacy': {'cameras': ['cam01', 'cam02'], 'face_detection': False},
}


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('parameters')
    sections = {**SECTIONS, '/vss/detector': {**SECTIONS['/vss/detector'],
                                             'model_path': str(shared_file('models/yolox_nano.onnx'))}}
    params = tmp_path / 'params.yaml'
    params.write_text(json.dumps({fqn: {'ros__parameters': values} for fqn, values in sections.items()}))
    log = open(tmp_path / 'pipeline.log', 'w')
    process = subprocess.Popen([sys.executable, '-m', 'kaiserslautern_vss.nodes.vision_pipeline', *sections,
                                '--ros-args', '--params-file', str(params)],
                               env=ros_environment(dict(os.environ)), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, tmp_path / 'pipeline.log'
    finally:
        process.send_signal(subprocess.signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def client_node(rclpy_context):
    node = rclpy.create_node('parameter_reader', context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()


def _call(client_node, service_type, service: str, request, pipeline):
    node, executor = client_node
    client = node.create_client(service_type, service)
    try:
        assert client.wait_for_service(timeout_sec=60.0), \
            f'{service} never appeared:\n{pipeline[1].read_text()[-3000:]}'
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        assert future.done(), f'{service} did not answer'
        return future.result()
    finally:
        node.destroy_client(client)


def _get(client_node, pipeline, node_fqn: str, *names: str) -> list[ParameterValue]:
    return _call(client_node, GetParameters, f'{node_fqn}/get_parameters', GetParameters.Request(names=list(names)),
                 pipeline).values


def test_unconfigured_lists_are_empty_string_arrays(client_node, pipeline):
    zones, camera_id = _get(client_node, pipeline, '/vss/cam02/camera_driver', 'privacy_zones', 'camera_id')
    assert (zones.type, list(zones.string_array_value)) == (ParameterType.PARAMETER_STRING_ARRAY, [])
    assert camera_id.string_value == 'cam02'
    (thresholds,) = _get(client_node, pipeline, '/vss/detector', 'class_thresholds')
    assert (thresholds.type, list(thresholds.string_array_value)) == (ParameterType.PARAMETER_STRING_ARRAY, [])


def test_configured_lists_arrive_and_lists_stay_read_only(client_node, pipeline):
    (zones,) = _get(client_node, pipeline, '/vss/cam01/camera_driver', 'privacy_zones')
    assert (zones.type, list(zones.string_array_value)) == (ParameterType.PARAMETER_STRING_ARRAY, ZONES)
    for camera in ('cam01', 'cam02'):
        change = ParameterMsg(name='privacy_zones', value=ParameterValue(
            type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=[]))
        (result,) = _call(client_node, SetParameters, f'/vss/{camera}/camera_driver/set_parameters',
                          SetParameters.Request(parameters=[change]), pipeline).results
        assert not result.successful and 'read-only' in result.reason
