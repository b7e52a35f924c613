"""Moving bytes between devices: the alpha-beta cost of collectives over a fabric.

A message of ``m`` bytes over a link costs ``alpha + m / beta`` (latency plus bytes over bandwidth,
Hockney 1994). Ring all-reduce over ``n`` ranks sends 2(n-1)/n of the message per rank in 2(n-1) steps
(Patarasuk & Yuan 2009), the bandwidth-optimal schedule NCCL uses for large messages; trees win for
small messages. All-gather and reduce-scatter are each half a ring all-reduce; all-to-all sends (n-1)/n
of a rank's data. Topologies change the per-GPU bandwidth a collective sees (oversubscribed fat trees,
dragonfly global links) and the number of latency steps (a torus runs one ring per dimension).
"""
from __future__ import annotations

import math

import numpy as np

from . import catalog
from .efficiency import Assumption
from .errors import InputError
from .results import Result, Wall
from .specs import Cluster, Hardware
from .units import to_si

ACTIVATION_BYTES = 2.0  # activations and their gradients travel in 16-bit

#: Latency per step of a collective over a scale-up link when the catalog gives no fabric.
DEFAULT_LINK_LATENCY = Assumption(
    "scale-up link latency (s)", 3e-6,
    "small-message latency of NVLink/PCIe collectives is a few microseconds (NCCL tests report ~5-10 us "
    "for 8-GPU all-reduce of small messages, i.e. 1-3 us per ring step); provisional")


def _scalars(*xs) -> bool:
    """True when no argument is an array (plain-float arithmetic then beats numpy's by ~1 us per op)."""
    for x in xs:
        t = type(x)
        if t is not float and t is not int and not isinstance(x, (int, float)):
            return False
    return True


def ring_allreduce_time(message_bytes, n, bandwidth, latency):
    """Ring all-reduce: 2(n-1)/n x message / bandwidth + 2(n-1) x latency; zero for one rank."""
    if _scalars(message_bytes, n, bandwidth, latency):
        return 2.0 * (n - 1.0) / n * message_bytes / bandwidth + 2.0 * (n - 1.0) * latency
    n = np.asarray(n, dtype=float)
    t = 2.0 * (n - 1.0) / n * message_bytes / bandwidth + 2.0 * (n - 1.0) * latency
    return t if t.ndim else float(t)


def tree_allreduce_time(message_bytes, n, bandwidth, latency):
    """Tree all-reduce (reduce up, broadcast down a binary tree): 2 ceil(log2 n) x latency plus, with
    pipelining, about 2 x message / bandwidth (NCCL double binary trees; Sanders et al. 2009)."""
    if _scalars(message_bytes, n, bandwidth, latency):
        return 2.0 * math.ceil(math.log2(n)) * latency + 2.0 * message_bytes / bandwidth if n > 1 else 0.0
    n = np.asarray(n, dtype=float)
    steps = np.ceil(np.log2(np.maximum(n, 1.0)))
    t = np.where(n > 1, 2.0 * steps * latency + 2.0 * message_bytes / bandwidth, 0.0)
    return t if t.ndim else float(t)


def allreduce_time(message_bytes, n, bandwidth, latency):
    """All-reduce with the faster of ring (large messages) and tree (small messages), as NCCL picks."""
    if _scalars(message_bytes, n, bandwidth, latency):
        return min(ring_allreduce_time(message_bytes, n, bandwidth, latency),
                   tree_allreduce_time(message_bytes, n, bandwidth, latency))
    return np.minimum(ring_allreduce_time(message_bytes, n, bandwidth, latency),
                      tree_allreduce_time(message_bytes, n, bandwidth, latency))


def all_gather_time(message_bytes, n, bandwidth, latency):
    """All-gather (or reduce-scatter) of a ``message_bytes`` result: (n-1)/n x message / bandwidth +
    (n-1) x latency, half a ring all-reduce (Thakur, Rabenseifner & Gropp 2005)."""
    if _scalars(message_bytes, n, bandwidth, latency):
        return (n - 1.0) / n * message_bytes / bandwidth + (n - 1.0) * latency
    n = np.asarray(n, dtype=float)
    t = (n - 1.0) / n * message_bytes / bandwidth + (n - 1.0) * latency
    return t if t.ndim else float(t)


reduce_scatter_time = all_gather_time


def all_to_all_time(message_bytes, n, bandwidth, latency):
    """All-to-all where each rank holds ``message_bytes`` and keeps 1/n: (n-1)/n x message / bandwidth
    + (n-1) x latency (pairwise exchange; Thakur et al. 2005)."""
    return all_gather_time(message_bytes, n, bandwidth, latency)


def hierarchical_allreduce_time(message_bytes, n_inner, n_outer, inner_bw, inner_lat, outer_bw, outer_lat):
    """Two-level all-reduce (NCCL's tree/ring across nodes): reduce-scatter inside each node, all-reduce
    of the 1/n_inner shard across nodes, all-gather inside the node."""
    inner = 2.0 * all_gather_time(message_bytes, n_inner, inner_bw, inner_lat)
    outer_msg = message_bytes / (n_inner if _scalars(n_inner) else np.asarray(n_inner, dtype=float))
    return inner + allreduce_time(outer_msg, n_outer, outer_bw, outer_lat)


#: Global-link taper of a balanced dragonfly: each router has p terminals and h = p/2 global links
#: (a = 2p = 2h; Kim, Dally, Scott & Abts, "Technology-Driven, Highly-Scalable Dragonfly Topology",
#: ISCA 2008, sec. 3.1), so traffic leaving a group sees h/p = 1/2 of injection bandwidth.
DRAGONFLY_GLOBAL_TAPER = 0.5


def topology_factors(topology: str, gpus, per_node):
    """(bandwidth factor, latency-step factor) a cross-node collective sees on a topology.

    fat-tree: full bisection unless oversubscribed (applied separately); dragonfly: global links taper
    bandwidth to 1/2; torus: a 3-D torus runs one ring per dimension, so a ring all-reduce takes
    3 (n^(1/3) - 1) latency steps instead of n - 1; nvlink-domain: one switch hop, no taper.
    """
    if topology == "dragonfly":
        return DRAGONFLY_GLOBAL_TAPER, 1.0
    if topology == "torus":
        n = np.asarray(gpus, dtype=float)
        return 1.0, np.where(n > 1, 3.0 * (np.cbrt(n) - 1.0) / np.maximum(n - 1.0, 1.0), 1.0)
    return 1.0, 1.0


class TransferResult(Result):
    _title = "host transfer"
    _units = {"time": "s", "bytes": "B", "bandwidth": "B/s"}


def host_transfer(hardware, *, bytes, bandwidth=None) -> TransferResult:
    """Time to move ``bytes`` between host memory and the device over its host link (PCIe), e.g. a cold
    start loading 140 GB of weights over PCIe 5.0 x16 (64 GB/s per direction) takes ~2.2 s.

    Parameters
    ----------
    hardware : Hardware | str  (its ``host_bandwidth`` per direction is used unless ``bandwidth`` is given)
    bytes : Quantity[information]
    bandwidth : Quantity[information/time], optional
    """
    where = "host_transfer()"
    hw = catalog.hardware(hardware)
    nbytes = to_si(bytes, "information", name="bytes", where=where, allow_zero=True)
    if bandwidth is not None:
        bw = to_si(bandwidth, "bandwidth", name="bandwidth", where=where)
    elif hw._f.host_bandwidth is not None:
        bw = hw._f.host_bandwidth
    else:
        raise InputError(f"{where}: {hw.name} has no host_bandwidth in the catalog; pass bandwidth=")
    t = nbytes / bw
    return TransferResult(dict(time=t, bytes=nbytes, bandwidth=bw), terms=dict(transfer=t),
                          bottleneck=Wall.HOST_TRANSFER, margin=float("inf"),
                          formula="T = bytes / host link bandwidth (per direction)", inputs=dict(hardware=hw))


def scale_up_link(hw: Hardware, fabric=None) -> tuple[float, float, tuple[Assumption, ...]]:
    """(bandwidth per direction, latency) of the link joining devices inside a node.

    Uses ``fabric`` if given, else the catalog node that holds ``hw`` (e.g. DGX H100 -> NVLink 4), else
    the device's own interconnect figure with a default latency.
    """
    if fabric is not None:
        fab = catalog.fabric(fabric)
        return fab._f.bandwidth, fab._f.latency, ()
    node = catalog.default_catalog().node_for(hw.name)
    if node is not None and node.intra_fabric:
        fab = catalog.fabric(node.intra_fabric)
        return fab._f.bandwidth, fab._f.latency, ()
    bw = hw._f.interconnect or hw._f.host_bandwidth
    if bw is None:
        raise InputError(f"{hw.name} has no interconnect or host bandwidth in the catalog; pass fabric= "
                         "(e.g. 'PCIe 4.0 x16') to split a model across devices")
    return bw, DEFAULT_LINK_LATENCY.value, (DEFAULT_LINK_LATENCY,)


def intra_link(c: Cluster) -> tuple[float, float]:
    """(bandwidth per direction, latency) between two GPUs of the same node."""
    if c.intra_fabric is not None:
        return c.intra_fabric._f.bandwidth, c.intra_fabric._f.latency
    if c.per_node == 1:
        return float("inf"), 0.0
    bw, lat, _ = scale_up_link(c.accelerator)
    return bw, lat


def inter_link(c: Cluster) -> tuple[float, float]:
    """(bandwidth per GPU per direction, latency) for traffic leaving a node: the GPU's share of the
    node's NICs, divided by the oversubscription ratio and the topology's global taper."""
    if c.nodes == 1 or c.inter_fabric is None:
        return intra_link(c)
    taper, _ = topology_factors(c.topology, c.gpus, c.per_node)
    per_gpu = c.inter_fabric._f.bandwidth * c.nics_per_node / c.per_node / c.oversubscription * taper
    return per_gpu, c.inter_fabric._f.latency
