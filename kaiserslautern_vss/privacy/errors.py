"""Exceptions of the privacy stage, so callers can tell bad input from bad configuration."""


class PrivacyError(Exception):
    """Base class of every error raised by :mod:`kaiserslautern_vss.privacy`."""


class PrivacyInputError(PrivacyError, ValueError):
    """An image or box array handed to the privacy stage has the wrong shape or type."""


class PrivacyConfigError(PrivacyError, ValueError):
    """Privacy settings that cannot be used as given."""
