"""mlsysim-lab: the Iron Law of ML performance as a small, dimensionally strict physics core.

``import mlsysim_lab as ml`` gives the verbs a student types (``ml.hardware``, ``ml.workload``,
``ml.serve``, ``ml.train``, ``ml.roofline``, ...). Quantities go in and come out as pint quantities of
the package's one registry (``ml.Q_``); results name the wall that binds.
"""
from __future__ import annotations

from .catalog import Catalog, add_catalog, default_catalog, fabric, grid, hardware, node, schema, workload
from .compute import iron_law, roofline
from .errors import CatalogError, InputError, MlsysimError, UnitError, UnknownNameError
from .memory import memory
from .results import Result, Wall
from .serving import serve
from .specs import Cluster, Fabric, Grid, Hardware, Node, SampleWorkload, Transformer, Workload
from .training import cluster, train
from .units import Q_, ureg

__version__ = "0.1.0"

__all__ = [
    # catalog
    "hardware", "workload", "grid", "fabric", "node", "cluster", "add_catalog", "default_catalog",
    "Catalog", "schema",
    # solvers
    "iron_law", "roofline", "memory", "serve", "train",
    # specs and results
    "Hardware", "Workload", "Transformer", "SampleWorkload", "Grid", "Fabric", "Node", "Cluster",
    "Result", "Wall",
    # units and errors
    "Q_", "ureg", "MlsysimError", "InputError", "UnitError", "UnknownNameError", "CatalogError",
    "__version__",
]
