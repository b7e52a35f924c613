"""The answer key's formats: values as JSON, the sealed key of a student notebook, and the answers log.

Three things cross a process boundary and are defined here, once:

* **values** (expected answers, students' answers, function outputs) as small tagged JSON objects:
  ``{"q": [2.1, "millisecond"]}`` a number with its unit, ``{"s": "B"}`` a text or letter, ``{"r": "..."}``
  something that is not an answer (shown back as "could not read ...").
* the **sealed key** that ``mlsysim-lab assign`` writes into each exercise cell of a student notebook
  (``exercise("q1", key="mlsl1:...")``): the exercise's public spec and the expected answer of every
  variant, compressed and XOR-ed with a keystream derived from a constant in this file. That is
  obfuscation, not encryption: it keeps answers out of sight of anyone *reading* the notebook or this
  package (nothing to grep, nothing to eyeball), not out of reach of someone running code. Choice keys
  are salted hashes, so even an unsealed key names no letter.
* the **answers log**: each ``check()`` appends the raw answer to the file named by ``MLSYSIM_LAB_ANSWERS``
  (set by the grader in a submission's kernel). The grader trusts nothing else from the notebook: it
  re-scores these raw answers in its own process against answers it recomputes from the core.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import zlib
from typing import Any

import numpy as np
import pint

from ..results import Wall
from ..units import Q_, ureg

#: The grader points this at a fresh file in each submission's kernel; check() appends answers to it.
ANSWERS_ENV = "MLSYSIM_LAB_ANSWERS"
#: The prefix and version of a sealed key.
SEAL_PREFIX = "mlsl1:"
#: Not a secret (it is in the package): it only makes a sealed key unreadable without this code.
_PEPPER = b"mlsysim-lab answer key; reading this is not doing the lab"
#: Longest text kept from an answer or a repr (a student can pass anything, including megabytes).
MAX_TEXT = 500
#: Most of the answers log the grader reads, and the longest line it keeps.
MAX_LOG_BYTES = 4_000_000
MAX_LOG_LINE = 20_000


class Unreadable(str):
    """An answer that is not a number, a quantity or a text (a function where a number belongs, a list...):
    its repr, so feedback can say what could not be read."""


def dump_value(value: Any) -> dict:
    """A value as tagged JSON: quantities keep their unit; anything that is not an answer becomes a repr."""
    if isinstance(value, Unreadable):
        return {"r": str(value)[:MAX_TEXT]}
    if isinstance(value, Wall):
        return {"s": value.value}
    if isinstance(value, str):
        return {"s": value[:MAX_TEXT]}
    if isinstance(value, (bool, np.bool_)):
        return {"r": repr(bool(value))}
    if isinstance(value, (int, float, np.integer, np.floating)):
        return {"q": [_finite(float(value)), ""]}
    if isinstance(value, pint.Quantity) and value._REGISTRY is ureg and np.ndim(value.magnitude) == 0 \
            and isinstance(value.magnitude, (int, float, np.integer, np.floating)):
        return {"q": [_finite(float(value.magnitude)), format(value.units, "D")]}
    return {"r": _short_repr(value)}


def load_value(data: Any) -> Any:
    """The inverse of ``dump_value``: a quantity, a string, or an ``Unreadable``."""
    if not isinstance(data, dict) or len(data) != 1:
        return Unreadable(repr(data)[:MAX_TEXT])
    (tag, payload), = data.items()
    if tag == "s" and isinstance(payload, str):
        return payload
    if tag == "q" and isinstance(payload, list) and len(payload) == 2:
        magnitude, unit = payload
        if isinstance(magnitude, str):  # non-finite numbers travel as text
            magnitude = float(magnitude)
        try:
            return Q_(float(magnitude), unit)
        except Exception:  # a forged or damaged log line: pint raises several kinds of parse errors
            return Unreadable(f"{magnitude} {unit}"[:MAX_TEXT])
    return Unreadable(str(payload)[:MAX_TEXT])


def _finite(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a student's object whose __repr__ raises
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


# ------------------------------------------------------------------------------------------ sealing
def _keystream(nonce: bytes, length: int) -> bytes:
    out, block = bytearray(), 0
    while len(out) < length:
        out += hashlib.sha256(_PEPPER + nonce + block.to_bytes(8, "big")).digest()
        block += 1
    return bytes(out[:length])


def seal(data: Any, nonce: str) -> str:
    """JSON-able ``data`` as one line of text that shows none of its contents (see the module docstring)."""
    raw = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 9)
    nonce_bytes = nonce.encode()[:32]
    body = bytes(a ^ b for a, b in zip(raw, _keystream(nonce_bytes, len(raw))))
    return SEAL_PREFIX + base64.urlsafe_b64encode(len(nonce_bytes).to_bytes(1, "big") + nonce_bytes + body).decode()


def unseal(text: str) -> Any:
    """The inverse of ``seal``; ValueError if ``text`` is not a sealed key."""
    if not isinstance(text, str) or not text.startswith(SEAL_PREFIX):
        raise ValueError("not a sealed exercise key (it should start with 'mlsl1:')")
    blob = base64.urlsafe_b64decode(text[len(SEAL_PREFIX):].encode())
    n = blob[0]
    nonce, body = blob[1:1 + n], blob[1 + n:]
    raw = bytes(a ^ b for a, b in zip(body, _keystream(nonce, len(body))))
    return json.loads(zlib.decompress(raw))


def digest(salt: str, exercise_id: str, variant_key: str, choice: str) -> str:
    """A salted hash of a normalized choice: what a student notebook keeps instead of the letter."""
    text = "\x1f".join((salt, exercise_id, variant_key, choice))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------------------ answers log
def record(entry: dict) -> None:
    """Append one line to the answers log, if a grader asked for one; never raises into a student's cell."""
    path = os.environ.get(ANSWERS_ENV)
    if not path:
        return
    try:
        line = json.dumps(entry, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line[:MAX_LOG_LINE] + "\n")
    except OSError:
        pass


def read_log(path) -> tuple[dict[str, list[Any]], list[str]]:
    """Answers per exercise (in the order given) and the student IDs declared, from an answers log.

    Reads at most ``MAX_LOG_BYTES``; a line that is not one of ``record``'s entries (a forged, truncated
    or damaged line) is skipped. What an entry claims beyond the raw answer is ignored.
    """
    answers: dict[str, list[Any]] = {}
    declared: list[str] = []
    try:
        with open(path, "rb") as log:
            text = log.read(MAX_LOG_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return answers, declared
    for line in text.splitlines():
        if len(line) > MAX_LOG_LINE:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("student"), str):
            declared.append(entry["student"][:100])
        elif isinstance(entry.get("id"), str) and "answer" in entry:
            answers.setdefault(entry["id"], []).append(_load_answer(entry["answer"]))
    return answers, declared


def dump_answer(value: Any) -> dict:
    """A student's answer for the log: a value, or for a function exercise its output on every case."""
    if isinstance(value, CaseOutputs):
        return {"cases": [{"e": v.message[:MAX_TEXT]} if isinstance(v, CaseError) else dump_value(v)
                          for v in value]}
    return dump_value(value)


def _load_answer(data: Any) -> Any:
    if isinstance(data, dict) and set(data) == {"cases"} and isinstance(data["cases"], list):
        return CaseOutputs(CaseError(str(c["e"])) if isinstance(c, dict) and set(c) == {"e"} else load_value(c)
                           for c in data["cases"][:1000])
    return load_value(data)


class CaseOutputs(list):
    """A student function's outputs, one per test case (a ``CaseError`` where it raised)."""


class CaseError:
    """What a student's function raised on one case."""

    def __init__(self, message: str):
        self.message = message

    def __eq__(self, other) -> bool:
        return isinstance(other, CaseError) and other.message == self.message

    def __repr__(self) -> str:
        return f"CaseError({self.message!r})"
