"""The one exception type for mistakes a user can fix (bad file, bad argument, unknown name)."""


class NetscopeError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with status 2."""
