"""The one rosbags typestore of the package: ROS 2 types plus vision_msgs, for reading and
writing CDR without rclpy (bags, raw subscriptions, the console)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

import kaiserslautern_vss


class TypestoreError(RuntimeError):
    """The vision_msgs message definitions cannot be found."""


def vision_msgs_definition_dir() -> Path:
    """The vision_msgs ``msg`` folder: the source checkout's, else an installed share/."""
    candidates = [Path(kaiserslautern_vss.__file__).resolve().parents[1]
                  / 'interfaces' / 'vision_msgs' / 'msg']
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    candidates += [Path(prefix) / 'share' / 'vision_msgs' / 'msg'
                   for prefix in (*prefixes, sys.prefix)]
    for candidate in candidates:
        if any(candidate.glob('*.msg')):
            return candidate
    raise TypestoreError('vision_msgs .msg definitions not found; looked in: '
                         + ', '.join(str(c) for c in candidates))


@functools.cache
def vss_typestore() -> Typestore:
    """The ROS 2 typestore closest to the deployed distribution, plus vision_msgs."""
    store = Stores.ROS2_KILTED if hasattr(Stores, 'ROS2_KILTED') else Stores.ROS2_JAZZY
    typestore = get_typestore(store)
    types = {}
    for msg_file in sorted(vision_msgs_definition_dir().glob('*.msg')):
        types.update(get_types_from_msg(msg_file.read_text(encoding='utf-8'),
                                        f'vision_msgs/msg/{msg_file.stem}'))
    typestore.register(types)
    return typestore
