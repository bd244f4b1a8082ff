"""The one base class of errors caused by the user's input (exit status 2): ``search_spaces.errors``'s, here
under the name the rest of ``nas`` imports."""
from search_spaces.errors import UserInputError

__all__ = ["UserInputError"]
