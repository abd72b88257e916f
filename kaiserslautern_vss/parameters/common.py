"""Parameters several executables share."""

from kaiserslautern_vss.parameters.spec import ParamSpec

CAMERAS = ParamSpec('cameras', ['cam01'], 'Camera ids this node serves; topics are /vss/<id>/...',
                    required=True)
