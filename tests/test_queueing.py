"""Queueing: M/M/1, M/M/c (Erlang C), M/G/1 (Pollaczek-Khinchine) and pooling, against hand-derived values."""
import json
import math
import pickle

import numpy as np
import pytest

import mlsysim_lab as ml
from mlsysim_lab.queueing import batch_formation, erlang_c, log_factorial, min_servers, pooling, queue
from mlsysim_lab.results import Wall


def ms(q):
    return q.to("ms").magnitude


def erlang_c_brute(c, a):
    """Erlang C summed over every term in log space (no window), as an independent reference."""
    k = np.arange(c + 1)
    log_t = k * math.log(a) - np.array([math.lgamma(x + 1) for x in k])
    top = log_t.max()
    b = math.exp(log_t[-1] - top - math.log(np.exp(log_t - top).sum()))
    return c * b / (c - a * (1 - b))


# ---------------------------------------------------------------------------------------------- M/M/1
def test_mm1_seed_5ms_at_80_percent_is_25ms_mean_and_115ms_p99():
    # mu = 200/s, lambda = 160/s: mean response 1/(mu - lambda) = 25 ms; T ~ Exp(40/s) -> p99 = ln(100)/40.
    r = queue("160 req/s", "5 ms")
    assert r.utilisation.magnitude == pytest.approx(0.8)
    assert ms(r.response) == pytest.approx(25.0)
    assert ms(r.wait) == pytest.approx(20.0)
    assert ms(r.response_percentile) == pytest.approx(1e3 * math.log(100) / 40)  # 115.13 ms
    assert 113 < ms(r.response_percentile) < 117  # the reference lab helper's band
    assert ms(r.wait_percentile) == pytest.approx(1e3 * math.log(0.8 / 0.01) / 40)  # P(W>t) = rho e^-(mu-lambda)t
    assert r.wait_probability.magnitude == pytest.approx(0.8)
    assert r.fits and r.bottleneck is Wall.MULTI_TENANT
    assert "80% utilisation" in r.verdict and "p99 115 ms" in r.verdict


def test_mm1_seed_misses_a_50ms_slo():
    r = queue("160 req/s", "5 ms", slo="50 ms")
    assert not r.fits and r.bottleneck is Wall.LATENCY_SLO
    assert r.margin == pytest.approx(math.log(100) / 40 / 0.050)
    assert r.verdict.startswith("misses the p99 SLO of 50 ms")
    assert queue("100 req/s", "5 ms", slo="50 ms").fits  # rho 0.5: p99 = ln(100)/100 = 46 ms


def test_mm1_percentiles_are_exponential_quantiles():
    for p in (0.5, 0.9, 0.999):
        r = queue("100 req/s", "5 ms", percentile=p)
        assert r.response_percentile.to("s").magnitude == pytest.approx(-math.log(1 - p) / 100)


def test_light_load_limit_is_the_bare_service_time():
    r = queue("1e-6 req/s", "5 ms")
    assert ms(r.response) == pytest.approx(5.0, rel=1e-6)
    assert ms(r.wait_percentile) == 0.0  # almost nobody waits
    assert ms(r.response_percentile) == pytest.approx(5 * math.log(100), rel=1e-5)  # exponential service


def test_unstable_is_a_verdict_not_an_exception_and_not_a_number():
    r = queue("250 req/s", "5 ms")
    assert not r.fits
    assert r.verdict.startswith("unstable: arrivals exceed capacity by x1.25")
    assert math.isinf(r.wait.magnitude) and math.isinf(r.response_percentile.magnitude)
    assert "never" in r.explain()
    assert queue("200 req/s", "5 ms").verdict.startswith("unstable: arrivals equal capacity")
    json.loads(r.to_json())


def test_tail_grows_without_bound_as_load_nears_capacity():
    lam = ml.Q_(np.linspace(10, 199, 60), "req/s")
    r = queue(lam, "5 ms")
    assert np.all(np.diff(r.response_percentile.magnitude) > 0)
    assert np.all(np.diff(r.wait.magnitude) > 0)
    assert r.response_percentile.to("s").magnitude[-1] > 1.0


# ---------------------------------------------------------------------------------------------- M/M/c
def test_erlang_c_by_hand_two_servers():
    # c = 2, a = 1.5: Erlang B = (a^2/2)/(1 + a + a^2/2) = 0.3103; C = 2B/(2 - a(1 - B)) = 9/14.
    assert erlang_c(2, 1.5) == pytest.approx(9 / 14)
    r = queue("150 req/s", "10 ms", servers=2)
    assert r.wait_probability.magnitude == pytest.approx(9 / 14)
    assert ms(r.wait) == pytest.approx(1e3 * (9 / 14) / (2 / 0.010 - 150))  # C / (c mu - lambda) = 12.86 ms
    assert ms(r.wait_percentile) == pytest.approx(1e3 * math.log((9 / 14) / 0.01) / 50)


def test_erlang_c_matches_a_full_sum_from_one_to_twenty_thousand_servers():
    for c, a in [(1, 0.8), (10, 8.0), (50, 45.3), (100, 60.0), (800, 780.0), (20000, 19500.0)]:
        assert erlang_c(c, a) == pytest.approx(erlang_c_brute(c, a), rel=1e-9), (c, a)
    assert erlang_c(1, 0.3) == pytest.approx(0.3)  # one server: P(wait) = rho
    assert erlang_c(10**6, 10.0) == 0.0 and erlang_c(3, 3.0) == 1.0


def test_log_factorial_table_and_stirling_agree_with_lgamma():
    n = np.array([0, 1, 5, 63, 64, 65, 1000, 10**7], dtype=float)
    assert np.allclose(log_factorial(n), [math.lgamma(x + 1) for x in n], rtol=1e-14, atol=1e-12)


def test_mmc_with_one_server_is_mm1_and_percentile_matches_a_simulation():
    one = queue("160 req/s", "5 ms", servers=1)
    assert ms(one.response_percentile) == pytest.approx(1e3 * math.log(100) / 40)
    r = queue("640 req/s", "5 ms", servers=4)
    c_wait = erlang_c(4, 3.2)
    rng = np.random.default_rng(7)
    n = 400_000
    wait = np.where(rng.random(n) < c_wait, rng.exponential(1 / 160, n), 0.0)  # c mu - lambda = 160/s
    sim = np.quantile(wait + rng.exponential(0.005, n), 0.99)
    assert r.response_percentile.to("s").magnitude == pytest.approx(sim, rel=0.02)


def test_more_servers_shorten_the_tail():
    tails = [ms(queue("600 req/s", "5 ms", servers=c).response_percentile) for c in (4, 5, 6, 8, 16)]
    assert all(a > b for a, b in zip(tails, tails[1:]))


def test_min_servers_is_the_fewest_that_meet_the_budget():
    # 95 Erlangs of 1 s requests, p99 wait <= 0.2 s: check c and c - 1 with the closed form.
    c = min_servers(95.0, 1.0, 0.2, 0.99)

    def p99(servers):
        cw = erlang_c(servers, 95.0)
        return max(0.0, math.log(cw / 0.01) / (servers - 95.0))

    assert p99(c) <= 0.2 < p99(c - 1)
    assert min_servers(95.0, 1.0, np.inf, 0.99) == 96  # no budget: just stable
    assert np.array_equal(min_servers(np.array([95.0, 2.0]), 1.0, 0.2, 0.99), [c, min_servers(2.0, 1.0, 0.2, 0.99)])


# ---------------------------------------------------------------------------------------------- M/G/1
def test_pollaczek_khinchine_cv3_is_5x_the_mm1_queueing_delay():
    mm1 = queue("160 req/s", "5 ms")
    mg1 = queue("160 req/s", "5 ms", service_cv=3.0)
    assert mg1.wait.magnitude / mm1.wait.magnitude == pytest.approx(5.0)  # (1 + 3^2) / 2
    assert ms(mg1.wait) == pytest.approx(0.8 * 5 * (1 + 9) / (2 * 0.2))  # rho S (1 + Cs^2) / (2 (1 - rho))
    md1 = queue("160 req/s", "5 ms", service_cv=0.0)
    assert ms(md1.wait) == pytest.approx(10.0)  # deterministic service halves the wait
    assert mg1.assumptions and "Pollaczek-Khinchine" in mg1.assumptions[0].source
    assert not mm1.assumptions


def test_mg1_tail_approximation_is_exact_in_form_at_cv_1_and_grows_with_cv():
    # Exponential tail with P(wait) = rho and the P-K mean: at C_s = 1 it is the exact M/M/1 wait tail.
    near = queue("160 req/s", "5 ms", service_cv=1.0 + 1e-9)
    assert ms(near.wait_percentile) == pytest.approx(1e3 * math.log(80) / 40, rel=1e-6)
    assert ms(near.response_percentile) == pytest.approx(115.13, rel=0.01)  # service + wait p99: 0.5% short
    tails = [ms(queue("160 req/s", "5 ms", service_cv=cv).wait_percentile) for cv in (0.0, 0.5, 1.5, 3.0)]
    assert all(a < b for a, b in zip(tails, tails[1:]))


def test_batch_queue_hockey_stick_from_the_v2_10_plan():
    # S(B) = 50 + 0.5 B ms per batch of B at 100 QPS: rho = (100/B) x S(B) = 5.05, 0.675, 0.206.
    batches = np.array([1.0, 8.0, 32.0])
    service = ml.Q_(50 + 0.5 * batches, "ms")
    r = queue(ml.Q_(100 / batches, "req/s"), service)
    assert np.allclose(r.utilisation.magnitude, [5.05, 0.675, 0.20625])
    assert list(r.fits) == [False, True, True]
    assert r.verdict.startswith("unstable at 1 of 3 points")


# ---------------------------------------------------------------------------------------------- pooling
def test_pooling_shortens_the_tail_and_saves_servers():
    r = pooling("160 req/s", "5 ms", servers=1, tenants=10)
    assert ms(r.dedicated) == pytest.approx(ms(queue("160 req/s", "5 ms").response_percentile))
    assert ms(r.shared) == pytest.approx(ms(queue("1600 req/s", "5 ms", servers=10).response_percentile))
    assert r.speedup.magnitude > 4 and r.bottleneck is Wall.MULTI_TENANT
    assert 8 < r.shared_servers_needed.magnitude < 10 and r.servers_saved.magnitude >= 1
    assert pooling("160 req/s", "5 ms", servers=1, tenants=1).speedup.magnitude == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- contract
def test_array_in_equals_scalars():
    lam = [20.0, 90.0, 150.0, 190.0]
    swept = queue(ml.Q_(np.array(lam), "req/s"), "5 ms", servers=2, service_cv=0.7)
    for i, x in enumerate(lam):
        one = queue(f"{x} req/s", "5 ms", servers=2, service_cv=0.7)
        assert swept.response_percentile.magnitude[i] == pytest.approx(one.response_percentile.magnitude)
        assert swept.wait.magnitude[i] == pytest.approx(one.wait.magnitude)


def test_results_round_trip_and_explain_names_the_wall():
    for r in (queue("160 req/s", "5 ms", slo="200 ms"), pooling("40 req/s", "10 ms", servers=1, tenants=4)):
        assert pickle.loads(pickle.dumps(r)).to_dict() == r.to_dict()
        assert str(r.bottleneck) in r.explain() and "binding wall" in r.explain()
        assert set(json.loads(r.to_json())["fields"]) == set(r.fields)
    assert queue("9600 req/min", "5 ms").utilisation.magnitude == pytest.approx(0.8)
    assert queue("160 / s", "5 ms").utilisation.magnitude == pytest.approx(0.8)


@pytest.mark.parametrize("call, message", [
    (lambda: queue(160, "5 ms"), "queue(): 'arrival' got 160 (a bare number)"),
    (lambda: queue("160 GB/s", "5 ms"), "'arrival' got 160 GB/s"),
    (lambda: queue("160 req/s", "5 GB"), "'service' got 5 GB"),
    (lambda: queue("160 req/s", 5), "'service' got 5 (a bare number)"),
    (lambda: queue("-1 req/s", "5 ms"), "'arrival' must be > 0"),
    (lambda: queue("160 req/s", "5 ms", servers=0), "'servers' must be > 0"),
    (lambda: queue("160 req/s", "5 ms", servers=2.5), "'servers' must be a whole number"),
    (lambda: queue("160 req/s", "5 ms", percentile=99), "'percentile' is a fraction such as 0.99"),
    (lambda: queue("160 req/s", "5 ms", service_cv=-1), "'service_cv' must be >= 0"),
    (lambda: queue("160 req/s", "5 ms", slo="1 GB"), "'slo' got 1 GB"),
    (lambda: pooling("160 req/s", "5 ms", servers=1, tenants=0), "'tenants' must be > 0"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ml.InputError) as err:
        call()
    assert message in str(err.value)


# ---------------------------------------------------------------------------------------------- batch formation
def test_batch_formation_seed_32_at_500_qps_is_31ms_or_62_percent_of_50ms():
    r = batch_formation("500 req/s", 32, slo="50 ms")
    assert ms(r.mean_delay) == pytest.approx(31.0) and ms(r.max_delay) == pytest.approx(62.0)
    assert r.slo_share.magnitude == pytest.approx(0.62) and r.fits and r.bottleneck is Wall.BATCHING
    assert "62% of the 50 ms SLO" in r.verdict
    assert not batch_formation("500 req/s", 64, slo="50 ms").fits
    assert ms(batch_formation("500 req/s", 1).mean_delay) == 0.0  # no batching, no formation delay
    swept = batch_formation(ml.Q_(np.array([100.0, 500.0]), "req/s"), 32)
    assert np.allclose(swept.mean_delay.to("ms").magnitude, [155.0, 31.0])
    with pytest.raises(ml.InputError, match="'batch' must be > 0"):
        batch_formation("500 req/s", 0)
