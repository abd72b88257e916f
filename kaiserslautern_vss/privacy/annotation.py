"""The commissioning view: an anonymised frame with boxes, track ids and open incidents.

Drawn only on frames that are already anonymised, so the view rviz2 shows can never
carry an unmasked pixel. Incidents come from /vss/events (JSON v1), so the operator sees
in the image itself which rule fired on this camera.
"""

from __future__ import annotations

import json
import cv2
import numpy as np

from kaiserslautern_vss.detection.types import Detections

BOX_COLOUR = (0, 200, 255)
INCIDENT_COLOUR = (0, 0, 220)


class OpenIncidents:
    """Which incidents are open per camera, from the event stream."""

    def __init__(self) -> None:
        self._open: dict[str, dict[str, str]] = {}  # camera -> incident id -> rule

    def update(self, event_json: str) -> None:
        """Apply one /vss/events message; anything not an incident event is ignored."""
        try:
            event = json.loads(event_json)
            incident = event['incident'] if 'incident' in event else event
            camera, incident_id, rule = incident['camera'], incident['id'], incident['rule']
        except (ValueError, KeyError, TypeError):
            return
        on_camera = self._open.setdefault(camera, {})
        if event.get('phase') == 'end' or incident.get('state') == 'ended':
            on_camera.pop(incident_id, None)
        else:
            on_camera[incident_id] = rule

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

