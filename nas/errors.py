"""The one base class of errors caused by the user's input (exit status 2 on the command line)."""


class UserInputError(ValueError):
    """Bad arguments, files or data: reported as one line, exit status 2."""
