"""vss-demo: run the whole graph on a video (default: the sample vtest.avi) or a camera URL
and report the incident bags it recorded.

    vss-demo [SOURCE] [--fast] [--record-root recordings] [--config config/vss.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kaiserslautern_vss.bringup.graph import VISION_PIPELINE, GraphConfigError
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.paths import sample_video
from kaiserslautern_vss.tools.bag_info import summarize_bag
from kaiserslautern_vss.tools.bringup import add_graph_arguments, graph_from_arguments

DEMO_CAMERA = '/vss/cam01/camera_driver'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-demo', description=__doc__.split('\n')[0])
    parser.add_argument('source', nargs='?', default='',
                        help='video file or camera URL (default: the sample vtest.avi)')
    parser.add_argument('--fast', action='store_true', help='play a video file as fast as possible')
    parser.add_argument('--max-seconds', type=float, default=0.0,
                        help='stop after this long (needed for endless sources such as cameras)')
    add_graph_arguments(parser)
    parser.set_defaults(record_root='recordings')
    args = parser.parse_args(argv)

    source = args.source or str(sample_video() or '')
    if not source:
        print('vss-demo: no source given and no sample video found. Put vtest.avi in ../shared/data, '
              'install Debian\'s opencv-doc (scripts/setup_env.sh does), or pass a video/URL.',
              file=sys.stderr)
        return 2
    args.set = [f'{DEMO_CAMERA}.url={source}', f'{DEMO_CAMERA}.realtime={str(not args.fast).lower()}',
                f'{DEMO_CAMERA}.loop=false', *args.set]
    try:
        specs = graph_from_arguments(args)
    except GraphConfigError as error:
        print(f'vss-demo: {error}', file=sys.stderr)
        return 2
    record_root = Path(next(s.parameters['record_root'] for s in specs if s.executable == 'event_manager'))
    post_event_s = next(s.parameters['post_event_s'] for s in specs if s.executable == 'event_manager')
    existing = set(record_root.glob('*')) if record_root.is_dir() else set()

    print(f'vss-demo: playing {source} through {len(specs)} nodes; incident bags go to {record_root}',
          flush=True)
    started = time.monotonic()
    with GraphProcesses(specs, log_level=args.log_level) as graph:
        drivers = graph.of_executable(VISION_PIPELINE)  # ends when its camera files have ended
        while any(node.returncode is None for node in drivers):
            if graph.failed_at_startup():
                print('vss-demo: a node refused its configuration (see [FATAL] above)', file=sys.stderr)
                return 2
            if args.max_seconds and time.monotonic() - started > args.max_seconds:
                break
            time.sleep(0.2)
        # Let the post-event window of an incident still open at the end be written.
        time.sleep(post_event_s + 1.0)
    elapsed = time.monotonic() - started

    bags = sorted(p for p in set(record_root.glob('*')) - existing if (p / 'metadata.yaml').is_file())
    print(f'\nvss-demo: finished in {elapsed:.1f} s; {len(bags)} incident bag(s) recorded:')
    for bag in bags:
        print(summarize_bag(bag).describe())
    if not bags:
        print('vss-demo: no incident was triggered (check the rules file and the zone polygons)',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
