"""The graph config is the single source of truth for launch_ros and vss-bringup."""

from pathlib import Path

import pytest
import yaml

from kaiserslautern_vss.bringup.arguments import derive_graph
from kaiserslautern_vss.bringup.graph import GraphConfigError, load_graph, parameters_yaml
from kaiserslautern_vss.parameters.catalogue import NODE_PARAMETERS
from kaiserslautern_vss.tools.bringup import parse_overrides

CONFIG_DIR = Path(__file__).resolve().parents[1] / 'config'
DEMO = CONFIG_DIR / 'vss.yaml'


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / 'graph.yaml'
    path.write_text(yaml.safe_dump(document))
    (tmp_path / 'rules.yaml').write_text('rules: []\n')  # the event manager's rules_file must exist
    return path


def _minimal(**camera_params) -> dict:
    return {
        '/vss/cam01/camera_driver': {'ros__parameters': {'camera_id': 'cam01', 'url': 'a.mp4', **camera_params}},
        '/vss/cam02/camera_driver': {'ros__parameters': {'camera_id': 'cam02', 'url': 'b.mp4'}},
        '/vss/detector': {'ros__parameters': {}},
        '/vss/event_manager': {'ros__parameters': {'rules_file': 'rules.yaml'}},
    }


def test_demo_config_derives_four_nodes_with_every_declared_parameter():
    nodes = {node.fqn: node for node in load_graph(DEMO)}
    assert set(nodes) == {'/vss/cam01/camera_driver', '/vss/detector', '/vss/privacy', '/vss/event_manager'}
    for node in nodes.values():
        assert set(node.parameters) == {spec.name for spec in NODE_PARAMETERS[node.executable]}
    assert nodes['/vss/detector'].parameters['cameras'] == ['cam01']
    assert Path(nodes['/vss/event_manager'].parameters['rules_file']) == CONFIG_DIR / 'rules_demo.yaml'


def test_camera_subset_and_derived_camera_lists(tmp_path):
    nodes = load_graph(_write(tmp_path, _minimal()), cameras=['cam02'])
    assert [n.fqn for n in nodes] == ['/vss/cam02/camera_driver', '/vss/detector', '/vss/event_manager']
    assert nodes[1].parameters['cameras'] == ['cam02']
    assert nodes[2].parameters['rules_file'] == str(tmp_path / 'rules.yaml')


def test_relative_file_parameters_are_relative_to_the_config_file(tmp_path):
    """However the graph is started (ros2 launch from an install, vss-bringup from anywhere),
    a relative key, CA or secrets path means the same file: the one beside the config."""
    document = _minimal(tls_ca_file='keys/cameras-ca.pem')
    document['/vss/event_manager']['ros__parameters'].update(audit_key_file='keys/audit.key')
    nodes = {n.fqn: n for n in load_graph(_write(tmp_path, document))}
    assert nodes['/vss/cam01/camera_driver'].parameters['tls_ca_file'] == str(tmp_path / 'keys' / 'cameras-ca.pem')
    assert nodes['/vss/event_manager'].parameters['audit_key_file'] == str(tmp_path / 'keys' / 'audit.key')


def test_overrides_apply_on_top_of_the_file(tmp_path):
    overrides = parse_overrides(['/vss/cam01/camera_driver.realtime=false', '/vss/detector.score_threshold=0.5'])
    nodes = {n.fqn: n for n in derive_graph(_write(tmp_path, _minimal()), record_root=str(tmp_path / 'bags'),
                                            overrides=overrides)}
    assert nodes['/vss/cam01/camera_driver'].parameters['realtime'] is False
    assert nodes['/vss/detector'].parameters['score_threshold'] == 0.5
    assert nodes['/vss/event_manager'].parameters['record_root'] == str(tmp_path / 'bags')


@pytest.mark.parametrize('mutate, message', [
    (lambda d: d['/vss/detector']['ros__parameters'].update(score_treshold=0.4), "unknown parameter.*score_treshold"),
    (lambda d: d['/vss/detector']['ros__parameters'].update(score_threshold=1.5), 'above 1.0'),
    (lambda d: d['/vss/detector']['ros__parameters'].update(intra_op_threads='two'), 'must be integer'),
    (lambda d: d['/vss/cam01/camera_driver']['ros__parameters'].update(url=''), "'url' is required"),
    (lambda d: d.update({'/vss/tracker': {'ros__parameters': {}}}), "unknown executable 'tracker'"),
    (lambda d: d.update({'detector': {'ros__parameters': {}}}), 'not a fully qualified node name'),
    (lambda d: d['/vss/detector'].update(parameters={}), 'exactly one ros__parameters'),
    (lambda d: d['/vss/detector']['ros__parameters'].update(cameras=['cam01']), 'cam02 are driven but not served'),
])
def test_invalid_configs_fail_before_anything_starts(tmp_path, mutate, message):
    document = _minimal()
    mutate(document)
    with pytest.raises(GraphConfigError, match=message):
        load_graph(_write(tmp_path, document))


def test_unknown_camera_subset_is_rejected(tmp_path):
    with pytest.raises(GraphConfigError, match='no camera driver configured for cam09'):
        load_graph(_write(tmp_path, _minimal()), cameras=['cam09'])


def test_params_file_is_standard_ros_parameters_yaml():
    node = next(n for n in load_graph(DEMO) if n.executable == 'detector')
    document = yaml.safe_load(parameters_yaml(node))
    assert document == {'/vss/detector': {'ros__parameters': node.parameters}}
