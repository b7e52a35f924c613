"""Per-student variants: each student's inputs are drawn from a hash of the lab's name and the student's ID.

``student("s1234567")`` says who is working; ``v = variant("lab02", hardware=[...], batch=[1, 8, 64])``
draws one option per field for that student, so neighbours get different numbers, and the grader, which
knows each student's ID, draws the same inputs again and recomputes that student's answer from the core.
The draw is a pure function of (name, student ID, field): no random state, no dependence on the Python
version, identical in the student's kernel, in ``mlsysim-lab assign`` and in ``mlsysim-lab grade``.
"""
from __future__ import annotations

import hashlib
import itertools
import os
from typing import Any, Iterator, Mapping

from ..errors import InputError
from .key import record

#: The grader sets this in each submission's kernel: the ID it grades (from the file name), which wins
#: over the ID a notebook declares, so a copied notebook is graded against its copier's inputs.
STUDENT_ENV = "MLSYSIM_LAB_STUDENT"
#: Every combination of a variant's options is precomputed and sealed into the student notebook, so the
#: product of the option counts is bounded.
MAX_VARIANTS = 4096

_declared: str | None = None


def normalize(student_id: Any) -> str:
    """IDs compare without case or surrounding space: " S123 " and "s123" draw the same inputs."""
    return str(student_id).strip().casefold()


def student(id: str) -> str:
    """Say who is working: variants are drawn from this ID. Returns the ID the draws use.

    While a notebook is graded, the grader's ID (from the submission's file name) wins over this one.
    """
    global _declared
    if not isinstance(id, (str, int)) or isinstance(id, bool):
        raise InputError(f"student(): the ID must be a string such as 's1234567', got {id!r}")
    _declared = normalize(id)
    record({"student": _declared})  # the grader compares it with the ID it grades
    return current_student()


def current_student() -> str:
    """The ID variants are drawn for: the grader's, else the notebook's ``student(...)``, else ''."""
    forced = os.environ.get(STUDENT_ENV)
    if forced is not None:
        return normalize(forced)
    return _declared or ""


def declared_student() -> str | None:
    """The ID the notebook itself declared with ``student(...)`` (None if it never did)."""
    return _declared


def seed(name: str, student_id: str) -> int:
    """The 64-bit seed of one student in one variant family: sha256 of the family's name and the ID."""
    digest = hashlib.sha256(f"mlsysim-lab\x1f{name}\x1f{normalize(student_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _index(seed_value: int, field: str, options: int) -> int:
    digest = hashlib.sha256(f"{seed_value}\x1f{field}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % options


_RESERVED = {"name", "fields", "indices", "key", "spec", "draw", "every", "count", "items", "keys", "values",
             "get", "from_spec"}


class Variant(Mapping):
    """One student's inputs: ``v.hardware``, ``v["batch"]``, ``dict(v)``; ``v.key`` names the combination.

    Build it with ``variant(name, **fields)``; an exercise with ``variant=v`` computes its answer with
    ``answer(v)`` for whichever student is being checked or graded.
    """

    def __init__(self, name: str, fields: Mapping[str, tuple], indices: tuple[int, ...]):
        self.name, self.fields, self.indices = name, dict(fields), tuple(indices)
        self._values = {f: opts[i] for (f, opts), i in zip(self.fields.items(), self.indices)}

    @property
    def key(self) -> str:
        """The combination as text ("1,0,2"): how answer keys index the expected answers."""
        return ",".join(map(str, self.indices))

    @property
    def count(self) -> int:
        """How many combinations the family has."""
        n = 1
        for opts in self.fields.values():
            n *= len(opts)
        return n

    def __getitem__(self, field: str) -> Any:
        return self._values[field]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, field: str) -> Any:
        values = self.__dict__.get("_values", {})
        if field in values:
            return values[field]
        raise AttributeError(f"variant {self.__dict__.get('name')!r} has no input {field!r}; "
                             f"it has: {', '.join(values)}")

    def draw(self, student_id: str) -> "Variant":
        """The same family drawn for another student."""
        s = seed(self.name, student_id)
        return Variant(self.name, self.fields, tuple(_index(s, f, len(o)) for f, o in self.fields.items()))

    def every(self) -> Iterator["Variant"]:
        """Every combination of the family, in a fixed order (what ``assign`` precomputes and seals)."""
        for indices in itertools.product(*(range(len(o)) for o in self.fields.values())):
            yield Variant(self.name, self.fields, indices)

    def spec(self) -> dict:
        """The family as JSON-ready data: its name and [input, options] pairs in order (no student's draw)."""
        return {"name": self.name, "fields": [[f, list(o)] for f, o in self.fields.items()]}

    @classmethod
    def from_spec(cls, spec: Mapping, indices: tuple[int, ...] | None = None) -> "Variant":
        fields = {f: tuple(o) for f, o in spec["fields"]}
        return cls(spec["name"], fields, indices if indices is not None else (0,) * len(fields))

    def __eq__(self, other) -> bool:
        return isinstance(other, Variant) and (self.name, self.fields, self.indices) == \
            (other.name, other.fields, other.indices)

    __hash__ = None

    def __repr__(self) -> str:
        inputs = ", ".join(f"{f}={v!r}" for f, v in self._values.items())
        return f"Variant({self.name!r}: {inputs})"

    def _repr_markdown_(self) -> str:
        who = current_student()
        rows = "\n".join(f"| {f} | {v} |" for f, v in self._values.items())
        note = f"drawn for student **{who}**" if who else \
            "drawn for no student yet: call `student('your ID')` first, or your numbers will not be yours"
        return f"Your inputs ({note}):\n\n| input | value |\n|---|---|\n{rows}"


def variant(name: str, **fields) -> Variant:
    """Draw one option per field for the current student (see ``student``).

    Parameters
    ----------
    name : str  the family's name, e.g. the lab ("lab02"): it salts the draw, so two labs with the same
        options give a student different combinations
    **fields : sequence of str, int, float or bool  the options of each input, e.g.
        ``hardware=["H100 SXM", "A100 SXM 80GB"], batch=[1, 8, 64]``

    Returns
    -------
    Variant  a read-only mapping with attribute access (``v.hardware``)
    """
    where = "variant()"
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: the family needs a name, e.g. variant('lab02', batch=[1, 8])")
    if not fields:
        raise InputError(f"{where}: give at least one input with its options, e.g. batch=[1, 8, 64]")
    clean = {}
    for field, options in fields.items():
        if field in _RESERVED or field.startswith("_"):
            raise InputError(f"{where}: {field!r} is a reserved name; call the input something else")
        if isinstance(options, (str, bytes)) or not hasattr(options, "__iter__"):
            raise InputError(f"{where}: {field!r} needs a list of options, got {options!r}")
        options = tuple(options)
        if not options:
            raise InputError(f"{where}: {field!r} has no options")
        for option in options:
            if not isinstance(option, (str, int, float, bool)):
                raise InputError(f"{where}: options are strings or numbers (quantities as '80 GB'); "
                                 f"{field!r} has {option!r}")
        clean[field] = options
    family = Variant(name, clean, (0,) * len(clean))
    if family.count > MAX_VARIANTS:
        raise InputError(f"{where}: {family.count} combinations; at most {MAX_VARIANTS} (every one is "
                         "precomputed for the student notebook): offer fewer options")
    return family.draw(current_student())
