"""Topic names of the contract in docs/ARCHITECTURE.md."""

EVENTS = '/vss/events'


def camera_topic(camera_id: str, name: str) -> str:
    """``/vss/<camera_id>/<name>``, e.g. ``camera_topic('cam01', 'image_raw')``."""
    return f'/vss/{camera_id}/{name}'
