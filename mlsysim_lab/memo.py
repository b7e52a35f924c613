"""Set-ups of solver calls, remembered: what a call derives from its fixed arguments (catalog lookups,
checked efficiencies and precisions, the scale-up link, the list of assumptions) depends on those
arguments alone, so a slider or a loop that moves only the batch derives none of it again.

Catalog specs are frozen and hash by identity (``specs.Spec.__hash__``), names and numbers by value; a
key holding an array is unhashable and simply not remembered. Everything here is forgotten when the
catalog gains entries (``Catalog.add``) or the fitted defaults change (``efficiency.trial``), the two
things a set-up reads besides its arguments. Code that reassigns an efficiency constant by hand (a test's
monkeypatch) calls ``forget()`` after it.
"""
from __future__ import annotations

from typing import Any, Callable

#: More distinct set-ups than any notebook or sweep uses; past it the memo starts over.
MAX_ENTRIES = 4096

_SETUPS: dict[Any, Any] = {}


def setup(key: tuple, build: Callable[[], Any]) -> Any:
    """``build()``'s result for ``key``, built once. Errors propagate and are not remembered."""
    try:
        return _SETUPS[key]
    except KeyError:
        pass
    except TypeError:  # an array among the arguments: nothing to remember it by
        return build()
    if len(_SETUPS) >= MAX_ENTRIES:
        _SETUPS.clear()
    value = _SETUPS[key] = build()
    return value


def forget() -> None:
    """Drop every remembered set-up (the catalog or the defaults changed)."""
    _SETUPS.clear()
