"""A hostile local process: another participant in the graph's DDS domain that knows the topic
names and the frames' stamps (from camera_info) and forges what the privacy stage used to trust.

    python hostile_publisher.py ATTACK SECONDS [CAMERA]

Every frame stamp seen on /vss/<cam>/camera_info (published before the frame is detected) is
answered at once with the attack's message(s), for SECONDS after the first. Attacks on
image_raw publish on a 10 Hz timer instead (a replayed camera has no camera_info here). At
the end one JSON line on stdout: the monotonic times of the first and every sent message.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.image_conversion import bgr_to_image
from kaiserslautern_vss.ros.stamps import header_stamp_ns, time_from_ns

DAY_NS = 86_400 * 10**9
WIDTH, HEIGHT = 768, 576


def box(cx: float, cy: float, w: float, h: float, label: str = 'person') -> Detection2D:
    detection = Detection2D()
    detection.bbox.center.position.x, detection.bbox.center.position.y = cx, cy
    detection.bbox.size_x, detection.bbox.size_y = w, h
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = label, 0.99
    detection.results.append(hypothesis)
    return detection


def detections(header: Header, boxes: list[Detection2D]) -> Detection2DArray:
    return Detection2DArray(header=header, detections=boxes)


def shifted(header: Header, offset_ns: int) -> Header:
    return Header(stamp=time_from_ns(header_stamp_ns(header) + offset_ns), frame_id=header.frame_id)


MANY = [box(10 + i % 700, 10 + i // 700, 5, 5) for i in range(10_000)]
#: detections attacks: frame header -> messages (sent on the detections topic, in order)
DETECTION_ATTACKS = {
    'empty': lambda h: [detections(h, [])],
    'negative': lambda h: [detections(h, [box(WIDTH / 2, HEIGHT / 2, -WIDTH, -HEIGHT)])],
    'wrong_case': lambda h: [detections(h, [box(WIDTH / 2, HEIGHT / 2, 40, 100, 'Person')])],
    'nan': lambda h: [detections(h, [box(float('nan'), float('nan'), 40, 100)])],
    'many': lambda h: [detections(h, MANY)],
    'duplicate': lambda h: [detections(h, []), detections(h, []), detections(h, [box(5, 5, 2, 2)])],
    'late': lambda h: [detections(shifted(h, -2 * 10**9), [])],
    'future': lambda h: [detections(shifted(h, DAY_NS), [])],
    'past': lambda h: [detections(shifted(h, -DAY_NS), [])],
    'second_publisher': lambda h: [detections(h, [])],
}


def noise_frame(header: Header) -> Image:
    return bgr_to_image(np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8), header)


def garbage_frame(header: Header) -> Image:
    msg = Image(header=header, height=HEIGHT, width=WIDTH, encoding='bgr8', step=WIDTH * 3)
    msg.data = bytes(1000)  # far too short for its size
    return msg


#: image_raw attacks: current node time -> message
IMAGE_ATTACKS = {
    'raw_future': lambda now_ns: noise_frame(Header(stamp=time_from_ns(now_ns + DAY_NS))),
    'raw_past': lambda now_ns: noise_frame(Header(stamp=time_from_ns(now_ns - DAY_NS))),
    'raw_garbage': lambda now_ns: garbage_frame(Header(stamp=time_from_ns(now_ns))),
}


def main(attack: str, seconds: float, camera: str = 'cam01') -> None:
    rclpy.init()
    node = rclpy.create_node(f'hostile_{attack}')
    sent: list[float] = []
    if attack in DETECTION_ATTACKS:
        count = 2 if attack == 'second_publisher' else 1
        publishers = [node.create_publisher(Detection2DArray, f'/vss/{camera}/detections', qos.RELIABLE)
                      for _ in range(count)]

        def on_info(info: CameraInfo) -> None:
            for message in DETECTION_ATTACKS[attack](info.header):
                for publisher in publishers:
                    publisher.publish(message)
            sent.append(time.monotonic())
        node.create_subscription(CameraInfo, f'/vss/{camera}/camera_info', on_info, qos.SENSOR)
    else:
        publisher = node.create_publisher(Image, f'/vss/{camera}/image_raw', qos.SENSOR)

        def on_timer() -> None:
            publisher.publish(IMAGE_ATTACKS[attack](time.time_ns()))
            sent.append(time.monotonic())
        node.create_timer(0.1, on_timer)
    deadline = None
    try:
        while deadline is None or time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
            if deadline is None and sent:
                deadline = sent[0] + seconds
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(json.dumps({'attack': attack, 'sent': sent}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == '__main__':
    main(sys.argv[1], float(sys.argv[2]), *sys.argv[3:])
