"""The catalog: hardware, workloads, grids, fabrics and nodes read from YAML ("bring your own YAML").

Each YAML file says what it holds (``kind: hardware`` and a list of ``entries``). Files are loaded with
``yaml.safe_load``, every entry is validated by its pydantic model, and a file that does not validate is
refused with the file, line, entry, field and what was expected. User files merge into the built-in
catalog; a name that already exists is an error unless ``override=True``. Set ``MLSYSIM_LAB_CATALOG``
(paths separated by ``os.pathsep``) to add your own files to the default catalog everywhere.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union

from pydantic import Field, TypeAdapter, ValidationError, create_model

from . import memo
from .errors import CatalogError, UnknownNameError, _fold
from .specs import Fabric, Grid, Hardware, Measurement, Node, SampleWorkload, Scenario, Spec, Transformer

_WORKLOAD = Annotated[Union[Transformer, SampleWorkload], Field(discriminator="kind")]
KINDS: dict[str, Any] = {"hardware": Hardware, "workload": _WORKLOAD, "grid": Grid, "fabric": Fabric,
                         "node": Node, "scenario": Scenario, "measurement": Measurement}


@functools.cache
def _adapter(kind: str) -> TypeAdapter:
    """The validator of one kind of entry, built on first use: building the pydantic schemas costs ~50 ms,
    which ``import mlsysim_lab`` need not pay (the specs defer theirs too)."""
    return TypeAdapter(KINDS[kind])


def builtin_catalog_dir() -> Path:
    """The shipped catalog: inside the installed package, or the repository's ``catalog/`` folder."""
    here = Path(__file__).resolve().parent
    packaged = here / "_catalog"
    return packaged if packaged.is_dir() else here.parent / "catalog"


class Catalog:
    """Named specs of every kind, looked up case-, space- and dash-insensitively, aliases included."""

    def __init__(self) -> None:
        self._node_of: dict[str, Node | None] = {}
        self._hits: dict[tuple[str, str], Spec] = {}  # (kind, name as typed) -> entry: lookups in a loop
        self._specs: dict[str, dict[str, Spec]] = {kind: {} for kind in KINDS}
        self._index: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
        self._origin: dict[tuple[str, str], str] = {}

    @classmethod
    def load(cls, *paths: str | os.PathLike, override: bool = False) -> "Catalog":
        """A catalog made of the given files or folders (folders are read recursively, in name order)."""
        cat = cls()
        for path in paths:
            cat.add(path, override=override)
        return cat

    # ------------------------------------------------------------------------------------ loading
    def add(self, path: str | os.PathLike, *, override: bool = False) -> "Catalog":
        """Merge a YAML file, or every ``*.yaml``/``*.yml`` under a folder, into this catalog."""
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files = [path]
        else:
            raise CatalogError(f"{path}: no such catalog file or folder")
        self._node_of.clear()
        self._hits.clear()
        memo.forget()
        for file in files:
            for kind, spec in read_file(file):
                self._insert(kind, spec, str(file), override)
        self._hits.clear()
        memo.forget()
        self._check_references()
        return self

    def _insert(self, kind: str, spec: Spec, origin: str, override: bool) -> None:
        keys = list(dict.fromkeys([_fold(spec.name)] + [_fold(a) for a in spec.aliases]))
        index = self._index[kind]
        clashes = {index[k] for k in keys if k in index}
        if clashes and not override:
            other = sorted(clashes)[0]
            raise CatalogError(f"{origin}: {kind} {spec.name!r} clashes with {other!r} from "
                               f"{self._origin[(kind, other)]}; rename it, or load with override=True "
                               "to replace the existing entry")
        for old in clashes:
            self._remove(kind, old)
        index = self._index[kind]
        self._specs[kind][spec.name] = spec
        for k in keys:
            index[k] = spec.name
        self._origin[(kind, spec.name)] = origin

    def _remove(self, kind: str, name: str) -> None:
        del self._specs[kind][name]
        self._index[kind] = {k: v for k, v in self._index[kind].items() if v != name}
        del self._origin[(kind, name)]

    def _check_references(self) -> None:
        for m in self._specs["measurement"].values():
            where = self._origin[("measurement", m.name)]
            for kind, ref in (("workload", m.workload), ("hardware", m.hardware)):
                if _fold(ref) not in self._index[kind]:
                    raise CatalogError(f"{where}: measurement {m.name!r} refers to "
                                       f"{UnknownNameError(kind, ref, self.names(kind))}")
        for sc in self._specs["scenario"].values():
            where = self._origin[("scenario", sc.name)]
            for kind, ref in (("workload", sc.workload), ("hardware", sc.hardware), ("node", sc.system),
                              ("grid", sc.grid)):
                if ref is not None and _fold(ref) not in self._index[kind]:
                    raise CatalogError(f"{where}: scenario {sc.name!r} refers to "
                                       f"{UnknownNameError(kind, ref, self.names(kind))}")
        for node in self._specs["node"].values():
            where = self._origin[("node", node.name)]
            for kind, ref in (("hardware", node.accelerator), ("fabric", node.intra_fabric),
                              ("fabric", node.inter_fabric)):
                if ref is not None and _fold(ref) not in self._index[kind]:
                    err = UnknownNameError(kind, ref, self.names(kind))
                    raise CatalogError(f"{where}: node {node.name!r} refers to {err}")

    # ------------------------------------------------------------------------------------ lookup
    def get(self, kind: str, name: str) -> Spec:
        """The entry called ``name`` (or an alias); an unknown name lists the closest matches."""
        try:
            return self._hits[kind, name]
        except (KeyError, TypeError):  # first lookup of this spelling, or an unhashable name
            pass
        if kind not in KINDS:
            raise UnknownNameError("catalog kind", kind, list(KINDS))
        if not isinstance(name, str):
            raise CatalogError(f"a {kind} name must be a string, got {name!r}")
        try:
            spec = self._hits[kind, name] = self._specs[kind][self._index[kind][_fold(name)]]
            return spec
        except KeyError:
            known = list(self._specs[kind]) + [a for s in self._specs[kind].values() for a in s.aliases]
            raise UnknownNameError(kind, name, known) from None

    def node_for(self, accelerator: str) -> Node | None:
        """The first server entry built around ``accelerator`` (the reference server for it), if any."""
        if accelerator not in self._node_of:
            self._node_of[accelerator] = next(
                (n for n in self._specs["node"].values() if n.accelerator == accelerator), None)
        return self._node_of[accelerator]

    def names(self, kind: str) -> list[str]:
        """Canonical names of every entry of ``kind``, in load order."""
        return list(self._specs[kind])

    def entries(self, kind: str) -> Iterator[Spec]:
        return iter(self._specs[kind].values())

    def origin(self, kind: str, name: str) -> str:
        """The file an entry came from."""
        return self._origin[(kind, self.get(kind, name).name)]

    def __len__(self) -> int:
        return sum(len(v) for v in self._specs.values())

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(v)} {k}" for k, v in self._specs.items())
        return f"Catalog({counts})"


def _loader():
    """libyaml's safe loader where PyYAML was built with it (~10x faster than the pure-Python one, which is
    the fallback); yaml is imported on the first catalog read, not by ``import mlsysim_lab``."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, where: Any) -> Any:
    """The data of a YAML document; a syntax error becomes a CatalogError that names ``where``."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as err:
        raise CatalogError(f"{where}: not valid YAML: {err}") from None


def yaml_tree(text: str) -> Any:
    """The node tree of a YAML document, for line numbers in error messages (_line_of); built only when
    there is an error to report."""
    import yaml

    return yaml.compose(text, Loader=_loader())


def read_file(file: str | os.PathLike) -> list[tuple[str, Spec]]:
    """Validate one catalog file; every problem in it is reported at once, with line numbers."""
    file = Path(file)
    text = file.read_text(encoding="utf-8")
    data = parse_yaml(text, file)
    tree = []  # composed on the first problem

    def line(path: list) -> int:
        if not tree:
            tree.append(yaml_tree(text))
        return _line_of(tree[0], path)
    if not isinstance(data, dict) or data.get("kind") not in KINDS or not isinstance(data.get("entries"), list):
        raise CatalogError(f"{file}: a catalog file is a mapping with 'kind' (one of {', '.join(KINDS)}) "
                           "and a list of 'entries'")
    extra = set(data) - {"kind", "entries"}
    if extra:
        raise CatalogError(f"{file}: unexpected top-level keys {sorted(extra)}; only 'kind' and 'entries'")
    kind = data["kind"]
    specs, problems, seen = [], [], {}
    for i, entry in enumerate(data["entries"]):
        name = entry.get("name", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
        try:
            spec = _adapter(kind).validate_python(entry)
        except ValidationError as err:
            for e in err.errors():
                loc = ".".join(str(x) for x in e["loc"] if not (kind == "workload" and x in
                                                                 ("transformer", "cnn", "recsys", "other")))
                at = line(["entries", i, *e["loc"][1:]] if kind == "workload" else ["entries", i, *e["loc"]])
                msg = e["msg"].removeprefix("Value error, ")
                problems.append(f"{file}:{at}: {kind} {name!r}: field '{loc}': {msg}")
            continue
        for key in dict.fromkeys([_fold(spec.name)] + [_fold(a) for a in spec.aliases]):
            if key in seen and seen[key] != spec.name:
                problems.append(f"{file}:{line(['entries', i])}: {kind} {spec.name!r}: "
                                f"name or alias clashes with {seen[key]!r} in the same file")
            elif key in seen:
                problems.append(f"{file}:{line(['entries', i])}: duplicate {kind} {spec.name!r}")
            seen[key] = spec.name
        specs.append((kind, spec))
    if problems:
        raise CatalogError("catalog file does not validate:\n  " + "\n  ".join(problems))
    return specs


def _line_of(node: Any, path: list) -> int:
    """1-based line of the deepest YAML node reached along ``path`` (keys and list indices)."""
    import yaml

    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == step]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            break
        line = node.start_mark.line + 1
    return line


def schema(kind: str) -> dict:
    """JSON Schema of a catalog file of ``kind`` (for editors, and for agents through the MCP server)."""
    if kind not in KINDS:
        raise UnknownNameError("catalog kind", kind, list(KINDS))
    model = create_model(f"{kind.title()}File", kind=(Literal[kind], ...), entries=(list[KINDS[kind]], ...))
    out = model.model_json_schema()
    out["title"] = f"mlsysim-lab {kind} catalog file"
    return out


_DEFAULT: Catalog | None = None


def default_catalog() -> Catalog:
    """The built-in catalog plus any files named in ``MLSYSIM_LAB_CATALOG``, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        cat = Catalog.load(builtin_catalog_dir())
        for extra in filter(None, os.environ.get("MLSYSIM_LAB_CATALOG", "").split(os.pathsep)):
            cat.add(extra)
        _DEFAULT = cat
    return _DEFAULT


def add_catalog(path: str | os.PathLike, *, override: bool = False) -> Catalog:
    """Merge your own YAML file or folder into the default catalog (name clashes are errors unless
    ``override=True``)."""
    return default_catalog().add(path, override=override)


def _lookup(kind: str, value: Any, cls: type) -> Any:
    if isinstance(value, cls):
        return value
    return default_catalog().get(kind, value)


def hardware(name: str | Hardware) -> Hardware:
    """An accelerator from the catalog, e.g. ``hardware("H100 SXM")``."""
    return _lookup("hardware", name, Hardware)


def workload(name: str | Transformer | SampleWorkload) -> Transformer | SampleWorkload:
    """A model from the catalog, e.g. ``workload("Llama-2-70B")``."""
    return _lookup("workload", name, (Transformer, SampleWorkload))


def grid(name: str | Grid) -> Grid:
    """An electricity grid / datacenter region from the catalog, e.g. ``grid("Quebec")``."""
    return _lookup("grid", name, Grid)


def fabric(name: str | Fabric) -> Fabric:
    """A link technology from the catalog, e.g. ``fabric("InfiniBand NDR")``."""
    return _lookup("fabric", name, Fabric)


def node(name: str | Node) -> Node:
    """A server type from the catalog, e.g. ``node("DGX H100")``."""
    return _lookup("node", name, Node)


def scenario(name: str | Scenario) -> Scenario:
    """A worked question from the catalog, e.g. ``scenario("CoT K=8 serving bill")``."""
    return _lookup("scenario", name, Scenario)


def write_schemas(folder: str | os.PathLike) -> list[Path]:
    """Write ``<kind>.schema.json`` for every kind into ``folder`` (kept in ``catalog/schema/``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = folder / f"{kind}.schema.json"
        path.write_text(json.dumps(schema(kind), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m mlsysim_lab.catalog --write-schemas
    import sys

    if sys.argv[1:] == ["--write-schemas"]:
        for written in write_schemas(builtin_catalog_dir() / "schema"):
            print(written)
    else:
        print(default_catalog())
