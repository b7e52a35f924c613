"""Every exception the package raises: bad input gets a clear error, never a wrong answer.

An infeasible *configuration* (a model that does not fit, a link too slow) is not an error: solvers
return a verdict naming the wall. Errors are for inputs that have no physical meaning at all.
"""
from __future__ import annotations

import difflib

import pint


class MlsysimError(Exception):
    """Base class of the package's errors."""


class InputError(MlsysimError, ValueError):
    """A value that cannot be evaluated: negative, zero, NaN, out of range or of the wrong kind."""


class UnitError(InputError, pint.DimensionalityError):
    """A quantity of the wrong dimension, or a bare number where a unit is required.

    Keeps pint's structured fields (``units1``, ``dim1``, ``dim2``) and adds the argument's name and
    an example of an accepted value, e.g. ``serve(): 'overhead' got 3 GB ([information]); expected
    [time], e.g. '5 us'``.
    """

    def __init__(self, where: str, name: str, got: str, got_dim: str, expected_dim: str, example: str):
        pint.DimensionalityError.__init__(self, got, example, got_dim, expected_dim)
        self.where, self.name, self.example = where, name, example

    def __str__(self) -> str:
        got = f"{self.units1} ({self.dim1})" if self.dim1 else f"{self.units1}"
        where = f"{self.where}: " if self.where else ""
        return f"{where}'{self.name}' got {got}; expected {self.dim2}, e.g. '{self.example}'"

    def __reduce__(self):
        return self.__class__, (self.where, self.name, self.units1, self.dim1, self.dim2, self.example)


class UnknownNameError(InputError, LookupError):
    """A catalog name that does not exist; the message lists the closest names."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name = kind, name
        close = difflib.get_close_matches(_fold(name), [_fold(k) for k in known], n=3, cutoff=0.5)
        by_fold = {_fold(k): k for k in known}
        self.suggestions = [by_fold[c] for c in close]
        hint = (f"did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions
                else f"known {kind} entries include {', '.join(sorted(known)[:8])}, ...")
        super().__init__(f"unknown {kind} {name!r}: {hint}")

    def __reduce__(self):
        return _rebuild_unknown, (self.kind, self.name, self.suggestions)

    def __str__(self) -> str:
        return self.args[0]


def _rebuild_unknown(kind, name, suggestions):
    return UnknownNameError(kind, name, suggestions)


class CatalogError(InputError):
    """A catalog file or entry that does not validate; names the file, the entry and the field."""


def _fold(name: str) -> str:
    """Case-, space-, dash-, underscore- and dot-insensitive key: 'H100 SXM' == 'h100-sxm' == 'H100_SXM'."""
    return "".join(ch for ch in name.lower() if ch.isalnum())
