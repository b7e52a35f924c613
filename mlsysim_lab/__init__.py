"""mlsysim-lab: the Iron Law of ML performance as a small, dimensionally strict physics core.

``import mlsysim_lab as ml`` gives one verb per question a student or an engineer asks (``ml.serve``,
``ml.train``, ``ml.roofline``, ``ml.fleet``, ``ml.tco``, ``ml.footprint``, ...), the catalog's nouns
(``ml.hardware``, ``ml.workload``, ``ml.grid``, ...) and the spec classes to build your own. Quantities go in
and come out as pint quantities of the package's one registry (``ml.Q_``); every result names the wall
that binds. The widget layer (``mlsysim_lab.widgets``), the CLI and the MCP server load only when used.
"""
from __future__ import annotations

from .analysis import sensitivity, synthesize
from .catalog import (Catalog, add_catalog, default_catalog, fabric, grid, hardware, node, scenario, schema,
                      workload)
from .compute import iron_law, operator, roofline, weight_streaming
from .data import pipeline, propagation, transfer
from .economics import rent_or_buy, tco, token_cost
from .errors import CatalogError, InputError, MlsysimError, UnitError, UnknownNameError
from .exercises import exercise
from .fleet import fleet, paged_kv, reasoning, speculative
from .memory import memory
from .network import host_transfer
from .power import battery, energy, throttle
from .queueing import batch_formation, pooling, queue
from .reliability import all_up, checkpoint, goodput, mtbf
from .results import Result, Wall
from .scaling import attention, chinchilla, fidelity, quantize
from .scenarios import evaluate
from .serving import serve
from .specs import Cluster, Fabric, Grid, Hardware, Node, SampleWorkload, Scenario, Transformer, Workload
from .sustainability import footprint
from .training import cluster, search, train, weak_scaling
from .units import Q_, ureg

__version__ = "0.1.0"

__all__ = [
    # the catalog: look things up, or bring your own YAML
    "hardware", "workload", "grid", "fabric", "node", "scenario", "cluster", "add_catalog", "default_catalog",
    "Catalog", "schema",
    # node walls: compute, memory bandwidth and capacity, host transfer, weight streaming
    "iron_law", "roofline", "operator", "memory", "serve", "host_transfer", "weight_streaming",
    # training and the fleet: 3D parallelism, layouts, scaling, collectives
    "train", "search", "weak_scaling",
    # algorithm walls: scaling laws, compression, attention
    "chinchilla", "quantize", "fidelity", "attention",
    # data walls: ingest and preprocessing, data gravity, the speed of light
    "pipeline", "transfer", "propagation",
    # operations: serving at scale, queueing, reliability, cost, carbon, power
    "fleet", "paged_kv", "speculative", "reasoning", "queue", "pooling", "batch_formation",
    "mtbf", "all_up", "checkpoint", "goodput", "tco", "rent_or_buy", "token_cost", "footprint",
    "throttle", "energy", "battery",
    # analysis: sensitivity and synthesis; scenario files; exercises
    "sensitivity", "synthesize", "evaluate", "exercise",
    # nouns: specs, results, units, errors
    "Hardware", "Workload", "Transformer", "SampleWorkload", "Grid", "Fabric", "Node", "Cluster", "Scenario",
    "Result", "Wall", "Q_", "ureg",
    "MlsysimError", "InputError", "UnitError", "UnknownNameError", "CatalogError",
    "__version__",
]
