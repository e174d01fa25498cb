"""Process-wide serving metrics in the Prometheus text format (stdlib only).

Counters and histograms are recorded where the event happens (the server's middleware, a
generator's engine); gauges are read from a function when scraped. ``render()`` is what
``GET /metrics`` returns (:mod:`llmforge.server_metrics`).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

_LOCK = threading.Lock()
_METRICS: dict[str, _Metric] = {}


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, object]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help

    def lines(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> str:
        return "\n".join(
            [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}", *self.lines()]
        )


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self._values: dict[tuple, float] = {}

    def inc(self, value: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with _LOCK:
            self._values[key] = self._values.get(key, 0) + value

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0)

    def lines(self) -> list[str]:
        with _LOCK:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(dict(k))} {v:g}" for k, v in items]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: tuple[float, ...]) -> None:
        super().__init__(name, help)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[tuple, list] = {}  # labels → [counts per bucket + +Inf, sum]

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with _LOCK:
            counts, total = self._series.setdefault(key, [[0] * (len(self.buckets) + 1), 0.0])
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self._series[key][1] = total + value

    def count(self, **labels: str) -> int:
        series = self._series.get(tuple(sorted(labels.items())))
        return sum(series[0]) if series else 0

    def lines(self) -> list[str]:
        out = []
        with _LOCK:
            items = sorted((k, (list(c), s)) for k, (c, s) in self._series.items())
        for key, (counts, total) in items:
            labels, running = dict(key), 0
            for bound, n in zip((*self.buckets, "+Inf"), counts, strict=True):
                running += n
                le = bound if bound == "+Inf" else f"{bound:g}"
                out.append(f"{self.name}_bucket{_labels({**labels, 'le': le})} {running}")
            out.append(f"{self.name}_sum{_labels(labels)} {total:g}")
            out.append(f"{self.name}_count{_labels(labels)} {running}")
        return out


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        super().__init__(name, help)
        self.read = read

    def lines(self) -> list[str]:
        return [f"{self.name} {self.read():g}"]


def _register(metric: _Metric) -> _Metric:
    with _LOCK:
        old = _METRICS.get(metric.name)
        if old is not None and type(old) is type(metric) and not isinstance(metric, Gauge):
            return old  # one series per name, however often a module registers it
        _METRICS[metric.name] = metric
        return metric


def counter(name: str, help: str) -> Counter:
    return _register(Counter(name, help))  # type: ignore[return-value]


def histogram(name: str, help: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
    return _register(Histogram(name, help, buckets))  # type: ignore[return-value]


def gauge(name: str, help: str, read: Callable[[], float]) -> Gauge:
    """A value read when scraped; registering the name again replaces the reader."""
    return _register(Gauge(name, help, read))  # type: ignore[return-value]


def value(name: str) -> float | None:
    """A gauge's current value (``None`` when nothing registered it)."""
    metric = _METRICS.get(name)
    return metric.read() if isinstance(metric, Gauge) else None


def render() -> str:
    with _LOCK:
        metrics = sorted(_METRICS.values(), key=lambda m: m.name)
    return "\n".join(m.render() for m in metrics) + "\n"
