"""Topic names of the contract in docs/ARCHITECTURE.md."""

EVENTS = '/vss/events'
#: /vss/<cam>/skeletons: marker coordinates are image pixels times this (1 px = 1 cm)
SKELETON_PIXEL_SCALE = 0.01
#: what an incident bag holds per camera (never image_raw): topic name -> message type
RECORDED_PER_CAMERA = {
    'image_anonymized/compressed': 'sensor_msgs/msg/CompressedImage',
    'detections': 'vision_msgs/msg/Detection2DArray',
    'camera_info': 'sensor_msgs/msg/CameraInfo',
    'behaviour': 'std_msgs/msg/String',  # the cues (vss.behaviour/1), so a recording says why it was made
    'skeletons': 'visualization_msgs/msg/MarkerArray',  # keypoints and limbs, no pixels
}


def camera_topic(camera_id: str, name: str) -> str:
    """``/vss/<camera_id>/<name>``, e.g. ``camera_topic('cam01', 'image_raw')``."""
    return f'/vss/{camera_id}/{name}'
