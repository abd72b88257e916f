"""QoS profiles of the topic contract (docs/ARCHITECTURE.md)."""

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

#: image_raw, image_anonymized(+compressed), image_annotated, camera_info
SENSOR = qos_profile_sensor_data
#: detections: every frame's detections matter to privacy and rules
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
#: /vss/events: late joiners (rviz, alert bridges) get recent incidents
LATCHED = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
