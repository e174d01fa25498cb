"""`llmforge bench`: registry and arguments, results files, floors, comparisons, history page,
and one real quick run of the cheapest benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmforge.bench import compare, history, registry, results
from llmforge.bench.registry import Gate
from llmforge.cli import main
from llmforge.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _results  # noqa: E402  (the scripts' JSON helper)


def fig(name, value, spread=None, better="higher", baseline_value=None, repeats=None):
    return _results.figure(
        name,
        value,
        "u",
        better=better,
        baseline="base" if baseline_value is not None else None,
        baseline_value=baseline_value,
        spread=spread,
        repeats=repeats if repeats is not None or spread is None else 2,
    )


def run_doc(figs, machine="m-1", started="2026-12-01T10:00:00Z", profile="quick", bench="train"):
    return {
        "schema": results.SCHEMA,
        "kind": results.KIND,
        "profile": profile,
        "device": "cpu",
        "started": started,
        "wall_s": 12.0,
        "machine": {"id": machine, "cpu": "cpu", "cores": 2, "commit": "abc123" + machine, "dirty": False},
        "benchmarks": [{"name": bench, "script": "bench_x.py", "args": [], "status": "ok", "figures": figs}],
        "gates": [],
    }


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def cli(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


# registry and arguments


def test_profiles_select_their_benchmarks():
    quick = {b.name for b in registry.select("quick")}
    full = {b.name for b in registry.select("full")}
    assert quick < full == set(registry.BY_NAME)
    assert {"serve", "rag_answers", "learns_business", "quota_soak"} <= full - quick
    assert "search_speed" in quick


def test_every_registered_script_exists_and_takes_json():
    for b in registry.BENCHMARKS:
        source = (REPO / "benchmarks" / b.script).read_text()
        assert "add_json_option(" in source or '"--json"' in source, b.script


def test_only_accepts_repeats_and_commas_in_registry_order():
    chosen = registry.select("quick", ["guard,search_speed", "train"])
    assert [b.name for b in chosen] == ["train", "search_speed", "guard"]
    assert chosen[1].args("quick")[0] == "--skip-throughput"


def test_a_full_only_benchmark_asked_for_in_quick_is_an_error():
    with pytest.raises(ConfigError, match="serve.*no quick profile.*--full"):
        registry.select("quick", ["serve"])
    assert [b.name for b in registry.select("full", ["serve"])] == ["serve"]


def test_unknown_benchmark_exits_2_and_lists_the_known_ones(capsys):
    code, _, err = cli(["bench", "--only", "nosuch"], capsys)
    assert code == 2
    assert "unknown benchmark 'nosuch'" in err and "search_speed" in err


def test_a_folder_without_benchmarks_exits_2(tmp_path, capsys):
    code, _, err = cli(["bench", "--benchmarks-dir", str(tmp_path)], capsys)
    assert code == 2 and "holds no bench_*.py" in err


def test_outside_a_checkout_the_error_says_where_benchmarks_live(tmp_path, monkeypatch):
    from llmforge.bench import runner

    assert runner.find_benchmarks_dir(start=REPO / "src") == REPO / "benchmarks"
    monkeypatch.setattr(
        runner, "__file__", str(tmp_path / "site-packages" / "llmforge" / "bench" / "runner.py")
    )
    with pytest.raises(ConfigError, match="inside a checkout, or pass --benchmarks-dir"):
        runner.find_benchmarks_dir(start=tmp_path)


# the scripts' JSON helper


def test_figure_summarises_repeats_as_best_and_spread():
    up = _results.figure("tok/s", [10.0, 12.0, 11.0], "t/s", baseline="b", baseline_value=[5.0, 6.0])
    assert (up["value"], up["repeats"], up["spread"], up["baseline_value"]) == (12.0, 3, 2.0, 6.0)
    assert up["ratio"] == pytest.approx(2.0)
    down = _results.figure("ms", [3.0, 2.0], "ms", better="lower")
    assert (down["value"], down["spread"], down["ratio"]) == (2.0, 1.0, None)


def test_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        _results.write_json(tmp_path / "x.json", "b", [_results.figure("f", float("nan"), "u")])
    path = _results.write_json(tmp_path / "y.json", "b", [_results.figure("f", 1.0, "u")], "n")
    figs, notes = results.read_script_output(path, "b")
    assert figs[0]["name"] == "f" and notes == "n"


# results files


def test_another_schema_version_is_refused_with_exit_2(tmp_path, capsys):
    good = write(tmp_path / "a.json", run_doc([fig("f", 1.0)]))
    old = write(tmp_path / "b.json", {**run_doc([fig("f", 1.0)]), "schema": 99})
    code, _, err = cli(["bench", "--compare", str(good), str(old)], capsys)
    assert code == 2
    assert "results schema version 99" in err and f"reads version {results.SCHEMA}" in err


def test_markdown_table_names_the_machine_and_each_figure():
    doc = run_doc([fig("tok/s", [10.0, 11.0], baseline_value=5.0)])
    text = results.markdown(doc)
    assert "Machine: cpu, 2 cores" in text
    assert "| train | tok/s | 11.00 u | base | 5.00 u | 2.20x | 2 | 1.00 |" in text


def test_previous_run_is_the_latest_of_the_same_machine_and_profile(tmp_path):
    write(tmp_path / "1.json", run_doc([fig("f", 1.0)], started="2026-11-01T00:00:00Z"))
    write(tmp_path / "2.json", run_doc([fig("f", 2.0)], started="2026-11-02T00:00:00Z"))
    write(tmp_path / "3.json", run_doc([fig("f", 3.0)], machine="other", started="2026-11-03T00:00:00Z"))
    write(tmp_path / "4.json", run_doc([fig("f", 4.0)], profile="full", started="2026-11-04T00:00:00Z"))
    now = run_doc([fig("f", 5.0)], started="2026-12-01T00:00:00Z")
    assert results.figures(results.previous(tmp_path, now))[("train", "f")]["value"] == 2.0


def test_readme_block_takes_the_full_table(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.README_START}\nold\n{results.README_END}\nafter\n")
    results.update_readme(readme, "| new |\n")
    assert readme.read_text() == f"intro\n{results.README_START}\n| new |\n{results.README_END}\nafter\n"
    (tmp_path / "OTHER.md").write_text("no markers")
    with pytest.raises(ConfigError, match="no <!-- bench:full:start -->"):
        results.update_readme(tmp_path / "OTHER.md", "x")
    code, _, err = cli(["bench", "--quick", "--update-readme"], capsys)
    assert code == 2 and "--full" in err


# floors


def test_static_floor_on_a_ratio():
    gate = Gate("tok/s", field="ratio", floor=1.5, why="must stay 1.5x")
    bad = compare.check_gate("train", gate, fig("tok/s", 13.0, baseline_value=10.0), None)
    assert not bad["passed"]
    assert "below its floor 1.50" in bad["message"] and "must stay 1.5x" in bad["message"]
    assert compare.check_gate("train", gate, fig("tok/s", 16.0, baseline_value=10.0), None)["passed"]


def test_floor_from_the_last_run_minus_its_noise():
    gate = Gate("recall", tolerance=0.01)
    last = fig("recall", 0.90)
    assert compare.check_gate("r", gate, fig("recall", 0.885), last)["passed"]  # within 2 x 0.01
    drop = compare.check_gate("r", gate, fig("recall", 0.87), last)
    assert not drop["passed"] and drop["bound"] == pytest.approx(0.88)
    noisy = Gate("tok/s")
    assert compare.check_gate("t", noisy, fig("tok/s", 80.0, spread=12.0), fig("tok/s", 100.0, spread=5.0))[
        "passed"
    ]


def test_a_static_floor_above_the_history_floor_wins():
    gate = Gate("x", floor=100.0)
    res = compare.check_gate("k", gate, fig("x", 99.0), fig("x", 100.0, spread=5.0))
    assert not res["passed"] and res["bound"] == 100.0


def test_check_run_uses_the_registry_gates():
    doc = run_doc([fig("llmforge tokens/s", 12.0, baseline_value=10.0)], bench="train")
    (check,) = compare.check_run(doc, None)
    assert check["figure"] == "llmforge tokens/s" and not check["passed"]


# comparisons


def test_compare_flags_changes_beyond_noise_only():
    a = run_doc(
        [fig("fast", 100.0, spread=2.0), fig("steady", 100.0, spread=6.0), fig("ms", 10.0, 0.5, "lower")]
    )
    b = run_doc(
        [fig("fast", 90.0, spread=3.0), fig("steady", 95.0, spread=4.0), fig("ms", 8.0, 0.5, "lower")],
        started="2026-12-02T10:00:00Z",
    )
    rows, warnings = compare.compare(a, b)
    verdicts = {r.figure: r.verdict for r in rows}
    assert verdicts == {"fast": "worse", "steady": "within noise", "ms": "better"}
    assert warnings == []
    text = compare.render(rows, warnings, "A.json", "B.json")
    assert "1 better, 1 worse beyond noise" in text


def test_compare_different_machines_warns_and_compares_ratios(tmp_path, capsys):
    a = write(tmp_path / "a.json", run_doc([fig("tok/s", 100.0, spread=1.0, baseline_value=50.0)]))
    b = write(
        tmp_path / "b.json",
        run_doc([fig("tok/s", 300.0, spread=1.0, baseline_value=150.0)], machine="gpu-box"),
    )
    code, out, err = cli(["bench", "--compare", str(a), str(b)], capsys)
    assert code == 0
    assert "different machines" in err and "absolute figures do not compare" in err
    assert "tok/s (ratio)" in out and "within noise" in out  # 2.0x on both machines


# history page


def test_history_draws_one_plot_per_figure(tmp_path):
    for day, v in ((1, 1.0), (2, 2.0), (3, 1.5)):
        figs = [fig("a", v, spread=0.1), fig("b", 10 * v), fig("c", v, better="lower")]
        write(tmp_path / f"{day}.json", run_doc(figs, started=f"2026-11-0{day}T00:00:00Z"))
    (tmp_path / "junk.json").write_text("{}")  # not a results file: skipped
    page = history.write(tmp_path).read_text()
    assert page.count("<svg") == 3 and page.count("<figure") == 3
    assert page.count("<circle") == 9 and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "abc123m-1"[:8] in page


# the runner, on stand-in scripts

FAKE = """
import sys
sys.path.insert(0, {bench!r})
from _results import figure, write_json
if "--fail" in sys.argv:
    print("something broke"); sys.exit(3)
print("measuring", flush=True)
write_json(sys.argv[sys.argv.index("--json") + 1], "fake", [figure("f", [1.0, 3.0], "u")])
"""


def test_runner_reads_figures_and_reports_failures(tmp_path):
    import io

    from llmforge.bench import runner
    from llmforge.bench.registry import Benchmark

    (tmp_path / "bench_fake.py").write_text(FAKE.format(bench=str(REPO / "benchmarks")))
    ok = Benchmark("fake", "bench_fake.py", "a stand-in", quick=("--x",), full=())
    bad = Benchmark("bad", "bench_fake.py", "fails", quick=("--fail",), full=())
    gone = Benchmark("gone", "bench_gone.py", "no script", quick=(), full=())
    log = io.StringIO()
    run = runner.run_suite([ok, bad, gone], tmp_path, "quick", "cpu", {"id": "m"}, stream=log)
    done = {b["name"]: b for b in run["benchmarks"]}
    assert done["fake"]["status"] == "ok" and done["fake"]["figures"][0]["spread"] == 2.0
    assert done["bad"]["status"] == "failed" and done["bad"]["error"] == "exit 3: something broke"
    assert done["gone"]["status"] == "missing"
    text = log.getvalue()
    assert "[1/3] fake" in text and "| measuring" in text and "[2/3] bad FAILED" in text
    assert runner.run_path(tmp_path, run).name.endswith("-m.json")


# a real run


@pytest.mark.slow
def test_quick_run_of_the_cheapest_benchmark_writes_a_results_file(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    llmforge = Path(sys.executable).with_name("llmforge")
    cmd = [str(llmforge), "bench", "--quick", "--only", "search_speed", "--results-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = tmp_path.glob("*.json")
    doc = results.load(path)
    assert doc["profile"] == "quick" and doc["machine"]["cores"] == os.cpu_count()
    assert {"cpu", "memory_gib", "libraries", "commit", "gpu"} <= set(doc["machine"])
    (bench,) = doc["benchmarks"]
    assert bench["status"] == "ok"
    names = {f["name"]: f for f in bench["figures"]}
    assert names["HNSW QPS, no filter"]["repeats"] == 2 and names["HNSW QPS, no filter"]["spread"] is not None
    assert doc["gates"] and doc["gates"][0]["figure"] == "HNSW recall@10, no filter"
    assert path.with_suffix(".md").read_text().count("| search_speed |") == len(bench["figures"])
    assert "[1/1] search_speed" in proc.stderr and (tmp_path / "history.html").exists()
