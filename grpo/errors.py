"""The one exception type users see for bad input: a message that names the config key and the fix."""


class ConfigError(Exception):
    """A config value or input file that cannot work; raised before any expensive work starts."""
