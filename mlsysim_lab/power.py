"""The power wall: what a device can draw for a moment is not what it can shed for an hour.

A passively cooled device (phone, wearable, fanless box) bursts at its full power until its thermal mass
heats to the temperature limit, then the governor holds that temperature by cutting power to what the
enclosure sheds, and performance falls with it. Energy per inference is power x time; a battery lasts
its energy over the average power of the duty cycle.
"""
from __future__ import annotations

import numpy as np

from . import catalog
from .efficiency import Assumption
from .errors import InputError
from .results import Result, Wall, _show
from .units import check_number, to_si

#: Power a passively cooled enclosure of each tier can shed indefinitely at its temperature limit, when the
#: caller gives none. Documented assumptions, not measurements: the reference lab's envelopes (V1-02 C:
#: mobile 5 W, edge 25 W, tiny 1 mW); 5 W is the usual order for a phone held in the hand, 25 W a fanless
#: Jetson-class module (the catalog's Jetson Orin NX 16GB is rated 25 W), 1 mW a coin-cell sensor's budget.
ENVELOPE: dict[str, Assumption] = {
    "mobile": Assumption("sustainable power of a phone (W)", 5.0,
                         "documented assumption: reference lab V1-02 C mobile envelope; phones shed a few W"),
    "edge": Assumption("sustainable power of a fanless edge module (W)", 25.0,
                       "documented assumption: reference lab V1-02 C edge envelope (Jetson Orin NX 25 W mode)"),
    "tiny": Assumption("sustainable power of a coin-cell device (W)", 1e-3,
                       "documented assumption: reference lab V1-02 C TinyML envelope (1 mW)"),
}

#: Thermal time constant R x C of a passively cooled phone. Documented assumption: a phone chassis heats over
#: minutes; 100 s makes a burst at 4x the sustainable power throttle after 100 ln(4/3) = 29 s, the ~30 s
#: knee of the reference lab's phone (V1-02 C: 60 FPS for ~30 s, 15 FPS = 25% of peak by 90 s).
THERMAL_TIME_CONSTANT = Assumption(
    "thermal time constant of a passively cooled phone (s)", 100.0,
    "documented assumption chosen to reproduce the reference lab's ~30 s throttle knee at 4x the envelope")

#: Performance ~ power^exponent once throttled. 1 keeps the energy per inference fixed (the conservative
#: choice: clocks and work scale together at a fixed voltage). Under DVFS, dynamic power ~ f V^2 with V
#: roughly ~ f, so power ~ f^3 and the exponent approaches 1/3 (Weste & Harris, CMOS VLSI Design, 4th ed.,
#: sec. 5.2): throttling to 25% of the power then keeps 63% of the speed. Real phones fall in between.
PERFORMANCE_POWER_EXPONENT = Assumption(
    "performance-power exponent when throttled", 1.0,
    "documented assumption: performance proportional to power (fixed energy per inference); DVFS gives ~1/3")


def throttle_curve(t, power, envelope, tau, exponent):
    """(fraction of peak at time t, average fraction over [0, t], time to throttle, sustained fraction).

    One thermal node: C dT/dt = P - (T - T_amb) / R. The limit T_max is reached when the steady rise P R
    crosses (T_max - T_amb) = P_env R, at t_k = R C ln(P / (P - P_env)); afterwards the governor holds
    T_max, so the device draws P_env and runs at (P_env / P)^exponent of peak. Elementwise on arrays.
    """
    power, envelope = np.asarray(power, dtype=float), np.asarray(envelope, dtype=float)
    over = power > envelope
    with np.errstate(divide="ignore", invalid="ignore"):
        knee = np.where(over, tau * np.log(power / np.where(over, power - envelope, 1.0)), np.inf)
        sustained = np.where(over, (envelope / power) ** exponent, 1.0)
        t = np.asarray(t, dtype=float)
        fraction = np.where(t < knee, 1.0, sustained)
        average = np.where(t <= knee, 1.0, (knee + sustained * (t - knee)) / np.where(t > 0, t, 1.0))
        average = np.where(np.isinf(t), sustained, average)
    return tuple(x if np.ndim(x) else float(x) for x in (fraction, average, knee, sustained))


class ThrottleResult(Result):
    """Peak against sustained performance of a device in a power envelope."""

    _title = "power wall: sustained vs peak"
    _units = {"power": "W", "envelope": "W", "time": "s", "time_to_throttle": "s", "fraction": "",
              "average_fraction": "", "sustained_fraction": "", "peak_rate": "1/s", "rate": "1/s"}


def _power(hw, power, where: str, example: str) -> float:
    """Watts: the given ``power``, else the device's catalog TDP, else a clear error saying what to pass."""
    if power is not None:
        return to_si(power, "power", name="power", where=where)
    if hw is None or hw._f.tdp is None:
        name = f"{hw.name} has no TDP in the catalog" if hw is not None else "no hardware given"
        raise InputError(f"{where}: {name}; pass power= (e.g. '{example}')")
    return hw._f.tdp


def throttle(hardware=None, *, envelope=None, power=None, time=None, latency=None, time_constant=None,
             exponent=None) -> ThrottleResult:
    """Does ``power`` fit the ``envelope`` a device can shed, and if not, how fast and how far it throttles.

    The device runs at peak until its thermal mass reaches the temperature limit after ``time_to_throttle``
    = tau ln(P / (P - P_env)), then holds the limit at the envelope's power, running at (P_env / P)^exponent
    of peak (``throttle_curve``). A benchmark shorter than the knee reports the burst; a long session sees
    the sustained rate. Limiting cases: P <= P_env never throttles; P >> P_env throttles at once (t_k -> 0).

    Parameters
    ----------
    hardware : Hardware | str, optional  supplies ``power`` (its TDP) and, by its tier, the ``envelope``
    envelope : Quantity[power] | {'mobile', 'edge', 'tiny'}  power the enclosure sheds at its limit
    power : Quantity[power]  draw at full speed (default: the device's TDP)
    time : Quantity[time], optional  when to look (arrays sweep); default: the sustained state
    latency : Quantity[time], optional  time per inference (frame) at full speed; gives rates
    time_constant : Quantity[time]  thermal R x C (default 100 s: a phone's, a documented assumption; pass
        your enclosure's for anything else)
    exponent : performance ~ power^exponent when throttled (default 1; DVFS ~1/3)

    Returns
    -------
    ThrottleResult  .time_to_throttle .fraction .average_fraction .sustained_fraction .rate .peak_rate;
    fits: power within the envelope; bottleneck: power
    """
    where = "throttle()"
    hw = catalog.hardware(hardware) if hardware is not None else None
    used = []
    p = _power(hw, power, where, "12 W")
    if envelope is None and hw is not None and hw.tier in ENVELOPE:
        envelope = hw.tier
    if envelope is None:
        raise InputError(f"{where}: give envelope= (a power such as '5 W', or one of {', '.join(ENVELOPE)})")
    if isinstance(envelope, str) and envelope in ENVELOPE:
        env = ENVELOPE[envelope].value
        used.append(ENVELOPE[envelope])
    else:
        env = to_si(envelope, "power", name="envelope", where=where)
    if time_constant is None:
        tau = THERMAL_TIME_CONSTANT.value
        used.append(THERMAL_TIME_CONSTANT)
    else:
        tau = to_si(time_constant, "time", name="time_constant", where=where)
    if exponent is None:
        k = PERFORMANCE_POWER_EXPONENT.value
        used.append(PERFORMANCE_POWER_EXPONENT)
    else:
        k = check_number(exponent, name="exponent", where=where)
        if k > 1:
            raise InputError(f"{where}: 'exponent' must be in (0, 1] (performance cannot fall faster than power "
                             f"at a fixed energy per inference), got {exponent!r}")
    t = float("inf") if time is None else to_si(time, "time", name="time", where=where, allow_zero=True)
    lat = None if latency is None else to_si(latency, "time", name="latency", where=where)
    fraction, average, knee, sustained = throttle_curve(t, p, env, tau, k)
    peak_rate = 1.0 / lat if lat is not None else float("nan")
    fits = p <= env

    def verdict():
        if np.ndim(fraction) or np.ndim(p) or np.ndim(env):
            return ""
        if fits:
            return f"within the power envelope: {_show(p, 'W')} of {_show(env, 'W')}; never throttles"
        rates = (f" ({peak_rate * sustained:.3g}/s of {peak_rate:.3g}/s)" if lat is not None else "")
        text = (f"thermal throttle: draws {_show(p, 'W')} in a {_show(env, 'W')} envelope (x{p / env:.3g}); "
                f"full speed for {_show(knee, 's')}, then {sustained:.0%} of peak{rates}")
        if np.isfinite(t):
            text += f"; at {_show(t, 's')}: {fraction:.0%} of peak, {average:.0%} on average"
        return text

    return ThrottleResult(
        dict(power=p, envelope=env, time=t, time_to_throttle=knee, fraction=fraction, average_fraction=average,
             sustained_fraction=sustained, peak_rate=peak_rate, rate=peak_rate * fraction),
        terms={}, bottleneck=Wall.POWER, margin=p / env, fits=fits, verdict=verdict, assumptions=tuple(used),
        formula="t_throttle = tau ln(P / (P - P_env)); after it, performance = (P_env / P)^exponent of peak",
        inputs=dict(hardware=hw, power=power, envelope=envelope, time=time, latency=latency))


class EnergyResult(Result):
    """Energy of one busy period at a power."""

    _title = "energy per inference"
    _units = {"energy": "J", "power": "W", "latency": "s"}


def energy(hardware=None, *, latency, power=None) -> EnergyResult:
    """Energy of one inference (or one radio transmission): E = P x t.

    ``power`` defaults to the device's TDP, an upper bound (a device rarely draws its TDP on a small
    kernel). Example: a BLE radio at 100 mW for 128 ms spends 12.8 mJ, more than a keyword-spotting CNN's
    whole inference on a microcontroller.

    Parameters
    ----------
    hardware : Hardware | str, optional  supplies ``power`` (its TDP)
    latency : Quantity[time]  time the device is busy (e.g. ``serve(...).latency``)
    power : Quantity[power]  power drawn while busy
    """
    where = "energy()"
    p = _power(catalog.hardware(hardware) if hardware is not None and power is None else None, power, where,
               "100 mW")
    t = to_si(latency, "time", name="latency", where=where)
    e = p * t
    return EnergyResult(
        dict(energy=e, power=p, latency=t), terms={}, bottleneck=Wall.POWER, margin=float("nan"),
        verdict=lambda: "" if np.ndim(e) else f"{_show(e, 'J')} = {_show(p, 'W')} x {_show(t, 's')}",
        formula="E = P x t", inputs=dict(hardware=hardware, power=power, latency=latency))


class BatteryResult(Result):
    """Battery life at a duty cycle, and the share of the battery a period of use takes."""

    _title = "battery life"
    _units = {"life": "s", "average_power": "W", "capacity": "J", "time": "s", "used": ""}


def battery(capacity, *, power, duty=1.0, idle_power="0 W", time="1 day") -> BatteryResult:
    """How long a battery lasts at a duty cycle, and how much of it ``time`` of use takes.

    Average power = P_active x duty + P_idle x (1 - duty); life = capacity / average power. A battery
    rated in mAh holds charge x voltage: a 250 mAh coin cell at 3 V is 0.25 A h x 3 V = 0.75 Wh = 2.7 kJ
    (pass ``"0.75 Wh"``). Limiting cases: duty 0 lasts capacity / P_idle (forever at zero idle power).

    Parameters
    ----------
    capacity : Quantity[energy]  e.g. "0.75 Wh", "15 Wh", "2.7 kJ"
    power : Quantity[power]  draw while active
    duty : fraction of time active, in [0, 1]
    idle_power : Quantity[power]  draw while idle (sleep current x voltage)
    time : Quantity[time]  the period to check (default one day); ``used`` is the share of the battery it takes

    Returns
    -------
    BatteryResult  .life .average_power .used; fits: the battery lasts ``time``
    """
    where = "battery()"
    cap = to_si(capacity, "energy", name="capacity", where=where)
    p = to_si(power, "power", name="power", where=where, allow_zero=True)
    idle = to_si(idle_power, "power", name="idle_power", where=where, allow_zero=True)
    d = check_number(duty, name="duty", where=where, allow_zero=True)
    if np.any(np.asarray(d) > 1):
        raise InputError(f"{where}: 'duty' is the fraction of time active and must be in [0, 1], got {duty!r}")
    t = to_si(time, "time", name="time", where=where)
    average = p * d + idle * (1.0 - d)
    with np.errstate(divide="ignore"):
        life = np.divide(cap, average) if np.ndim(average) else (cap / average if average > 0 else float("inf"))
    used = average * t / cap
    fits = used <= 1.0

    def verdict():
        if np.ndim(used):
            return ""
        head = f"lasts {_show(life, 's')} at {_show(average, 'W')} average" if np.isfinite(life) else \
            "lasts forever: the average power is zero"
        tail = "" if fits else " (does not last)"
        return f"{head}; {_show(t, 's')} uses {100 * used:.3g}% of {_show(cap, 'J')}{tail}"

    return BatteryResult(
        dict(life=life, average_power=average, capacity=cap, time=t, used=used),
        terms={}, bottleneck=Wall.POWER, margin=used, fits=fits, verdict=verdict,
        formula="P_avg = P_active x duty + P_idle x (1 - duty); life = capacity / P_avg",
        inputs=dict(capacity=capacity, power=power, duty=duty, idle_power=idle_power, time=time))
