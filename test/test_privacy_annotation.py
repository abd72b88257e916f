"""The commissioning view: drawn on anonymised frames, with the camera's open incidents."""

import json

import numpy as np

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.privacy.annotation import OpenIncidents, annotate


def _event(phase: str, camera: str, incident_id: str, rule: str) -> str:
    return json.dumps({'schema': 'kaiserslautern_vss/event/v1', 'phase': phase, 'id': incident_id,
                       'camera': camera, 'rule': rule, 'state': 'ended' if phase == 'end' else 'open'})


def test_open_incidents_follow_start_and_end_per_camera():
    incidents = OpenIncidents()
    incidents.update(_event('start', 'cam01', 'a', 'lawn_intrusion'))
    incidents.update(_event('start', 'cam02', 'b', 'loitering'))
    incidents.update(_event('update', 'cam01', 'a', 'lawn_intrusion'))
    assert incidents.rules_on('cam01') == ['lawn_intrusion'] and incidents.rules_on('cam02') == ['loitering']
    incidents.update(_event('end', 'cam01', 'a', 'lawn_intrusion'))
    assert incidents.rules_on('cam01') == [] and incidents.rules_on('cam03') == []


def test_malformed_events_are_ignored():
    incidents = OpenIncidents()
    for text in ('not json', '{"phase": "start"}', '[1, 2]'):
        incidents.update(text)
    assert incidents.rules_on('cam01') == []


def test_annotation_draws_on_a_copy_and_shows_the_incident_banner():
    image = np.full((120, 200, 3), 80, np.uint8)
    detections = Detections(np.array([[20, 60, 60, 110]]), np.array([0.9]), ('person',), np.array([4]))
    plain = annotate(image, detections)
    alarmed = annotate(image, detections, ['lawn_intrusion'])
    assert (image == 80).all()
    assert (plain[60, 20:61] != 80).any()  # box edge drawn
    assert (plain[:24] == 80).all() and (alarmed[:24] != 80).any()  # banner only with an incident
