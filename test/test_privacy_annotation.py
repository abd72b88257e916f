"""The commissioning view: drawn on anonymised frames, with the camera's open incidents."""

import json

import numpy as np
import pytest

from kaiserslautern_vss.bounded_json import UntrustedJsonError
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.privacy.annotation import MAX_OPEN_PER_CAMERA, MAX_RULE_CHARS, OpenIncidents, annotate


def _event(phase: str, camera: str, incident_id: str, rule: str) -> str:
    return json.dumps({'schema': 'kaiserslautern_vss/event/v1', 'phase': phase, 'id': incident_id,
                       'camera': camera, 'rule': rule, 'state': 'ended' if phase == 'end' else 'open'})


def test_open_incidents_follow_start_and_end_per_camera():
    incidents = OpenIncidents(['cam01', 'cam02', 'cam03'])
    incidents.update(_event('start', 'cam01', 'a', 'lawn_intrusion'))
    incidents.update(_event('start', 'cam02', 'b', 'loitering'))
    incidents.update(_event('update', 'cam01', 'a', 'lawn_intrusion'))
    assert incidents.rules_on('cam01') == ['lawn_intrusion'] and incidents.rules_on('cam02') == ['loitering']
    incidents.update(_event('end', 'cam01', 'a', 'lawn_intrusion'))
    assert incidents.rules_on('cam01') == [] and incidents.rules_on('cam03') == []


def test_events_that_are_not_incidents_of_these_cameras_are_ignored():
    incidents = OpenIncidents(['cam01'])
    for text in ('{"phase": "start"}', '[1, 2]', '"incident"', '{"incident": [1]}', '{"camera": ["cam01"]}',
                 '{"camera": "cam01", "id": {}, "rule": "x"}', _event('start', 'cam99', 'a', 'x')):
        incidents.update(text)
    assert incidents.rules_on('cam01') == [] and incidents.rules_on('cam99') == []


def test_what_is_not_json_within_limits_is_refused_and_what_is_kept_is_bounded():
    incidents = OpenIncidents(['cam01'])
    for text in ('not json', '[' * 100_000 + ']' * 100_000, '"' + 'x' * 10**6 + '"'):
        with pytest.raises(UntrustedJsonError):
            incidents.update(text)
    for n in range(1000):
        incidents.update(_event('start', 'cam01', f'id{n}', f'rule{n % 40:02d}' + 'x' * 1000))
    rules = incidents.rules_on('cam01')
    assert len(rules) == MAX_OPEN_PER_CAMERA and all(len(rule) == MAX_RULE_CHARS for rule in rules)


def test_annotation_draws_on_a_copy_and_shows_the_incident_banner():
    image = np.full((120, 200, 3), 80, np.uint8)
    detections = Detections(np.array([[20, 60, 60, 110]]), np.array([0.9]), ('person',), np.array([4]))
    plain = annotate(image, detections)
    alarmed = annotate(image, detections, ['lawn_intrusion'])
    assert (image == 80).all()
    assert (plain[60, 20:61] != 80).any()  # box edge drawn
    assert (plain[:24] == 80).all() and (alarmed[:24] != 80).any()  # banner only with an incident
