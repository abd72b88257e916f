"""The one in-memory form of a captured camera image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured image.

    ``image`` is HxWx3 uint8 BGR; ``capture_time_ns`` is ``time.time_ns()`` when the image was
    captured (received, for network sources); ``sequence`` counts frames of one source from 0.
    """

    image: np.ndarray
    capture_time_ns: int
    sequence: int
