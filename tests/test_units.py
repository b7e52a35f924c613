"""The one registry: every domain quantity has its own dimension, and bad input names itself."""
import pickle
import re
from pathlib import Path

import numpy as np
import pint
import pytest

import mlsysim_lab as ml
from mlsysim_lab.errors import UnitError
from mlsysim_lab.units import Q_, count, to_si, ureg

PACKAGE = Path(ml.__file__).parent


@pytest.mark.parametrize("a, b", [("1 GB", "1 param"), ("1 USD", "1 GB"), ("1 TFLOP/s", "1 TB/s"),
                                  ("1 GB", "5 count"), ("1 token", "1 param"), ("1 gCO2e", "1 g"),
                                  ("1 kWh", "1 USD"), ("1 bit", "1")])
def test_distinct_dimensions_never_add(a, b):
    with pytest.raises(pint.DimensionalityError):
        Q_(a) + Q_(b)


def test_decimal_and_binary_prefixes_are_distinct():
    assert Q_("1 GB").to("B").magnitude == 1e9
    assert Q_("1 GiB").to("B").magnitude == 2**30
    assert Q_("80 GiB").to("GB").magnitude == pytest.approx(85.899345920)
    assert Q_("8 bit").to("B").magnitude == 1
    assert Q_("400 Gbit/s").to("GB/s").magnitude == pytest.approx(50)


def test_mac_is_two_flops_and_ops_count_as_flops():
    assert Q_("4.1 GMAC").to("GFLOP").magnitude == pytest.approx(8.2)
    assert Q_("1979 TOP/s").to("TFLOP/s").magnitude == pytest.approx(1979)


def test_energy_carbon_water_price_units():
    assert Q_("700 W * 1 h").to("kWh").magnitude == pytest.approx(0.7)
    assert Q_("380 gCO2e/kWh * 10 MWh").to("tCO2e").magnitude == pytest.approx(3.8)
    assert Q_("0.12 USD/kWh * 1 MWh").to("USD").magnitude == pytest.approx(120)
    assert Q_("1.8 L/kWh * 1 MWh").to("L").magnitude == pytest.approx(1800)


def test_only_one_registry_is_built():
    calls = [p for p in PACKAGE.rglob("*.py") if "UnitRegistry(" in p.read_text()]
    assert [p.name for p in calls] == ["units.py"]
    assert ml.Q_ is ureg.Quantity


def test_unit_error_names_function_argument_dimension_and_example():
    with pytest.raises(UnitError) as err:
        to_si("3 GB", "bandwidth", name="bandwidth", where="roofline()")
    assert str(err.value) == ("roofline(): 'bandwidth' got 3 GB ([information]); expected "
                              "[information] / [time], e.g. '3.35 TB/s'")
    assert isinstance(err.value, pint.DimensionalityError) and isinstance(err.value, ValueError)


def test_unit_error_survives_pickle():
    err = UnitError("serve()", "overhead", "3 GB", "[information]", "[time]", "5 us")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "serve(): 'overhead' got 3 GB ([information]); expected [time], e.g. '5 us'"


@pytest.mark.parametrize("value, message", [
    (3.0, "got 3.0 (a bare number)"),
    ("3 furlongs", "unparseable"),
    ("-3 TB/s", "must be > 0"),
    ("0 TB/s", "must be > 0"),
    (Q_(float("nan"), "TB/s"), "must be finite"),
    (Q_(float("inf"), "TB/s"), "must be finite"),
])
def test_bad_quantities_are_refused(value, message):
    with pytest.raises(ml.InputError, match=re.escape(message)):
        to_si(value, "bandwidth", name="bandwidth", where="f()")


def test_quantities_from_another_registry_are_refused():
    other = pint.UnitRegistry()
    with pytest.raises(ml.InputError, match="another pint registry"):
        to_si(other.Quantity(3, "TB/s"), "bandwidth", name="bandwidth", where="f()")


def test_conversion_is_exact_and_vectorised():
    assert to_si("3.35 TB/s", "bandwidth", name="x", where="f()") == pytest.approx(3.35e12)
    arr = to_si(Q_(np.array([1.0, 2.0]), "GB"), "information", name="x", where="f()")
    assert np.allclose(arr, [1e9, 2e9])


@pytest.mark.parametrize("value", [0, -1, 1.5, float("nan"), True, "8"])
def test_counts_must_be_positive_whole_numbers(value):
    with pytest.raises(ml.InputError):
        count(value, name="batch", where="serve()")


def test_counts_accept_token_quantities():
    assert count("2e12 token", name="tokens", where="train()", kind="tokens") == 2e12
    with pytest.raises(UnitError):
        count("2e12 param", name="tokens", where="train()", kind="tokens")
