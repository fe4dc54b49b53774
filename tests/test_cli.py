"""The command line: info, the numba kernel cache, bench."""

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
    assert report["backends"]["cupy"]["status"]
    assert report["backends"]["numba"]["kernel cache"].endswith("numba")


def test_info_runs_no_kernel(tmp_path):
    code = ("import json; from click.testing import CliRunner; from vsaopt.cli.commands import cli; "
            "from vsaopt.backends.numba import cache_report; "
            "assert CliRunner().invoke(cli, ['info']).exit_code == 0; print(json.dumps(cache_report()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(out.stdout) == {"from_cache": 0, "compiled": 0}


def test_second_process_loads_numba_kernels_from_cache(tmp_path):
    """Run outside the source tree, so the installed package (with its backends) is the one imported."""
    code = ("import json; from vsaopt.golden import verify; from vsaopt.backend import get_backend; "
            "from vsaopt.backends.numba import cache_report; assert not verify(get_backend('numba')); "
            "print(json.dumps(cache_report()))")
    run = [sys.executable, "-c", code]
    subprocess.run(run, capture_output=True, check=True, cwd=tmp_path)  # fills the cache if needed
    report = json.loads(subprocess.run(run, capture_output=True, text=True, check=True, cwd=tmp_path).stdout)
    assert report["compiled"] == 0 and report["from_cache"] > 0, report


def test_cache_dir_and_clear(tmp_path):
    env = {"VSAOPT_CACHE_DIR": str(tmp_path)}
    result = CliRunner().invoke(cli, ["cache", "dir"], env=env)
    assert result.exit_code == 0 and result.output.strip() == str(tmp_path / "numba")
    (tmp_path / "numba" / "sub").mkdir(parents=True)
    (tmp_path / "numba" / "sub" / "k.nbi").write_bytes(b"x")
    result = CliRunner().invoke(cli, ["cache", "clear"], env=env)
    assert result.exit_code == 0 and "removed 1 files" in result.output
    assert not (tmp_path / "numba").exists()


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


def test_bench_accumulator_error_draws_its_plot(tmp_path):
    png, out = tmp_path / "acc.png", tmp_path / "acc.json"
    args = ["bench", "--quick", "--section", "accumulator_error", "--plot", str(png), "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads(out.read_text())["sections"]["accumulator_error"]
    assert {r["rule"] for r in rows} == {"measured", "worst_case", "ideal"}
    assert "4-bit, spec 6" in result.output


def test_bench_plot_needs_a_section_that_draws(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--quick", "--section", "kernels", "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "'--plot'" in result.output


def test_bench_help_lists_its_sections():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert "accumulator_error" in result.output and "predictor_memory" in result.output


def test_bare_vsaopt_prints_help():
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0 and "Commands:" in result.output
