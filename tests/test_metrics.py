from __future__ import annotations

from llmforge import metrics


def test_counters_histograms_and_gauges_render_in_prometheus_text():
    c = metrics.counter("test_things_total", "things")
    c.inc(route='/a"b')
    c.inc(2, route='/a"b')
    assert metrics.counter("test_things_total", "again") is c  # one series per name
    h = metrics.histogram("test_seconds", "time", (0.1, 1))
    for v in (0.05, 0.5, 5):
        h.observe(v)
    metrics.gauge("test_depth", "depth", lambda: 7)
    text = metrics.render()
    assert "# TYPE test_things_total counter" in text
    assert 'test_things_total{route="/a\\"b"} 3' in text
    assert 'test_seconds_bucket{le="0.1"} 1' in text
    assert 'test_seconds_bucket{le="1"} 2' in text
    assert 'test_seconds_bucket{le="+Inf"} 3' in text
    assert "test_seconds_sum 5.55" in text and "test_seconds_count 3" in text
    assert "test_depth 7" in text and metrics.value("test_depth") == 7
