"""The site's time zone: rule time windows are local time in it, and the console shows it."""

DEFAULT_TIMEZONE = 'Europe/Berlin'
