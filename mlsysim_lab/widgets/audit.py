"""Check a widget graph: every control is displayed and something listens to it.

The reference labs' most common failure was controls that were created, even wired, but never put
in a layout (175 of them), or displayed but connected to nothing, so moving them changed nothing.
``audit`` finds both, for an instrument or for any hand-built layout.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Mapping

import ipywidgets as W
import traitlets


def _walk(root: W.Widget) -> Iterator[W.Widget]:
    """Every widget reachable from ``root`` through box children (VBox, HBox, Accordion, Tab, ...)."""
    stack, seen = [root], set()
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        stack.extend(getattr(widget, "children", ()) or ())


def _is_control(widget: W.Widget) -> bool:
    """A widget a student operates: it holds a value (and is not a read-only display) or is a button."""
    if isinstance(widget, W.Button):
        return True
    return widget.has_trait("value") and not isinstance(widget, (W.HTML, W.HTMLMath, W.Label, W.Output,
                                                                 W.Valid, W.Image, W.FloatProgress,
                                                                 W.IntProgress))


def _observed(widget: W.Widget) -> bool:
    """Whether a callback outside the widget listens: a ``value`` observer, or a button's click handler.

    A widget's own bookkeeping does not count: observers declared on its class (ipywidgets' selection
    widgets keep ``index`` and ``label`` in step that way) and its own bound methods (a readout).
    """
    if isinstance(widget, W.Button):
        return bool(widget._click_handlers.callbacks)
    handlers = [h for trait in ("value", traitlets.All) for kind in ("change", traitlets.All)
                for h in widget._trait_notifiers.get(trait, {}).get(kind, [])]
    return any(not isinstance(h, traitlets.traitlets.ObserveHandler) and getattr(h, "__self__", None) is not widget
               for h in handlers)


def _name(label: str, widget: W.Widget) -> str:
    described = getattr(widget, "description", "") or ""
    return f"{label} ({type(widget).__name__}{f' {described!r}' if described else ''})"


def audit(target, *, layout: W.Widget | None = None) -> list[str]:
    """Problems in a widget graph, one sentence each; an empty list means every control is displayed
    and observed.

    ``target`` is an instrument (its ``controls`` against its displayed ``widget``), a layout widget
    or an object with a ``widget`` (a ``Prediction``; every control inside must be observed), or a
    list/dict of controls, checked against ``layout`` when given.
    """
    if hasattr(target, "controls") and hasattr(target, "widget"):  # an instrument; its fixed controls are hidden
        fixed = getattr(target, "fixed", ())
        controls, root = {k: w for k, w in target.controls.items() if k not in fixed}, target.widget
    elif isinstance(getattr(target, "widget", None), W.Widget):  # a Prediction, or any object showing one
        controls, root = {}, target.widget
    elif isinstance(target, W.Widget):
        controls, root = {}, target
    elif isinstance(target, Mapping):
        controls, root = dict(target), layout
    elif isinstance(target, Iterable):
        controls, root = {f"#{i}": w for i, w in enumerate(target)}, layout
    else:
        raise TypeError(f"audit(): expected an instrument, a widget, or controls; got {type(target).__name__}")
    displayed = {id(w): w for w in _walk(root)} if root is not None else None
    named = {id(w) for w in controls.values()}
    problems = []
    for label, widget in controls.items():
        if displayed is not None and id(widget) not in displayed:
            problems.append(f"{_name(label, widget)} is created but not displayed in the layout")
        if _is_control(widget) and not _observed(widget):
            problems.append(f"{_name(label, widget)} is not observed by any update callback")
    for widget in (displayed or {}).values():
        if id(widget) not in named and _is_control(widget) and not _observed(widget):
            problems.append(f"{_name('a displayed control', widget)} is not observed by any update callback")
    return problems
