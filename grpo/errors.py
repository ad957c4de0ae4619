"""Our exceptions. ConfigError is the one users see for bad input: a message that names the config key and the fix."""


class ConfigError(Exception):
    """A config value or input file that cannot work; raised before any expensive work starts."""


class RewardUnavailable(Exception):
    """A reward's model or classifier cannot be loaded (offline, not found, out of memory, missing package).

    Raised by a reward's constructor; `build_rewards` then follows the entry's `on_unavailable` (fallback or error).
    """
