"""Start-up time of the site graph: one camera next to all ten, synthetic sources.

    source scripts/vss_env.sh && python benchmarks/bench_bringup.py [--config config/site_rathausvorplatz.yaml]

Starts the site config's graph as vss-bringup does (the vision_pipeline process hosting the
camera drivers, detector and privacy node; every other node its own process) with each
camera replaced by testpattern:// (768x576 at 10 fps, the figure walking across) and the
site's services made local (benchmarks/site_services.py: loopback addresses, keys in a temp
dir, no alert broker), and measures, from the moment the processes are spawned, when the
first and when the last camera's /vss/<cam>/image_anonymized arrives at an observer: the
time until the whole site is watched. Measured for the first camera alone and for all
cameras, in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from kaiserslautern_vss.bringup.isolation import isolate_ros_domain  # noqa: E402

isolate_ros_domain()
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(REPO / 'config' / 'fastdds_localhost.xml'))

import rclpy  # noqa: E402
import yaml  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from kaiserslautern_vss.bringup.arguments import derive_graph  # noqa: E402
from kaiserslautern_vss.bringup.graph import load_graph  # noqa: E402
from kaiserslautern_vss.bringup.processes import GraphProcesses  # noqa: E402
from kaiserslautern_vss.ros import qos  # noqa: E402
from kaiserslautern_vss.ros.topics import camera_topic  # noqa: E402
from site_services import create_keys, local_service_values  # noqa: E402

SYNTHETIC = {'url': 'testpattern://?width=768&height=576&fps=10', 'username': '', 'password_env': '',
             'privacy_zones': [], 'privacy_zones_width': 0, 'privacy_zones_height': 0}
TIMEOUT_S = 120.0


def synthetic_overrides(config: Path, cameras: list[str], tmp: Path) -> dict[str, dict]:
    """Cameras -> test pattern; the site's services local (keys, bags and the alert queue in a
    temp dir, no alert broker); only the rules of ``cameras`` (the event manager refuses rules
    for cameras it does not serve)."""
    specs = load_graph(config)
    tmp.mkdir(parents=True, exist_ok=True)
    create_keys(tmp)
    overrides = {s.fqn: dict(SYNTHETIC) if s.executable == 'camera_driver' else local_service_values(s, tmp)
                 for s in specs}
    event_manager = next(s for s in specs if s.executable == 'event_manager')
    rules = [r for r in yaml.safe_load(Path(event_manager.parameters['rules_file']).read_text())['rules']
             if r['camera'] in cameras]
    (tmp / 'rules.yaml').write_text(yaml.safe_dump({'rules': rules}))
    overrides[event_manager.fqn]['rules_file'] = str(tmp / 'rules.yaml')
    return {fqn: values for fqn, values in overrides.items() if values}


def time_to_images(config: Path, cameras: list[str], tmp: Path) -> tuple[int, float, float]:
    """Processes, and seconds from spawning them to the first and to the last camera's anonymised image."""
    specs = derive_graph(config, cameras=','.join(cameras), record_root=str(tmp / 'bags'),
                         overrides=synthetic_overrides(config, cameras, tmp))
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bringup_bench', context=context)
    first_arrival: dict[str, float] = {}
    for camera in cameras:
        node.create_subscription(Image, camera_topic(camera, 'image_anonymized'),
                                 partial(lambda cam, _msg: first_arrival.setdefault(cam, time.monotonic()), camera),
                                 qos.SENSOR)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    graph = GraphProcesses(specs, log_level='warn')
    started = time.monotonic()
    graph.start()
    try:
        while len(first_arrival) < len(cameras) and time.monotonic() - started < TIMEOUT_S:
            if graph.failed_at_startup():
                raise SystemExit(f'a node refused its configuration: {[n.plan.name for n in graph.failed_at_startup()]}')
            executor.spin_once(timeout_sec=0.05)
    finally:
        graph.stop()
        node.destroy_node()
        context.try_shutdown()
    if len(first_arrival) < len(cameras):
        raise SystemExit(f'no anonymised image within {TIMEOUT_S:.0f} s from {sorted(set(cameras) - set(first_arrival))}')
    arrivals = sorted(t - started for t in first_arrival.values())
    return len(graph.nodes), arrivals[0], arrivals[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', type=Path, default=REPO / 'config' / 'site_rathausvorplatz.yaml')
    args = parser.parse_args()
    cameras = [s.parameters['camera_id'] for s in load_graph(args.config) if s.executable == 'camera_driver']
    rows = []
    with tempfile.TemporaryDirectory(prefix='vss-bench-bringup-') as tmp:
        for subset in ([cameras[0]], cameras):
            processes, first, last = time_to_images(args.config, subset, Path(tmp) / str(len(subset)))
            rows.append((len(subset), processes, first, last))
    print(f'\nstart-up of {args.config.name} on {os.cpu_count()} CPU(s), synthetic 768x576 @ 10 fps cameras')
    print(f'{"cameras":>8} {"processes":>10} {"first image_anonymized s":>25} {"all image_anonymized s":>23} '
          f'{"ratio to 1 camera":>18}')
    for count, processes, first, last in rows:
        print(f'{count:>8} {processes:>10} {first:>25.2f} {last:>23.2f} {last / rows[0][3]:>18.2f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
