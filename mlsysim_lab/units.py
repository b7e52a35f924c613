"""The package's one unit registry, and the checked door between quantities and floats.

Quantities cross every public boundary; inside, solvers work in plain floats (or numpy arrays) in one
documented SI unit per dimension (``SI`` below). ``to_si`` is the door: it checks the dimension once,
names the argument when it is wrong, and refuses bare numbers, NaN, infinities and non-positive values.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pint
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from .errors import InputError, UnitError

ureg = pint.UnitRegistry(str(Path(__file__).with_name("units.txt")), cache_folder=None)
ureg.formatter.default_format = "~P"
pint.set_application_registry(ureg)  # pickled quantities (results, specs) come back into this registry
Q_ = ureg.Quantity
Quantity = pint.Quantity

#: Dimension name -> (pint dimensionality, SI unit used inside the package, example shown in errors).
SI: dict[str, tuple[str, str, str]] = {
    "time": ("[time]", "s", "5 us"),
    "information": ("[information]", "B", "80 GB"),
    "bandwidth": ("[information] / [time]", "B/s", "3.35 TB/s"),
    "compute": ("[compute]", "FLOP", "8.2 GFLOP"),
    "throughput": ("[compute] / [time]", "FLOP/s", "989 TFLOP/s"),
    "power": ("[mass] * [length] ** 2 / [time] ** 3", "W", "700 W"),
    "energy": ("[mass] * [length] ** 2 / [time] ** 2", "J", "1 kWh"),
    "currency": ("[currency]", "USD", "30000 USD"),
    "carbon": ("[carbon]", "gCO2e", "1 tCO2e"),
    "carbon_intensity": ("[carbon] * [time] ** 2 / [mass] / [length] ** 2", "gCO2e/J", "380 gCO2e/kWh"),
    "water_intensity": ("[length] * [time] ** 2 / [mass]", "L/J", "1.8 L/kWh"),
    "energy_price": ("[currency] * [time] ** 2 / [mass] / [length] ** 2", "USD/J", "0.12 USD/kWh"),
    "parameters": ("[parameter]", "param", "7e9 param"),
    "tokens": ("[token]", "token", "2e12 token"),
    "length": ("[length]", "m", "1000 km"),
    "request_rate": ("[count] / [time]", "req/s", "160 req/s"),
    "token_rate": ("[token] / [time]", "token/s", "5000 token/s"),
    "price_rate": ("[currency] / [time]", "USD/s", "2.5 USD/h"),
    "data_price": ("[currency] / [information]", "USD/B", "0.08 USD/GB"),
    "dimensionless": ("", "", "0.5"),
}

_DIMS = {k: ureg.get_dimensionality(v[0]) if v[0] else ureg.get_dimensionality("") for k, v in SI.items()}
#: Another dimension accepted for a kind, with the unit that bridges it: "160 /s" is 160 req/s.
_ALSO = {"request_rate": (ureg.get_dimensionality("1 / [time]"), "1/s")}
_UNIT = {k: ureg.Unit(v[1]) if v[1] else ureg.dimensionless for k, v in SI.items()}


@functools.lru_cache(maxsize=8192)
def parse(text: str) -> pint.Quantity:
    """A quantity string parsed once: catalogs and notebooks repeat the same few hundred ("80 GB"), and
    pint's parser costs ~0.3 ms a call. Safe to share: a scalar quantity's arithmetic, in-place
    operators included, makes new objects."""
    return Q_(text)


def _dim_text(dim) -> str:
    return str(dim) if dim else "dimensionless"


def to_si(value: Any, kind: str, *, name: str, where: str, positive: bool = True,
          allow_zero: bool = False) -> float | np.ndarray:
    """Return ``value`` as a float (or float array) in the SI unit of ``kind``.

    Accepts a pint quantity of this registry or a string such as ``"3.35 TB/s"``; a bare number is
    refused (units are never attached silently) except for ``kind="dimensionless"``.
    """
    dims, _, example = SI[kind]
    if isinstance(value, str):
        try:
            value = parse(value)
        except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, AttributeError,
                ValueError, TypeError, SyntaxError) as err:
            raise UnitError(where, name, repr(value), "unparseable", _dim_text(_DIMS[kind]), example) from err
    if isinstance(value, pint.Quantity):
        if value._REGISTRY is not ureg:
            raise InputError(f"{where}: {name!r} was made with another pint registry; "
                             "build quantities with mlsysim_lab.Q_ or pass a string such as "
                             f"'{example}'")
        also = _ALSO.get(kind)
        if also is not None and value.dimensionality == also[0]:
            magnitude = value.to(also[1]).magnitude
        elif value.dimensionality != _DIMS[kind]:
            raise UnitError(where, name, _text(value), _dim_text(value.dimensionality),
                            _dim_text(_DIMS[kind]), example)
        else:
            magnitude = value.to(_UNIT[kind]).magnitude
    elif kind == "dimensionless" and isinstance(value, (int, float, np.ndarray, np.number)) \
            and not isinstance(value, bool):
        magnitude = value
    else:
        raise UnitError(where, name, repr(value), "a bare number" if isinstance(value, (int, float))
                        else type(value).__name__, _dim_text(_DIMS[kind]), example)
    return check_number(magnitude, name=name, where=where, positive=positive, allow_zero=allow_zero)


def to_si_any(value: Any, kinds: tuple[str, ...], *, name: str, where: str, allow_zero: bool = False):
    """(float in SI, the kind it matched) for a value that may have any of several dimensions, e.g. a
    consumption rate in samples/s or tokens/s; the error lists every accepted dimension."""
    q = Q_(value) if isinstance(value, str) and _parses(value) else value
    if isinstance(q, pint.Quantity) and q._REGISTRY is ureg:
        for kind in kinds:
            also = _ALSO.get(kind)
            if q.dimensionality == _DIMS[kind] or (also is not None and q.dimensionality == also[0]):
                return to_si(q, kind, name=name, where=where, allow_zero=allow_zero), kind
    expected = " or ".join(_dim_text(_DIMS[k]) for k in kinds)
    got = (_text(q), _dim_text(q.dimensionality)) if isinstance(q, pint.Quantity) else \
        (repr(value), "a bare number" if isinstance(value, (int, float)) else
         "unparseable" if isinstance(value, str) else type(value).__name__)
    raise UnitError(where, name, got[0], got[1], expected, SI[kinds[0]][2])


def _parses(text: str) -> bool:
    try:
        Q_(text)
        return True
    except Exception:  # pint raises several kinds of parse errors; the caller reports "unparseable"
        return False


def _text(q: pint.Quantity) -> str:
    mag = q.magnitude
    return f"{mag:g} {q.units:~P}" if isinstance(mag, (int, float)) else f"{q:~P}"


def check_number(value: Any, *, name: str, where: str, positive: bool = True,
                 allow_zero: bool = False, integer: bool = False) -> float | np.ndarray:
    """Refuse NaN, infinities, booleans and (by default) values <= 0; return a float or float array."""
    t = type(value)
    if (t is int or t is float) and value > 0 and value < math.inf and (not integer or value == int(value)):
        return float(value)  # the common case, decided in a few comparisons
    at = f"{where}: " if where else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # plain scalars
        bad = (not math.isfinite(value) and "must be finite") or \
              (positive and (value < 0 or (not allow_zero and value == 0)) and
               f"must be {'>= 0' if allow_zero else '> 0'}") or \
              (integer and value != int(value) and "must be a whole number")
        if bad:
            raise InputError(f"{at}{name!r} {bad}, got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (np.ndarray, np.number)):
        raise InputError(f"{at}{name!r} must be a number, got {value!r}")
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{at}{name!r} must be finite, got {value!r}")
    if positive and (np.any(arr < 0) or (not allow_zero and np.any(arr == 0))):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{at}{name!r} must be {bound}, got {value!r}")
    if integer and np.any(arr != np.round(arr)):
        raise InputError(f"{at}{name!r} must be a whole number, got {value!r}")
    return float(arr) if arr.ndim == 0 else arr


def count(value: Any, *, name: str, where: str, kind: str | None = None, allow_zero: bool = False,
          integer: bool = True) -> float | np.ndarray:
    """A count (batch, GPUs, tokens): a plain number, or a quantity of ``kind`` ('tokens', 'parameters')."""
    t = type(value)
    if t is int or t is float:  # the common case: skip the quantity checks below
        return check_number(value, name=name, where=where, allow_zero=allow_zero, integer=integer)
    if isinstance(value, (str, pint.Quantity)):
        if kind is None:
            raise UnitError(where, name, f"{value}", "a quantity", "a plain count", "8")
        return to_si(value, kind, name=name, where=where, allow_zero=allow_zero)
    return check_number(value, name=name, where=where, allow_zero=allow_zero, integer=integer)


def quantity(kind: str, *, positive: bool = True, allow_zero: bool = False):
    """A pydantic field type: a quantity of ``kind`` read from a string or quantity, checked, kept as pint.

    Serialises back to a string ("3.35 TB/s") and shows up in JSON Schema as a string with an example,
    so a bring-your-own YAML file gets editor completion.
    """
    example = SI[kind][2]

    def validator(value: Any, info) -> pint.Quantity:
        to_si(value, kind, name=info.field_name or kind, where="", positive=positive, allow_zero=allow_zero)
        return value if isinstance(value, pint.Quantity) else parse(value)

    return Annotated[
        Any,
        BeforeValidator(validator),
        PlainSerializer(lambda q: f"{q:~P}" if isinstance(q, pint.Quantity) else q, return_type=str),
        WithJsonSchema({"type": "string", "description": f"a quantity of dimension {_dim_text(_DIMS[kind])}",
                        "examples": [example]}),
    ]


def si(q: pint.Quantity, kind: str) -> float:
    """Magnitude of an already-validated quantity in the package's SI unit for ``kind``."""
    return q.to(_UNIT[kind]).magnitude


_PREFIXES = [(1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"),
             (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")]
#: SI units (as solvers store them) shown with a decimal prefix; others are shown as they are.
_PREFIXABLE = {"B", "FLOP", "B/s", "FLOP/s", "token/s", "sample/s", "W", "J", "gCO2e", "param", "token",
               "FLOP/token", "L", "Wh"}


def fmt(q: pint.Quantity, digits: int = 3) -> str:
    """A quantity as a student reads it: compact prefix, ``digits`` significant figures."""
    return show(q.magnitude, f"{q.units:~P}", digits)


def show(value: float, unit: str, digits: int = 3) -> str:
    """Format a float stored in ``unit`` without building a pint quantity (fast enough for results)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    if unit == "s":
        a = abs(value)
        if a >= 2 * 86400:
            return f"{value / 86400:,.{digits}g} days" if a < 1e3 * 86400 else f"{value / 86400:,.0f} days"
        if a >= 2 * 3600:
            return f"{value / 3600:.{digits}g} h"
        if a >= 120:
            return f"{value / 60:.{digits}g} min"
    if unit in _PREFIXABLE or unit == "s":
        base = unit
        for scale, prefix in _PREFIXES:
            if abs(value) >= scale * 0.9995:
                if unit == "s" and scale > 1:
                    break
                text = f"{value / scale:.{digits}g}"
                return f"{text} {prefix}{base}"
        return f"{value / 1e-12:.{digits}g} p{base}"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.{digits}g} {unit}".strip()
