"""What the live view shows: newest anonymised frame per camera, incidents, alert stream.

Fed from the ROS thread (serialized messages, decoded only when someone looks) and read
from the web server's event loop. Browsers receive changes through :meth:`subscribe`
queues (server-sent events), so an alert reaches the screen as soon as it is published.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaiserslautern_vss.console.messages import (MessageError, NotAnIncident, decode_detections, decode_event,
                                                jpeg_from_cdr)

#: incidents kept for the alert list (newest)
MAX_INCIDENTS = 200


def short_id(reference: str) -> str:
    """The 8-character incident key shared by event ids and folder names (bag_directory_name)."""
    return Path(reference).name.rsplit('_', 1)[-1][:8]


@dataclass
class _CameraSlot:
    image_cdr: bytes | None = None
    image_seq: int = 0
    received: float = 0.0
    decoded_seq: int = 0
    jpeg: bytes | None = None
    detections_cdr: bytes | None = None


class LiveState:
    def __init__(self, cameras: list[str], clock: Callable[[], float]) -> None:
        self.cameras = list(cameras)
        self._clock = clock
        self._slots = {camera: _CameraSlot() for camera in self.cameras}
        self._incidents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._acknowledged: dict[str, dict[str, str]] = {}
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self._lock = threading.Lock()
        self.dropped_messages = 0  # undecodable images and events (diagnostics)
        self.last_viewed = float('-inf')  # a browser's last live request (camera topics follow it)

    # --- fed by the node -------------------------------------------------------------
    def on_image(self, camera: str, cdr: bytes) -> None:
        slot = self._slots.get(camera)
        if slot is None:
            return
        with self._lock:
            slot.image_cdr, slot.image_seq, slot.received = cdr, slot.image_seq + 1, self._clock()

    def on_detections(self, camera: str, cdr: bytes) -> None:
        slot = self._slots.get(camera)
        if slot is not None:
            slot.detections_cdr = cdr

    def on_event(self, cdr: bytes) -> None:
        try:
            event = decode_event(cdr)
        except NotAnIncident:
            return  # other news on /vss/events (the detector's start-up info): not an alert, not an error
        except MessageError:
            self.dropped_messages += 1
            return
        with self._lock:
            self._incidents[event['id']] = event
            self._incidents.move_to_end(event['id'])
            while len(self._incidents) > MAX_INCIDENTS:
                self._incidents.popitem(last=False)
        self._publish('incident', self._alert(event))

    # --- read by the web app ---------------------------------------------------------
    def watched(self, now: float, within_s: float) -> bool:
        """True if a browser looked at the live view in the last ``within_s`` seconds."""
        return now - self.last_viewed <= within_s

    def frame(self, camera: str) -> tuple[int, bytes] | None:
        """``(sequence, jpeg)`` of the camera's newest frame, decoded once per frame."""
        self.last_viewed = self._clock()
        slot = self._slots.get(camera)
        if slot is None:
            return None
        with self._lock:
            cdr, seq = slot.image_cdr, slot.image_seq
            if cdr is None:
                return None
            if slot.decoded_seq == seq and slot.jpeg is not None:
                return seq, slot.jpeg
        try:
            _, jpeg = jpeg_from_cdr(cdr)
        except MessageError:
            self.dropped_messages += 1
            return None
        with self._lock:
            slot.decoded_seq, slot.jpeg = seq, jpeg
        return seq, jpeg

    def detections(self, camera: str) -> list[dict[str, Any]]:
        """The boxes of the camera's newest detections (drawn over the large view)."""
        slot = self._slots.get(camera)
        if slot is None or slot.detections_cdr is None:
            return []
        try:
            return [box.to_dict() for box in decode_detections(slot.detections_cdr)[1]]
        except MessageError:
            self.dropped_messages += 1
            return []

    def cameras_status(self, viewer: bool = True) -> list[dict[str, Any]]:
        """Per camera: newest frame's sequence and age, open incidents; ``viewer``: asked by a browser."""
        now = self._clock()
        if viewer:
            self.last_viewed = now
        with self._lock:
            open_by_camera: dict[str, list[str]] = {}
            for event in self._incidents.values():
                if event.get('state') == 'open':
                    open_by_camera.setdefault(event.get('camera', ''), []).append(event.get('rule', ''))
            return [{'camera': camera, 'seq': slot.image_seq,
                     'age_s': None if not slot.image_seq else round(now - slot.received, 1),
                     'open_incidents': open_by_camera.get(camera, [])}
                    for camera, slot in self._slots.items()]

    def alerts(self) -> list[dict[str, Any]]:
        """Incidents seen on /vss/events, newest first, with their acknowledgement."""
        with self._lock:
            return [self._alert(event) for event in reversed(self._incidents.values())]

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self._lock:
            event = self._incidents.get(incident_id)
        return None if event is None else dict(event)

    def open_bag_names(self) -> set[str]:
        """Folder names of incidents still open (their bags are still being written)."""
        with self._lock:
            return {Path(e['bag_path']).name for e in self._incidents.values()
                    if e.get('state') == 'open' and e.get('bag_path')}

    def set_acknowledged(self, key: str, acknowledgement: dict[str, str]) -> None:
        """Record an acknowledgement (key: :func:`short_id`) and tell every browser."""
        with self._lock:
            self._acknowledged[key] = acknowledgement
        self._publish('ack', {'key': key, **acknowledgement})

    def acknowledgement(self, key: str) -> dict[str, str] | None:
        return self._acknowledged.get(key)

    def acknowledged_keys(self) -> set[str]:
        with self._lock:
            return set(self._acknowledged)

    def subscribe(self) -> asyncio.Queue:
        """A queue of ``(kind, payload)`` for one browser; call from the event loop."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = [(loop, q) for loop, q in self._subscribers if q is not queue]

    def _alert(self, event: dict[str, Any]) -> dict[str, Any]:
        folder = Path(event['bag_path']).name if event.get('bag_path') else None
        return {'id': event['id'], 'key': short_id(event['id']), 'camera': event.get('camera'),
                'rule': event.get('rule'), 'kind': event.get('kind'), 'state': event.get('state'),
                'phase': event.get('phase'), 'started': event.get('started'), 'folder': folder,
                'reasons': event.get('reasons', []),
                'acknowledged': self._acknowledged.get(short_id(event['id']))}

    def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(_offer, queue, (kind, payload))
            except RuntimeError:  # that browser's loop is closed
                self.unsubscribe(queue)


def _offer(queue: asyncio.Queue, item: tuple[str, dict[str, Any]]) -> None:
    if not queue.full():  # a browser that stopped reading loses alerts, never the server memory
        queue.put_nowait(item)
