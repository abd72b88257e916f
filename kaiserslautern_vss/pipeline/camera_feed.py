"""One camera into the pipeline: the newest frame of a supervised camera, at most ``max_rate_hz``.

The camera's own thread captures, reconnects and fills privacy zones (camera.supervisor);
this thread takes the newest frame whenever it is free and hands it to ``deliver``, so a
slow consumer never builds a backlog (frames replaced meanwhile are counted by the camera).
A finite source that ended sets :attr:`finished`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.pacing import RateDecimator
from kaiserslautern_vss.camera.supervisor import SupervisedCamera
from kaiserslautern_vss.log_throttle import ReasonThrottle

_log = logging.getLogger(__name__)

WAIT_SLICE_S = 0.25  # how often the thread looks at stop requests


class CameraFeed:
    def __init__(self, camera: SupervisedCamera, max_rate_hz: float, deliver: Callable[[Frame], None],
                 name: str = 'camera') -> None:
        self.camera = camera
        self.decimator = RateDecimator(max_rate_hz)
        self._deliver = deliver
        self.delivered = 0
        self.rate_skipped = 0
        self.finished = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f'feed-{name}', daemon=True)
        self._name = name
        self._throttle = ReasonThrottle()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        self.camera.stop()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stopping.is_set():
            frame = self.camera.wait_latest(WAIT_SLICE_S)
            if frame is None:
                if self.camera.stats().state == 'ended':
                    self.finished.set()
                    return
                continue
            if not self.decimator.keep(frame.capture_time_ns):
                self.rate_skipped += 1
                continue
            try:
                self._deliver(frame)
                self.delivered += 1
            except Exception as error:  # noqa: BLE001 - the feed must outlive any bad frame
                if self._stopping.is_set():
                    return
                held_back = self._throttle.admit(type(error))
                if held_back is not None:
                    _log.error('camera %s: cannot hand a frame on (%d like it held back): %r',
                               self._name, held_back, error)
