"""Watching a running vision pipeline from the test process: anonymised frames judged as they
arrive (frame_judge), its diagnostics, a stand-in for vss-replay, and the hostile process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from frame_judge import FrameJudge, Tally
from kaiserslautern_vss.bringup.processes import ros_environment
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.image_conversion import bgr_to_image, image_to_bgr
from kaiserslautern_vss.ros.stamps import time_from_ns

HOSTILE = Path(__file__).resolve().parent / 'hostile_publisher.py'


@dataclass
class Observed:
    """Judged anonymised frames by arrival (monotonic) and the pipeline's latest diagnostics."""

    judge: FrameJudge
    arrivals: list[tuple[float, object]] = field(default_factory=list)
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (arrival, frames masked by policy so far) of every privacy report on cam01, once a second
    masked_series: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_image(self, msg: Image) -> None:
        verdict = self.judge.judge(image_to_bgr(msg))
        with self.lock:
            self.arrivals.append((time.monotonic(), verdict))

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                self.diagnostics[status.name] = {'message': status.message,
                                                 **{v.key: v.value for v in status.values}}
                if status.name == 'privacy: cam01':
                    self.masked_series.append((time.monotonic(), int(self.diagnostics[status.name]['masked'])))

    def tally(self, start: float, end: float) -> Tally:
        tally = Tally()
        with self.lock:
            for arrived, verdict in self.arrivals:
                if start <= arrived <= end:
                    tally.add(verdict)
        return tally

    def masked_between(self, start: float, end: float) -> list[int]:
        """Frames the pipeline masked by policy in each reporting interval within start..end (its
        own count: complete, where this best-effort observer may miss frames)."""
        with self.lock:
            counts = [masked for arrived, masked in self.masked_series if start <= arrived <= end]
        return [later - earlier for earlier, later in zip(counts, counts[1:])]

    def value(self, status: str, key: str) -> int:
        with self.lock:
            return int(self.diagnostics.get(status, {}).get(key, 0))

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)


class SpinningNode:
    """An in-process node on its own context, spinning in its own thread until :meth:`close`;
    subclasses create their subscriptions before calling :meth:`start`."""

    def __init__(self, name: str) -> None:
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            pass

    def close(self) -> None:
        self.context.try_shutdown()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.node.destroy_node()


class Observer(SpinningNode):
    """Feeds ``observed`` with cam01's anonymised frames and the diagnostics."""

    def __init__(self, observed: Observed) -> None:
        super().__init__('boundary_observer')
        self.node.create_subscription(Image, '/vss/cam01/image_anonymized', observed.on_image, qos.SENSOR)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', observed.on_diagnostics, 10)
        self.start()


def hostile(attack: str, seconds: float) -> list[float]:
    """Run the hostile process; the monotonic times of the messages it sent."""
    done = subprocess.run([sys.executable, str(HOSTILE), attack, str(seconds)], env=ros_environment(),
                          capture_output=True, text=True, timeout=seconds + 60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])['sent']


class Replayer:
    """Plays the coded clip onto image_raw at 10 fps, stamped now (as vss-replay does live)."""

    def __init__(self, node, frames) -> None:
        self.publisher = node.create_publisher(Image, '/vss/cam01/image_raw', qos.SENSOR)
        self.messages = [bgr_to_image(frame, Header()) for frame in frames]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._play, daemon=True)

    def _play(self) -> None:
        index = 0
        while not self.stopping.wait(0.1):
            msg = self.messages[index % len(self.messages)]
            msg.header.stamp = time_from_ns(time.time_ns())
            self.publisher.publish(msg)
            index += 1
