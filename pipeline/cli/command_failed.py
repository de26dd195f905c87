"""The one exception a command raises to end with a message for the operator."""


class CommandFailed(Exception):
    """The command cannot go on; the message (one line for the operator) says why."""
