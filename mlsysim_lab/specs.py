"""The five layers' nouns as validated, frozen pydantic models: demand apart from supply.

Workloads (demand), Hardware (supply), Grid (environment), Fabric and Cluster (topology). Fields hold
pint quantities (read from strings such as ``"3.35 TB/s"``); each spec also keeps ``_f``, the same
numbers as plain floats in the package's SI units (``units.SI``), computed once at validation, which
is all the solvers read. Solvers live in their own modules; specs hold data only.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import InputError
from .units import quantity, si

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8", "int4"]

#: Bytes per stored value for each precision (tf32 is a compute mode; its values are stored as fp32).
BYTES_PER_VALUE: dict[str, float] = {"fp64": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2,
                                      "fp8": 1, "fp4": 0.5, "int8": 1, "int4": 0.5}

Tier = Literal["datacenter", "workstation", "edge", "mobile", "tiny"]


class Spec(BaseModel):
    """Fields every catalog entry shares: a name, optional aliases and the source of its numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    name: str = Field(min_length=1)
    aliases: list[str] = []
    source: str = Field(min_length=3, description="document and table/page the numbers come from")
    sources: dict[str, str] = Field(default_factory=dict,
                                    description="per-field sources where a number comes from another document")
    notes: Optional[str] = None

    def _set_floats(self, **floats) -> None:
        """Keep the SI floats the solvers read as a plain instance attribute (fast to read, unlike a
        pydantic private attribute, whose every access goes through ``__getattr__``)."""
        object.__setattr__(self, "_f", SimpleNamespace(**floats))

    def __hash__(self) -> int:
        """Identity: a frozen spec is its own key (memo.setup), and its list fields do not hash."""
        return id(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------------------------- supply
class Memory(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True)
    capacity: quantity("information")
    bandwidth: quantity("bandwidth")


class Hardware(Spec):
    """One accelerator: dense peak FLOP/s per precision, memory capacity and bandwidth, power, price.

    Peaks are dense (no 2:4 sparsity). ``interconnect`` and ``host_bandwidth`` are per direction.
    """

    vendor: str
    family: str = Field(description="architecture family; selects efficiency defaults (efficiency.py)")
    tier: Tier
    year: Optional[int] = None
    peak: dict[Precision, quantity("throughput")] = Field(min_length=1)
    memory: Memory
    sram: Optional[quantity("information")] = None
    storage: Optional[quantity("information")] = None
    tdp: Optional[quantity("power")] = None
    price: Optional[quantity("currency")] = None
    interconnect: Optional[quantity("bandwidth")] = None
    host_bandwidth: Optional[quantity("bandwidth")] = None
    embodied_carbon: Optional[quantity("carbon")] = None

    def model_post_init(self, _ctx) -> None:
        opt = lambda q, kind: si(q, kind) if q is not None else None  # noqa: E731
        self._set_floats(
            peak={p: si(q, "throughput") for p, q in self.peak.items()},
            capacity=si(self.memory.capacity, "information"),
            bandwidth=si(self.memory.bandwidth, "bandwidth"),
            sram=opt(self.sram, "information"), storage=opt(self.storage, "information"),
            tdp=opt(self.tdp, "power"),
            price=opt(self.price, "currency"), interconnect=opt(self.interconnect, "bandwidth"),
            host_bandwidth=opt(self.host_bandwidth, "bandwidth"),
            embodied_carbon=opt(self.embodied_carbon, "carbon"))

    def peak_for(self, precision: str) -> float:
        """Dense peak in FLOP/s for ``precision``; a clear error if the device has none."""
        try:
            return self._f.peak[precision]
        except KeyError:
            have = ", ".join(self.peak)
            raise InputError(f"{self.name} publishes no {precision} peak; it has {have}") from None


# --------------------------------------------------------------------------------------------- demand
class Workload(Spec):
    """What a model demands, independent of the machine that runs it."""

    family: str
    task: str
    params: quantity("parameters")
    training_tokens: Optional[quantity("tokens")] = None


class Transformer(Workload):
    """A decoder (or encoder) transformer described by its architecture, dense or mixture-of-experts."""

    kind: Literal["transformer"] = "transformer"
    layers: int = Field(gt=0)
    d_model: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: Optional[int] = Field(default=None, gt=0)
    d_ff: int = Field(gt=0)
    gated_mlp: bool = False
    vocab: int = Field(gt=0)
    max_context: int = Field(gt=0)
    tied_embeddings: bool = False
    experts: Optional[int] = Field(default=None, gt=0)
    active_experts: Optional[int] = Field(default=None, gt=0)
    active_params: Optional[quantity("parameters")] = None
    kv_cache_dim: Optional[int] = Field(default=None, gt=0,
                                        description="cached elements per token per layer, if not 2*kv_heads*head_dim")

    @model_validator(mode="after")
    def _consistent(self):
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        moe = (self.experts, self.active_experts, self.active_params)
        if any(v is not None for v in moe) and not all(v is not None for v in moe):
            raise ValueError("a mixture-of-experts model needs experts, active_experts and active_params")
        if self.experts is not None and self.active_experts > self.experts:
            raise ValueError(f"active_experts ({self.active_experts}) exceeds experts ({self.experts})")
        return self

    def model_post_init(self, _ctx) -> None:
        head_dim = self.head_dim or self.d_model // self.heads
        params = si(self.params, "parameters")
        active = si(self.active_params, "parameters") if self.active_params is not None else params
        # The input embedding is a table lookup (no FLOPs); an untied output projection is a matmul.
        lookup = 0.0 if self.tied_embeddings else float(self.vocab * self.d_model)
        expert = shared = 0.0
        if self.experts:
            # params = shared + E*e and active = shared + k*e  =>  e = (params - active) / (E - k)
            expert = (params - active) / (self.experts - self.active_experts) if self.experts > self.active_experts else 0.0
            shared = params - self.experts * expert
        self._set_floats(
            params=params, active=active, matmul_active=active - lookup, matmul_total=params - lookup, head_dim=head_dim,
            d_attn=float(self.heads * head_dim), layers=float(self.layers), d_model=float(self.d_model),
            kv_dim=float(self.kv_cache_dim or 2 * self.kv_heads * head_dim),
            experts=float(self.experts or 0), top_k=float(self.active_experts or 0),
            expert_params=expert, shared_params=shared)

    @property
    def is_moe(self) -> bool:
        return self.experts is not None


class SampleWorkload(Workload):
    """A model given by its per-sample cost (CNNs, recommenders, tiny models): FLOPs and bytes per sample."""

    kind: Literal["cnn", "recsys", "other"]
    flops_per_sample: quantity("compute")
    layers: Optional[int] = Field(default=None, gt=0, description="kernel-launching layers per forward pass")
    input_shape: Optional[list[int]] = None
    input_bytes: Optional[quantity("information", allow_zero=True)] = None
    activation_bytes: Optional[quantity("information", allow_zero=True)] = None

    def model_post_init(self, _ctx) -> None:
        self._set_floats(
            params=si(self.params, "parameters"), flops=si(self.flops_per_sample, "compute"),
            layers=float(self.layers or 0),
            input_bytes=si(self.input_bytes, "information") if self.input_bytes is not None else 0.0,
            activation_bytes=(si(self.activation_bytes, "information")
                              if self.activation_bytes is not None else 0.0))


# ---------------------------------------------------------------------------------------- environment
class Grid(Spec):
    """Where the electricity comes from: carbon intensity, datacenter PUE and WUE, price."""

    region: str
    year: Optional[int] = None
    carbon_intensity: quantity("carbon_intensity", allow_zero=True)
    pue: float = Field(ge=1.0, le=3.0, description="power usage effectiveness (facility / IT energy)")
    wue: Optional[quantity("water_intensity", allow_zero=True)] = None
    electricity_price: Optional[quantity("energy_price")] = None

    def model_post_init(self, _ctx) -> None:
        self._set_floats(
            carbon=si(self.carbon_intensity, "carbon_intensity"), pue=self.pue,
            wue=si(self.wue, "water_intensity") if self.wue is not None else None,
            price=si(self.electricity_price, "energy_price") if self.electricity_price is not None else None)


# ------------------------------------------------------------------------------------------- topology
class Fabric(Spec):
    """A link technology: bandwidth per direction per device endpoint, and small-message latency."""

    kind: Literal["nvlink", "infinity-fabric", "infiniband", "roce", "ethernet", "pcie", "ici"]
    scope: Literal["scale-up", "scale-out", "host"]
    bandwidth: quantity("bandwidth")
    bidirectional: Optional[quantity("bandwidth")] = None
    latency: quantity("time")

    def model_post_init(self, _ctx) -> None:
        self._set_floats(bandwidth=si(self.bandwidth, "bandwidth"), latency=si(self.latency, "time"))


class Node(Spec):
    """A server as sold: N accelerators joined by a scale-up fabric, with NICs to the scale-out network."""

    accelerator: str
    accelerators: int = Field(gt=0)
    intra_fabric: Optional[str] = None
    inter_fabric: Optional[str] = None
    nics: int = Field(default=0, ge=0)
    power: Optional[quantity("power")] = None
    price: Optional[quantity("currency")] = None


class Cluster(BaseModel):
    """The system a workload runs on: ``nodes`` x ``per_node`` accelerators, a scale-up fabric inside a
    node and a scale-out network between nodes (``nics_per_node`` ports, ``oversubscription`` : 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    def __hash__(self) -> int:
        """Identity, as for catalog specs (memo.setup keys)."""
        return id(self)

    accelerator: Hardware
    per_node: int = Field(gt=0)
    nodes: int = Field(default=1, gt=0)
    intra_fabric: Optional[Fabric] = None
    inter_fabric: Optional[Fabric] = None
    nics_per_node: int = Field(default=0, ge=0)
    topology: Literal["fat-tree", "torus", "dragonfly", "nvlink-domain"] = "fat-tree"
    oversubscription: float = Field(default=1.0, ge=1.0)
    name: Optional[str] = None

    @model_validator(mode="after")
    def _network(self):
        if self.nodes > 1 and (self.inter_fabric is None or self.nics_per_node == 0):
            raise ValueError(f"a cluster of {self.nodes} nodes needs an inter_fabric and nics_per_node > 0")
        return self

    @property
    def gpus(self) -> int:
        """Accelerators in the whole cluster."""
        return self.per_node * self.nodes

    def __repr__(self) -> str:
        name = f"{self.name}, " if self.name else ""
        return f"Cluster({name}{self.nodes} x {self.per_node} {self.accelerator.name})"

    def __str__(self) -> str:
        return repr(self)


# ------------------------------------------------------------------------------------------ scenarios
class Scenario(Spec):
    """A question with its inputs, as a file an agent or a lab can evaluate: which workload, on what,
    where, and the parameters (quantity strings such as "1000 req/s" or plain numbers), each sourced."""

    question: Literal["serve", "train", "fleet", "cost", "carbon", "reasoning", "roofline", "memory"]
    workload: Optional[str] = None
    hardware: Optional[str] = None
    system: Optional[str] = None
    grid: Optional[str] = None
    inputs: dict[str, Union[str, float, int, bool]] = Field(default_factory=dict)


class Measurement(Spec):
    """A published measurement with its full setup, for validating the core against reality: which run
    (workload, hardware, GPUs, layout and inputs passed to the solver), what was reported (``published``:
    metric name -> value, quantities as strings), and whether it calibrates the defaults or is held out."""

    question: Literal["train", "serve", "inference", "carbon"]
    workload: str
    hardware: str
    gpus: int = Field(default=1, gt=0)
    inputs: dict[str, Union[str, float, int, bool]] = Field(default_factory=dict)
    published: dict[str, Union[str, float]] = Field(min_length=1)
    split: Literal["calibration", "holdout"]
    convention: Optional[str] = Field(default=None, description="which FLOPs and which peak a published MFU counts")
