"""The command line: info and its numba cache report."""

import json
import subprocess
import sys

from click.testing import CliRunner

from vsaopt.cli.commands import cli


def test_info_json_lists_every_backend():
    result = CliRunner().invoke(cli, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["backends"]) == {"numpy", "numba", "cupy"}
    assert report["backends"]["numpy"]["status"] == "available"
    assert report["backends"]["numpy"]["golden_vectors"] == "pass"
    assert report["backends"]["cupy"]["status"]


def test_second_process_loads_numba_kernels_from_cache(tmp_path):
    """Run outside the source tree, so the installed package (with its backends) is the one imported."""
    run = [sys.executable, "-m", "vsaopt.cli", "info", "--json"]
    subprocess.run(run, capture_output=True, check=True, cwd=tmp_path)  # fills the cache if needed
    report = json.loads(subprocess.run(run, capture_output=True, text=True, check=True, cwd=tmp_path).stdout)
    cache = report["backends"]["numba"]["kernel cache"]
    assert cache.endswith(" 0 compiled in this process"), cache
    assert not cache.startswith("0 ")


def test_bench_quick_writes_every_requested_section(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "--quick", "--backend", "numpy", "--section", "kernels", "--section", "predict",
            "--section", "compressor", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["backend"] == "numpy"
    assert set(doc["sections"]) == {"bandwidth", "kernels", "predict", "compressor"}
    kernels = {r["name"]: r for r in doc["sections"]["kernels"]}
    assert "quantize_stochastic (Philox)" in kernels
    assert all(r["seconds"] > 0 and r["fraction_of_bandwidth"] > 0 for r in kernels.values())


def test_bench_rejects_unknown_sections():
    result = CliRunner().invoke(cli, ["bench", "--quick", "--section", "nope"])
    assert result.exit_code != 0 and "nope" in result.output
