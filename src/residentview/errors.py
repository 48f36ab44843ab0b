"""One exception hierarchy. Every message is a single line a user can act on."""


class ResidentViewError(Exception):
    """Base class for errors caused by the user's input (exit code 2 on the CLI)."""


class ConfigError(ResidentViewError):
    """The YAML config (or the dict/Config given to the API) is wrong."""


class DataError(ResidentViewError):
    """A source file cannot be read, or its contents break a rule (missing column, duplicate id...)."""
