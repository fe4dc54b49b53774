"""The torch benchmark sections: row shapes of a quick run (not speeds), and their place in ``vsaopt bench``."""

import json

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from vsaopt.benchmarks.torch_adapter import TARGETS, adapter_cost  # noqa: E402
from vsaopt.benchmarks.torch_models import MODEL_NAMES, model_specs  # noqa: E402
from vsaopt.cli.commands import cli  # noqa: E402
from vsaopt.errors import ConfigError  # noqa: E402


def test_adapter_cost_rows_cover_every_model_trainer_and_phase():
    threads = torch.get_num_threads()
    rows = adapter_cost(quick=True, steps=6, backend="numpy")
    assert torch.get_num_threads() == threads
    seen = {(r.model, r.trainer, r.phase) for r in rows}
    for model in MODEL_NAMES:
        assert {(model, "phase", "FULL"), (model, "phase", "PREDICT"), (model, "deterministic", "PREDICT")} <= seen
        assert any(m == model and t == "deterministic" and p in ("FULL", "CORRECT", "WARMUP") for m, t, p in seen)
    for r in rows:
        assert r.steps >= 1 and r.plain_seconds > 0 and r.adapter_seconds > 0
        assert r.share == pytest.approx(r.adapter_seconds / r.plain_seconds)
        assert r.target == TARGETS.get((r.trainer, r.phase))
        assert r.parameters == model_specs(quick=True)[r.model].parameters()
        assert json.dumps(r.to_dict())
    with pytest.raises(ConfigError):
        adapter_cost(models=("resnet",), quick=True)
    with pytest.raises(ConfigError):
        adapter_cost(quick=True, steps=0)


def test_full_size_models_have_the_stated_sizes():
    specs = model_specs()
    assert specs["mlp"].parameters() == 3_159_050
    assert 0.5e6 < specs["transformer"].parameters() < 1e6 and 0.5e6 < specs["cnn"].parameters() < 2e6


def test_bench_sections_adapter_and_time_to_accuracy(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "bench.json"
    args = ["bench", "--quick", "--backend", "numpy", "--section", "adapter", "--section", "torch_time_to_accuracy",
            "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "adapter" in result.output and "torch_time_to_accuracy" in result.output
    doc = json.loads(out.read_text())
    assert set(doc["sections"]) == {"adapter", "torch_time_to_accuracy"}
    assert {r["trainer"] for r in doc["sections"]["adapter"]} == {"phase", "deterministic"}
    rows = {r["mode"]: r for r in doc["sections"]["torch_time_to_accuracy"]}
    assert list(rows) == ["torch", "phase", "deterministic", "reuse last gradient"]
    plain = rows["torch"]
    assert plain["backward_passes"] == plain["steps"] > 0 and plain["reached"] == 1
    assert plain["target"] == pytest.approx(plain["final_accuracy"] - 0.005)
    # the control skips exactly the steps the phase run predicted
    assert rows["reuse last gradient"]["backward_passes"] == rows["phase"]["backward_passes"] <= plain["steps"]
    assert all(0.0 <= r["final_accuracy"] <= 1.0 and r["seeds"] == 1 for r in rows.values())


def test_gate_closed_rows_cover_every_model_and_trainer():
    from vsaopt.benchmarks.torch_gate_closed import MODELS, TARGET, gate_closed_cost

    rows = gate_closed_cost(quick=True, steps=30, backend="numpy")
    assert {(r.model, r.trainer) for r in rows} == {(m, t) for m in MODELS for t in ("phase", "deterministic")}
    for r in rows:
        assert r.steps == 30 and 9 <= r.recorded < 30  # the closed gate went dormant after its first measurements
        assert r.plain_seconds > 0 and r.adapter_seconds > 0 and r.dormant_seconds > 0
        assert r.share == pytest.approx(r.adapter_seconds / r.plain_seconds) and r.target == TARGET
        assert json.dumps(r.to_dict())
    with pytest.raises(ConfigError):
        gate_closed_cost(models=("resnet",), quick=True)
    with pytest.raises(ConfigError):
        gate_closed_cost(quick=True, steps=0)
