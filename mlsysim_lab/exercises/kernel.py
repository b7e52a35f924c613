"""Run a notebook on a fresh kernel (nbclient): one time budget for the whole notebook, outputs dropped.

Used by ``author`` (the instructor notebook, which must run clean) and ``grade`` (a student's, which may
do anything). Whatever the notebook does, ``run`` returns: a cell that raises is noted and the next one
runs; a notebook past its budget is interrupted by killing its kernel; a dead kernel is a reason, not a
crash; printed megabytes are received and dropped (the grader needs no output: answers travel through the
answers log). Needs the grade extra (nbclient, nbformat, ipykernel).
"""
from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field

try:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
except ImportError as err:  # pragma: no cover - exercised by an install without the grade extra
    raise ImportError(f"assigning and grading notebooks needs the grade extra ({err.name} is missing): "
                      "pip install 'mlsysim-lab[grade]'") from err

#: Seconds a kernel may take to start (not counted in the notebook's budget).
STARTUP_TIMEOUT = 120
#: Variables the runner sets itself in a kernel; a value inherited from the caller's shell is dropped.
OWN_ENV = ("MLSYSIM_LAB_STUDENT", "MLSYSIM_LAB_ANSWERS")


@dataclass
class Run:
    """What happened: the cells that raised (cell number from 1, error), why execution stopped early (or
    None when every cell ran), and the seconds it took."""

    errors: list[tuple[int, str]] = field(default_factory=list)
    stopped: str | None = None
    seconds: float = 0.0

    def problems(self, most: int = 3) -> str:
        """The notebook's problems in one line ('' if none)."""
        parts = [self.stopped] if self.stopped else []
        parts += [f"cell {n} raised {error}" for n, error in self.errors[:most]]
        if len(self.errors) > most:
            parts.append(f"{len(self.errors) - most} more cells raised")
        return "; ".join(parts)


class _QuietClient(NotebookClient):
    """Drops every output as it arrives: a notebook printing megabytes costs time, not memory."""

    def output(self, outs, msg, display_id, cell_index):
        return None


def _first_line(cell) -> str:
    """The cell's first line of code that says what it does (not a comment, not a sealed key)."""
    lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    line = next((ln for ln in lines if "mlsl1:" not in ln), lines[0] if lines else "")
    return line if len(line) <= 60 else line[:57] + "..."


def _cancel_leftovers() -> None:
    """Cancel the tasks nbclient leaves on this thread's loop after a timeout (else asyncio complains at exit)."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending and not loop.is_running():
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    except Exception:  # best effort: nothing here may turn a graded notebook into a crash
        pass


def run(nb: "nbformat.NotebookNode", *, budget: float, cwd: str, env: dict[str, str] | None = None,
        allow_errors: bool = True, kernel_name: str = "python3") -> Run:
    """Execute ``nb`` (in place) on a fresh ``kernel_name`` kernel started in ``cwd`` with ``env`` added to
    this process's environment; stop at ``budget`` seconds for all cells together.

    With ``allow_errors=False`` the first cell that raises stops the run (its error is in ``stopped``), as an
    instructor notebook must run clean; cells tagged ``raises-exception`` may raise either way.
    """
    outcome = Run()
    state = {"deadline": math.inf, "cell": None}
    kernel_env = {k: v for k, v in os.environ.items() if k not in OWN_ENV}
    kernel_env.update(env or {})

    def on_start(**_):
        state["deadline"] = time.monotonic() + budget

    def on_execute(cell, cell_index, **_):
        state["cell"] = (cell_index + 1, _first_line(cell))

    def on_error(cell, cell_index, execute_reply, **_):
        content = execute_reply.get("content", {})
        outcome.errors.append((cell_index + 1, f"{content.get('ename', 'an error')}: {content.get('evalue', '')}"
                               .strip()[:300]))

    def cell_timeout(cell):
        return max(1, math.ceil(state["deadline"] - time.monotonic()))

    client = _QuietClient(nb, kernel_name=kernel_name, timeout_func=cell_timeout, allow_errors=allow_errors,
                          interrupt_on_timeout=False, shutdown_kernel="immediate", startup_timeout=STARTUP_TIMEOUT,
                          record_timing=False, on_notebook_start=on_start, on_cell_execute=on_execute,
                          on_cell_error=on_error, resources={"metadata": {"path": cwd}})
    started = time.monotonic()
    where = lambda: f"cell {state['cell'][0]} (`{state['cell'][1]}`)" if state["cell"] else "startup"  # noqa: E731
    try:
        client.execute(env=kernel_env)
    except CellTimeoutError:
        outcome.stopped = f"ran out of time ({budget:g} s for the whole notebook) in {where()}"
    except DeadKernelError:
        outcome.stopped = f"the kernel died in {where()}"
    except CellExecutionError:
        number, error = outcome.errors[-1] if outcome.errors else (0, "an error")
        outcome.stopped = f"{where()} raised {error}"
    except Exception as err:  # nbclient, jupyter_client or zmq failing on a hostile notebook: a reason, never a crash
        outcome.stopped = f"execution failed in {where()}: {type(err).__name__}: {str(err)[:300]}"
    _cancel_leftovers()
    outcome.seconds = time.monotonic() - started
    return outcome
