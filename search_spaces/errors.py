"""The one base class of errors caused by the user's input (exit status 2 on the command line).

Defined here, the lowest layer, so that the spec format and the spaces raise it without importing ``nas``.
"""


class UserInputError(ValueError):
    """Bad arguments, files or data: reported as one line, exit status 2."""
