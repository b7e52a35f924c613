"""The catalog: every shipped number has a unit and a source; bad files are refused with their place."""
import json
import textwrap

import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.catalog import KINDS, Catalog, builtin_catalog_dir, read_file, schema, write_schemas
from mlsysim_lab.specs import Hardware, SampleWorkload, Transformer

CAT = ml.default_catalog()

H100_YAML = """\
kind: hardware
entries:
  - name: Test GPU
    vendor: Test
    family: nvidia-hopper
    tier: datacenter
    peak: {bf16: "100 TFLOP/s"}
    memory: {capacity: "10 GB", bandwidth: "1 TB/s"}
    source: "made up for a test"
"""


def write(tmp_path, text, name="extra.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------------- shipped data
def test_shipped_catalog_has_the_breadth_the_labs_need():
    assert len(CAT.names("hardware")) >= 30
    assert len(CAT.names("workload")) >= 25
    assert len(CAT.names("grid")) >= 12
    tiers = {h.tier for h in CAT.entries("hardware")}
    assert tiers == {"datacenter", "workstation", "edge", "mobile", "tiny"}
    kinds = {f.kind for f in CAT.entries("fabric")}
    assert {"nvlink", "infiniband", "roce", "pcie", "ici"} <= kinds


@pytest.mark.parametrize("name", [
    "A100 SXM 40GB", "A100 SXM 80GB", "H100 SXM", "H100 PCIe", "H200 SXM", "B200", "GB200", "MI300X", "MI325X",
    "TPU v4", "TPU v5e", "TPU v5p", "Gaudi 3", "L4", "T4", "V100 SXM2", "Jetson AGX Orin 64GB", "ESP32-S3"])
def test_required_hardware_is_present(name):
    assert isinstance(ml.hardware(name), Hardware)


@pytest.mark.parametrize("name", [
    "GPT-2", "GPT-3", "Llama-2-7B", "Llama-2-13B", "Llama-2-70B", "Llama-3-8B", "Llama-3-70B", "Llama-3.1-405B",
    "Mistral-7B", "Mixtral-8x7B", "DeepSeek-V3", "BERT-Base", "ResNet-50", "MobileNetV2", "EfficientNet-B0",
    "DS-CNN", "DLRM", "ViT-B/16", "Whisper"])
def test_required_models_are_present(name):
    ml.workload(name)


@pytest.mark.parametrize("name", ["NVLink 3", "NVLink 4", "NVLink 5", "InfiniBand HDR", "InfiniBand NDR",
                                  "InfiniBand XDR", "PCIe 4.0 x16", "PCIe 5.0 x16"])
def test_required_fabrics_are_present(name):
    ml.fabric(name)


def test_every_entry_names_its_source_and_per_field_sources_name_real_fields():
    for kind in KINDS:
        for spec in CAT.entries(kind):
            assert len(spec.source.strip()) > 10, (kind, spec.name)
            data = spec.model_dump()
            for field in spec.sources:
                node = data
                for part in field.split("."):
                    assert isinstance(node, dict) and part in node, f"{kind} {spec.name}: sources names {field!r}"
                    node = node[part]


def test_every_quantity_in_the_catalog_has_the_right_dimension():
    for h in CAT.entries("hardware"):
        for q in h.peak.values():
            assert q.check("[compute] / [time]"), h.name
        assert h.memory.capacity.check("[information]") and h.memory.bandwidth.check("[information] / [time]")
    for w in CAT.entries("workload"):
        assert w.params.check("[parameter]")


def test_peaks_are_dense_and_ordered_by_precision():
    for h in CAT.entries("hardware"):
        p = {k: v.to("FLOP/s").magnitude for k, v in h.peak.items()}
        if "fp16" in p and "fp8" in p:
            assert p["fp8"] >= p["fp16"], h.name
        if "fp32" in p and "fp16" in p:
            assert p["fp16"] >= p["fp32"], h.name


def test_gqa_is_recorded_for_llama_2_70b():
    llama = ml.workload("Llama-2-70B")
    assert isinstance(llama, Transformer) and llama.kv_heads == 8 and llama.heads == 64


def test_nodes_refer_to_catalog_hardware_and_fabrics():
    for node in CAT.entries("node"):
        ml.hardware(node.accelerator)
        if node.intra_fabric:
            ml.fabric(node.intra_fabric)


# ------------------------------------------------------------------------------------- lookups
@pytest.mark.parametrize("spelling", ["H100 SXM", "h100 sxm", "H100-SXM", "h100_sxm", "H100SXM"])
def test_names_are_case_space_and_dash_insensitive(spelling):
    assert ml.hardware(spelling).name == "H100 SXM"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ml.UnknownNameError, match=r"unknown hardware 'H100 SMX': did you mean 'H100 SXM'"):
        ml.hardware("H100 SMX")
    with pytest.raises(LookupError, match="did you mean 'Llama-2-70B'"):
        ml.workload("llama2-70")


def test_lookup_passes_specs_through():
    h = ml.hardware("H100 SXM")
    assert ml.hardware(h) is h


# ------------------------------------------------------------------------------------- bring your own YAML
def test_user_file_merges_and_validates(tmp_path):
    cat = Catalog.load(builtin_catalog_dir(), write(tmp_path, H100_YAML))
    gpu = cat.get("hardware", "test gpu")
    assert gpu.memory.bandwidth.to("GB/s").magnitude == pytest.approx(1000)
    assert cat.origin("hardware", "Test GPU").endswith("extra.yaml")


def test_name_clash_is_an_error_unless_overriding(tmp_path):
    clash = write(tmp_path, H100_YAML.replace("Test GPU", "H100 SXM"))
    with pytest.raises(ml.CatalogError, match="clashes with 'H100 SXM'.*override=True"):
        Catalog.load(builtin_catalog_dir(), clash)
    cat = Catalog.load(builtin_catalog_dir())
    cat.add(clash, override=True)
    assert cat.get("hardware", "H100 SXM").memory.capacity.to("GB").magnitude == 10
    assert ml.hardware("H100 SXM").memory.capacity.to("GB").magnitude == 80  # the default is untouched


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('    source: "made up for a test"\n', ""), r"extra.yaml:3: hardware 'Test GPU': field 'source': Field required"),
    (lambda t: t.replace('"1 TB/s"', '"1 TB"'), r"extra.yaml:8: hardware 'Test GPU': field 'memory.bandwidth': 'bandwidth' got 1 TB \(\[information\]\); expected \[information\] / \[time\], e.g. '3.35 TB/s'"),
    (lambda t: t.replace('"1 TB/s"', '1000'), r"field 'memory.bandwidth': 'bandwidth' got 1000 \(a bare number\)"),
    (lambda t: t.replace('"1 TB/s"', '"-1 TB/s"'), r"field 'memory.bandwidth': 'bandwidth' must be > 0"),
    (lambda t: t.replace('"1 TB/s"', '".nan TB/s"'), r"field 'memory.bandwidth'"),
    (lambda t: t.replace("tier: datacenter", "tier: spaceship"), r"field 'tier': Input should be 'datacenter'"),
    (lambda t: t.replace("vendor: Test", "vendor: Test\n    colour: red"), r"field 'colour': Extra inputs are not permitted"),
    (lambda t: t.replace("bf16:", "fp12:"), r"field 'peak.fp12.\[key\]'"),
    (lambda t: t + t.split("entries:\n")[1], r"duplicate hardware 'Test GPU'"),
    (lambda t: t.replace("kind: hardware", "kind: gizmo"), r"a catalog file is a mapping with 'kind'"),
    (lambda t: t.replace("entries:", "entries: [\n"), r"not valid YAML"),
])
def test_bad_files_are_refused_with_file_line_entry_and_field(tmp_path, edit, message):
    with pytest.raises(ml.CatalogError, match=message):
        read_file(write(tmp_path, edit(H100_YAML)))


def test_yaml_is_loaded_safely(tmp_path):
    evil = write(tmp_path, "kind: !!python/object/apply:os.system ['echo pwned']\nentries: []\n")
    with pytest.raises(ml.CatalogError, match="not valid YAML"):
        read_file(evil)


def test_node_with_unknown_accelerator_is_refused(tmp_path):
    bad = write(tmp_path, """\
        kind: node
        entries:
          - {name: My Box, accelerator: H100 SMX, accelerators: 8, source: "a test file"}
        """)
    with pytest.raises(ml.CatalogError, match="node 'My Box' refers to unknown hardware 'H100 SMX': did you mean 'H100 SXM'"):
        Catalog.load(builtin_catalog_dir(), bad)


def test_transformer_consistency_is_checked(tmp_path):
    text = """\
        kind: workload
        entries:
          - {name: Odd, family: x, kind: transformer, task: language, params: "1e9 param", layers: 2,
             d_model: 64, heads: 6, kv_heads: 4, d_ff: 256, vocab: 100, max_context: 128, source: "a test file"}
        """
    with pytest.raises(ml.CatalogError, match="heads \\(6\\) must be a multiple of kv_heads \\(4\\)"):
        read_file(write(tmp_path, text))


# ------------------------------------------------------------------------------------- schemas
@pytest.mark.parametrize("kind", list(KINDS))
def test_json_schema_describes_quantities_as_strings(kind):
    s = schema(kind)
    assert s["properties"]["kind"]["const"] == kind
    text = json.dumps(s)
    assert ("a quantity of dimension" in text) == (kind not in ("scenario", "measurement"))
    assert '"source"' in text


def test_committed_schemas_are_up_to_date(tmp_path):
    write_schemas(tmp_path)
    for path in tmp_path.iterdir():
        committed = builtin_catalog_dir() / "schema" / path.name
        assert committed.exists(), f"run: python -m mlsysim_lab.catalog --write-schemas ({path.name} missing)"
        assert json.loads(committed.read_text()) == json.loads(path.read_text()), path.name


def test_quantity_fields_round_trip_through_json():
    h = ml.hardware("H100 SXM")
    again = Hardware.model_validate(json.loads(h.model_dump_json()))
    assert again.memory.bandwidth == h.memory.bandwidth and again.peak == h.peak
    assert isinstance(again.memory.capacity, pint.Quantity)


def test_workload_kinds():
    assert isinstance(ml.workload("ResNet-50"), SampleWorkload)
    assert ml.workload("Mixtral-8x7B").is_moe
