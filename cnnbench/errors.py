"""The one exception type for mistakes a user can fix: the CLI prints its message, not a traceback."""


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""


class RunDiverged(UserError):
    """The training loss became NaN or infinite; the message suggests the likely cause."""
