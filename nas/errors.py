"""The errors caused by the user's input (exit status 2): ``search_spaces.errors``'s base class, here under the
name the rest of ``nas`` imports, and :class:`SettingError`, a setting's error in the setting's own name."""
from __future__ import annotations

from typing import Any

from search_spaces.errors import UserInputError

__all__ = ["SettingError", "UserInputError", "first_line", "shown"]

_NO_VALUE = object()


def first_line(exc: BaseException) -> str:
    """``TypeName: the first line of its message`` (at most 200 characters), or the type's name alone: a
    library's exception said in a one-line error."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def shown(value: Any) -> str:
    """A setting's value as a flag would give it: ``a,b`` for a list, ``none`` for an empty one, ``%g`` for a
    float."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(shown, value)) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class SettingError(UserInputError):
    """A setting (or settings) that cannot be: ``names`` as the settings' parts name them, ``reason`` in words.

    Read as ``proxy_resolution 8: must be at least 16``; an edge renames the settings into its own spelling
    (the command line's ``--proxy-resolution``) with :meth:`renamed`, the message otherwise unchanged.
    """

    def __init__(self, names: str | tuple[str, ...], reason: str, value: Any = _NO_VALUE) -> None:
        self.names = (names,) if isinstance(names, str) else tuple(names)
        self.reason, self.value = reason, value
        super().__init__(str(self))

    def __str__(self) -> str:
        value = "" if self.value is _NO_VALUE else f" {shown(self.value)}"
        return f"{' / '.join(self.names)}{value}: {self.reason}"

    def renamed(self, spelling: Any) -> "SettingError":
        """The same error with each name passed through ``spelling`` (a mapping, or a function of a name)."""
        rename = spelling if callable(spelling) else (lambda name: spelling.get(name, name))
        return SettingError(tuple(rename(name) for name in self.names), self.reason, self.value)
