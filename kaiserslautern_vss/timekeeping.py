"""Time conventions of the package: stamps are integer nanoseconds; local times are the site's."""

NS_PER_S = 1_000_000_000
#: the site's time zone: rule time windows are local time in it, and the console shows it
DEFAULT_TIMEZONE = 'Europe/Berlin'
