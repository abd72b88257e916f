"""The commissioning view: an anonymised frame with boxes, track ids and open incidents.

Drawn only on frames that are already anonymised, so the view rviz2 shows can never
carry an unmasked pixel. Incidents come from /vss/events (JSON v1), so the operator sees
in the image itself which rule fired on this camera. Anyone on the bus can publish there:
what is kept is bounded (size and depth of the JSON, the node's own cameras, a few incidents
each), and parsing happens in the subscription callback, never in the masking workers.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from kaiserslautern_vss.bounded_json import parse_untrusted_json
from kaiserslautern_vss.detection.types import Detections

BOX_COLOUR = (0, 200, 255)
INCIDENT_COLOUR = (0, 0, 220)
MAX_OPEN_PER_CAMERA = 16
MAX_RULE_CHARS = 64


class OpenIncidents:
    """Which incidents are open on ``cameras``, from the event stream."""

    def __init__(self, cameras: Iterable[str]) -> None:
        self._open: dict[str, dict[str, str]] = {camera: {} for camera in cameras}  # camera -> id -> rule

    def update(self, event_json: str) -> None:
        """Apply one /vss/events message; an incident event that is not of these cameras, or
        anything else that is JSON, is ignored. Raises UntrustedJsonError for what is not JSON
        within the limits."""
        event = parse_untrusted_json(event_json)
        incident = event.get('incident', event) if isinstance(event, dict) else None
        if not isinstance(incident, dict):
            return
        camera, incident_id, rule = incident.get('camera'), incident.get('id'), incident.get('rule')
        if not all(isinstance(value, str) for value in (camera, incident_id, rule)) or camera not in self._open:
            return
        on_camera = self._open[camera]
        on_camera.pop(incident_id, None)
        if event.get('phase') != 'end' and incident.get('state') != 'ended':
            on_camera[incident_id] = rule[:MAX_RULE_CHARS]
            while len(on_camera) > MAX_OPEN_PER_CAMERA:  # the oldest go first
                del on_camera[next(iter(on_camera))]

    def rules_on(self, camera: str) -> list[str]:
        return sorted(set(self._open.get(camera, {}).values()))


def annotate(image: np.ndarray, detections: Detections, incident_rules: list[str] = ()) -> np.ndarray:
    """A copy of the anonymised ``image`` with boxes, labels, track ids and an incident banner."""
    canvas = image.copy()
    for box, label, track_id, score in zip(detections.boxes.astype(int), detections.labels,
                                           detections.track_ids, detections.scores):
        cv2.rectangle(canvas, tuple(box[:2]), tuple(box[2:]), BOX_COLOUR, 2)
        text = f'{label} #{track_id} {score:.2f}' if track_id >= 0 else f'{label} {score:.2f}'
        cv2.putText(canvas, text, (int(box[0]), max(12, int(box[1]) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, BOX_COLOUR, 1, cv2.LINE_AA)
    if incident_rules:
        cv2.rectangle(canvas, (0, 0), (canvas.shape[1] - 1, 24), INCIDENT_COLOUR, cv2.FILLED)
        cv2.putText(canvas, 'INCIDENT: ' + ', '.join(incident_rules), (6, 17), cv2.FONT_HERSHEY_SIMPLEX,
                    0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas

