"""What each node executable declares: the single source of parameter truth.

One module per executable, so each node's parameters live beside nothing else.
"""

from __future__ import annotations

from kaiserslautern_vss.parameters import (camera_driver, camera_events, detector, event_manager, operator_console,
                                           privacy)
from kaiserslautern_vss.parameters.spec import ParamSpec

NODE_PARAMETERS: dict[str, tuple[ParamSpec, ...]] = {
    'camera_driver': camera_driver.PARAMETERS,
    'detector': detector.PARAMETERS,
    'privacy': privacy.PARAMETERS,
    'event_manager': event_manager.PARAMETERS,
    'camera_events': camera_events.PARAMETERS,
    'operator_console': operator_console.PARAMETERS,
}
