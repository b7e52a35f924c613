"""One kind of answer for every solver: frozen, quantities out, the binding wall named.

A result stores plain floats (or numpy arrays, for sweeps) in SI units and builds pint quantities only
when a field is read, so a solver call costs microseconds. ``terms`` are the named contributions of the
Iron Law (compute, memory, communication, overhead) that an instrument draws as a waterfall;
``bottleneck`` is the wall that binds and ``margin`` how far ahead of the next wall it is;
``assumptions`` lists every default used, with its source; ``explain()`` says it all in words.
"""
from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any

import numpy as np

from .efficiency import Assumption
from .units import Q_, show


class Wall(str, Enum):
    """The physical walls a result can name as binding (the seed's "22 walls", sharpened).

    Node: compute, memory bandwidth, memory capacity, on-chip memory (SRAM fit), power (thermal),
    host transfer (PCIe), software overhead. Data: ingest (storage), preprocessing (CPU), data gravity
    (WAN transfer), speed of light. Algorithm: compute-optimal scaling, fidelity (compression),
    attention (quadratic context), reasoning (inference-time compute). Fleet: network (collectives),
    pipeline bubble, reliability, checkpoint I/O. Operations: latency SLO (tail latency under load),
    batching (KV reservation), streaming (weight injection), multi-tenant queueing, cost, carbon, water,
    safety (privacy overhead).
    """

    COMPUTE = "compute"
    MEMORY_BANDWIDTH = "memory bandwidth"
    MEMORY_CAPACITY = "memory capacity"
    SRAM = "on-chip memory"
    POWER = "power"
    HOST_TRANSFER = "host transfer"
    OVERHEAD = "software overhead"
    INGEST = "storage ingest"
    PREPROCESSING = "preprocessing"
    DATA_GRAVITY = "data gravity"
    LIGHT = "speed of light"
    SCALING = "compute-optimal scaling"
    FIDELITY = "fidelity"
    ATTENTION = "attention"
    REASONING = "reasoning"
    NETWORK = "network"
    BUBBLE = "pipeline bubble"
    RELIABILITY = "reliability"
    CHECKPOINT = "checkpoint I/O"
    LATENCY_SLO = "latency SLO"
    BATCHING = "batching"
    STREAMING = "weight streaming"
    MULTI_TENANT = "multi-tenant queueing"
    COST = "cost"
    CARBON = "carbon"
    WATER = "water"
    SAFETY = "safety"

    def __str__(self) -> str:
        return self.value


#: Which wall each named Iron-Law term stands for.
TERM_WALL = {"compute": Wall.COMPUTE, "memory": Wall.MEMORY_BANDWIDTH, "network": Wall.NETWORK,
             "overhead": Wall.OVERHEAD}


def vmax(a, b):
    """max() for floats, np.maximum when either side is an array (a sweep); floats stay fast."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.maximum(a, b)
    return a if a >= b else b


def vmin(a, b):
    """min() for floats, np.minimum when either side is an array."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.minimum(a, b)
    return a if a <= b else b


def vfloor(x):
    """floor() as a float for scalars (numpy's scalar ufuncs cost ~1 us), np.floor for arrays."""
    return np.floor(x) if isinstance(x, np.ndarray) else float(math.floor(x))


def vceil(x):
    """ceil() as a float for scalars, np.ceil for arrays."""
    return np.ceil(x) if isinstance(x, np.ndarray) else float(math.ceil(x))


def choose_wall(condition, wall_if_true, wall_if_false):
    """Elementwise choice between walls (or arrays of walls) that keeps Wall members, never strings
    (``np.where`` on str-enums would turn them into plain numpy strings)."""
    a = np.empty(np.shape(condition), dtype=object)
    a[...] = wall_if_false
    cond = np.asarray(condition, dtype=bool)
    a[cond] = np.broadcast_to(np.asarray(wall_if_true, dtype=object), a.shape)[cond]
    return a


def bind(terms: dict[str, Any], walls: dict[str, Wall] | None = None):
    """The binding wall among named terms (the largest), and its margin over the runner-up.

    ``walls`` maps each term name to its Wall (default ``TERM_WALL``: compute, memory, network,
    overhead). Works on scalars and, elementwise, on numpy arrays of equal shape (a sweep).
    """
    wall_of = TERM_WALL if walls is None else walls
    top_name, top, second = None, -math.inf, -math.inf
    for name, v in terms.items():  # one pass on scalars; ties go to the earlier term
        if isinstance(v, np.ndarray) and v.ndim:
            break
        if v > top:
            top_name, top, second = name, v, top
        elif v > second:
            second = v
    else:
        return wall_of[top_name], (top / second if second > 0 else math.inf)
    names = list(terms)  # a sweep: elementwise over arrays
    stack = np.stack(np.broadcast_arrays(*[np.asarray(terms[n], dtype=float) for n in names]))
    order = np.sort(stack, axis=0)
    walls = np.array([wall_of[n] for n in names], dtype=object)[np.argmax(stack, axis=0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = order[-1] / order[-2] if len(names) > 1 else np.full(order[-1].shape, np.inf)
    return walls, margin


class Result:
    """Base of every solver's answer. Subclasses declare ``_units``: field name -> SI unit."""

    _units: dict[str, str] = {}
    _term_unit = "s"  # unit of ``terms`` (time for the Iron Law; USD for a cost breakdown, ...)
    _title = "result"
    __slots__ = ("_v", "_terms", "bottleneck", "margin", "fits", "_verdict", "assumptions", "formula",
                 "inputs", "_extras")

    def __init__(self, values: dict[str, Any], *, terms: dict[str, Any], bottleneck: Wall,
                 margin: Any, fits: Any = True, verdict: Any = "", assumptions: tuple[Assumption, ...] = (),
                 formula: str = "", inputs: dict[str, Any] | None = None, extras: dict[str, Any] | None = None):
        """``extras`` holds named payloads beyond the scalar fields (tables of rows, a base value), read as
        attributes (``result.feasible``) and carried through pickling and ``to_dict()``."""
        set_ = object.__setattr__  # the class refuses plain assignment (results are frozen)
        set_(self, "_v", values)
        set_(self, "_terms", terms)
        set_(self, "_extras", extras or {})
        set_(self, "bottleneck", bottleneck)
        set_(self, "margin", margin)
        set_(self, "fits", fits)
        set_(self, "_verdict", verdict)
        set_(self, "assumptions", assumptions if type(assumptions) is tuple else tuple(assumptions))
        set_(self, "formula", formula)
        set_(self, "inputs", inputs or {})

    def __getattr__(self, name: str):
        units = type(self)._units
        if name in units:
            return Q_(self._v[name], units[name])
        if not name.startswith("_") and name in self._extras:
            return self._extras[name]
        raise AttributeError(f"{type(self).__name__} has no field {name!r}; fields: {', '.join(units)}")

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(type(self)._units))

    def __reduce__(self):
        return _rebuild, (type(self), self._v, self._terms, self.bottleneck, self.margin, self.fits,
                          self.verdict, self.assumptions, self.formula, self.inputs, self._extras)

    @property
    def verdict(self) -> str:
        """The answer in one sentence ("fits: needs 69 GB of 80 GB"); formatted on first read."""
        if callable(self._verdict):
            object.__setattr__(self, "_verdict", self._verdict())
        return self._verdict

    @property
    def terms(self) -> dict[str, Any]:
        """Named contributions to the answer (Iron Law time terms, cost items, ...), as quantities."""
        return {k: Q_(v, self._term_unit) for k, v in self._terms.items()}

    @property
    def fields(self) -> list[str]:
        return list(type(self)._units)

    # -------------------------------------------------------------------------------- presenting
    def explain(self) -> str:
        """The answer in words: the formula, each term, the binding wall, and every assumption used."""
        lines = [f"{self._title}: {self.verdict}" if self.verdict else self._title]
        if self.formula:
            lines.append(f"  formula: {self.formula}")
        for name in self.fields:
            lines.append(f"  {name:<22} {_show(self._v[name], type(self)._units[name])}")
        if self._terms:
            lines.append("  terms:")
            for name, value in self._terms.items():
                lines.append(f"    {name:<20} {_show(value, self._term_unit)}")
        lines.append(f"  binding wall: {_plain(self.bottleneck)}"
                     + (f" (x{_num(self.margin)} ahead of the next)" if _scalar(self.margin) else ""))
        if self.assumptions:
            lines.append("  assumptions:")
            lines.extend(f"    - {a}" for a in self.assumptions)
        return "\n".join(lines)

    def __repr__(self) -> str:
        head = ", ".join(f"{k}={_show(self._v[k], u)}" for k, u in list(type(self)._units.items())[:4])
        return f"<{type(self).__name__} {head}, bottleneck={_plain(self.bottleneck)!r}>"

    def _repr_markdown_(self) -> str:
        rows = [f"| {k} | {_show(self._v[k], u)} |" for k, u in type(self)._units.items()]
        rows += [f"| term: {k} | {_show(v, self._term_unit)} |" for k, v in self._terms.items()]
        head = f"**{self._title}**" + (f": {self.verdict}" if self.verdict else "")
        return "\n".join([head, "", f"Binding wall: **{_plain(self.bottleneck)}**", "",
                          "| quantity | value |", "|---|---|", *rows, "",
                          f"`{self.formula}`" if self.formula else ""])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: each field as {value, unit} in SI, plus terms, wall and assumptions."""
        return {
            "kind": type(self).__name__,
            "fields": {k: {"value": _jsonable(self._v[k]), "unit": u} for k, u in type(self)._units.items()},
            "terms": {k: {"value": _jsonable(v), "unit": self._term_unit} for k, v in self._terms.items()},
            "bottleneck": _jsonable(self.bottleneck), "margin": _jsonable(self.margin),
            "fits": _jsonable(self.fits), "verdict": self.verdict, "formula": self.formula,
            "assumptions": [{"name": a.name, "value": a.value, "source": a.source} for a in self.assumptions],
            "inputs": {k: str(v) for k, v in self.inputs.items()},
            **{name: _extra_json(value) for name, value in self._extras.items()},
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def _rebuild(cls, v, terms, bottleneck, margin, fits, verdict, assumptions, formula, inputs, extras=None):
    return cls(v, terms=terms, bottleneck=bottleneck, margin=margin, fits=fits, verdict=verdict,
               assumptions=assumptions, formula=formula, inputs=inputs, extras=extras)


def row_json(row: dict) -> dict:
    """A table row for JSON: quantities as {value, unit}, NaN and infinities as strings."""
    return {key: _extra_json(value) for key, value in row.items()}


def _extra_json(value):
    import pint

    if isinstance(value, pint.Quantity):
        return {"value": _jsonable(value.magnitude), "unit": f"{value.units:~P}"}
    if isinstance(value, dict):
        return row_json(value)
    if isinstance(value, (list, tuple)):
        return [_extra_json(v) for v in value]
    return _jsonable(value)


def _scalar(x) -> bool:
    return isinstance(x, (int, float, np.floating)) and np.isfinite(x)


def _num(x) -> str:
    return f"{x:.3g}" if _scalar(x) else str(x)


def _plain(x) -> str:
    if isinstance(x, np.ndarray):
        vals = [str(v.value) if isinstance(v, Wall) else str(v) for v in x.ravel()]
        uniq = sorted(set(vals))
        return uniq[0] if len(uniq) == 1 else "varies: " + ", ".join(uniq)
    return str(x)


def _show(value, unit: str) -> str:
    if isinstance(value, np.ndarray):
        return f"array[{value.size}] in {unit or '1'} ({np.nanmin(value):.3g} .. {np.nanmax(value):.3g})"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if not np.isfinite(value):
        return "never" if value > 0 else str(value)
    if unit in ("", "count"):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:.3e}"
    return show(float(value), unit)


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()] if x.dtype != object else [_jsonable(v) for v in x.ravel()]
    if isinstance(x, Wall):
        return x.value
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else ("inf" if x > 0 else str(x))
    if isinstance(x, (np.integer, int)):
        return int(x)
    return x
