"""Shared by the graph-level tests: a vtest.avi clip to play, and an in-process node that
records what a running graph publishes for one camera, keyed by header stamp."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from conftest import shared_file
from kaiserslautern_vss.ros import qos

Stamp = tuple[int, int]


def vtest_clip(path: Path, frames: range) -> Path:
    """``frames`` of ../shared/data/vtest.avi as a 10 fps MJPG video at ``path``."""
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    capture.set(cv2.CAP_PROP_POS_FRAMES, frames.start)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (768, 576))
    for _ in frames:
        ok, frame = capture.read()
        assert ok, f'vtest.avi has no frame {frames.start + _}'
        writer.write(frame)
    writer.release()
    return path


def stamp_of(msg) -> Stamp:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


class GraphObserver:
    """Raw frames, detections, anonymised (and, if asked, annotated) frames, events and the
    privacy node's diagnostics for ``camera``. Watching image_annotated makes the privacy
    node draw it, so it is opt-in."""

    def __init__(self, context, name: str, camera: str = 'cam01', annotated: bool = False) -> None:
        self.node = rclpy.create_node(name, context=context)
        self.camera = camera
        self.raw: dict[Stamp, Image] = {}
        self.detections: dict[Stamp, Detection2DArray] = {}
        self.anonymized: dict[Stamp, Image] = {}
        self.annotated: dict[Stamp, Image] = {}
        self.arrived_s: dict[Stamp, float] = {}  # monotonic arrival of each anonymised frame
        self.events: list[dict] = []
        self.diagnostics: dict[str, str] = {}
        topic = f'/vss/{camera}'
        self.node.create_subscription(Image, f'{topic}/image_raw', self._store(self.raw), qos.SENSOR)
        self.node.create_subscription(Detection2DArray, f'{topic}/detections', self._store(self.detections),
                                      qos.RELIABLE)
        self.node.create_subscription(Image, f'{topic}/image_anonymized', self._on_anonymized, qos.SENSOR)
        if annotated:
            self.node.create_subscription(Image, f'{topic}/image_annotated', self._store(self.annotated),
                                          qos.SENSOR)
        self.node.create_subscription(String, '/vss/events', lambda m: self.events.append(json.loads(m.data)),
                                      qos.LATCHED)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    @staticmethod
    def _store(target: dict):
        return lambda msg: target.__setitem__(stamp_of(msg), msg)

    def _on_anonymized(self, msg: Image) -> None:
        self.anonymized[stamp_of(msg)] = msg
        self.arrived_s[stamp_of(msg)] = time.monotonic()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f'privacy: {self.camera}':
                self.diagnostics = {value.key: value.value for value in status.values}

    def spin(self) -> None:
        self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
