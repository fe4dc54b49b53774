"""vsaopt.train.suite and ``vsaopt train --suite``: the matrix, baseline lr tuning, medians and worst cases, JSON, the command."""

import json
import math

import pytest

pytest.importorskip("sklearn")

from click.testing import CliRunner  # noqa: E402

from vsaopt.cli.commands import cli  # noqa: E402
from vsaopt.errors import ConfigError  # noqa: E402
from vsaopt.train import load_dataset  # noqa: E402
from vsaopt.train.data import REGRESSION_DATASETS  # noqa: E402
from vsaopt.train.lr_tuning import LrScore, pick_learning_rate, tune_learning_rate  # noqa: E402
from vsaopt.train.run import MODES  # noqa: E402
from vsaopt.train.suite import run_suite  # noqa: E402
from vsaopt.train.suite_matrix import LR_GRID, QUICK_LR_GRID, QUICK_MATRIX, SUITE_MATRIX, SuiteSetting  # noqa: E402
from vsaopt.train.suite_results import ModeOutcome, SettingResult, SuiteResult, median_or_none, worst_or_none  # noqa: E402


# --- the matrix ----------------------------------------------------------------------------------


def test_the_matrix_meets_the_minimums():
    assert len(SUITE_MATRIX) >= 12
    datasets = {s.dataset for s in SUITE_MATRIX}
    assert len(datasets) >= 4 and datasets & REGRESSION_DATASETS
    batches = [s.batch_size for s in SUITE_MATRIX]
    assert min(b for b in batches if b is not None) == 16 and None in batches  # 16 .. full batch
    assert {s.depth for s in SUITE_MATRIX} == {1, 2}
    assert len({s.label for s in SUITE_MATRIX}) == len(SUITE_MATRIX)
    assert len(LR_GRID) >= 4 and all(b / a == pytest.approx(LR_GRID[1] / LR_GRID[0], rel=0.1) for a, b in zip(LR_GRID, LR_GRID[1:]))
    # every batch fits its data set's training split
    for s in SUITE_MATRIX:
        assert s.batch_size is None or s.batch_size <= load_dataset(s.dataset, backend="numpy").x_train.shape[0]


def test_a_bad_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="dataset"):
        SuiteSetting("mnist", 16, (8,), 10)
    with pytest.raises(ConfigError, match="batch_size"):
        SuiteSetting("wine", 0, (8,), 10)
    with pytest.raises(ConfigError, match="hidden"):
        SuiteSetting("wine", 16, (), 10)


# --- learning-rate tuning ---------------------------------------------------------------------------


def test_pick_learning_rate_by_validation_metric_then_loss():
    acc = [LrScore(0.01, 0.80, 0.5), LrScore(0.03, 0.92, 0.4), LrScore(0.1, 0.92, 0.3), LrScore(0.3, None, None)]
    assert pick_learning_rate(acc, higher_is_better=True) == 0.1  # tie on accuracy: the lower loss
    mse = [LrScore(0.01, 0.70, 0.70), LrScore(0.03, 0.45, 0.45), LrScore(0.1, 0.50, 0.50)]
    assert pick_learning_rate(mse, higher_is_better=False) == 0.03
    assert pick_learning_rate(mse, higher_is_better=True) == 0.01  # the direction matters
    assert pick_learning_rate([LrScore(0.3, None, None), LrScore(0.1, 0.0, 9.0)], True) == 0.1
    with pytest.raises(ConfigError):
        pick_learning_rate([], True)


def test_tuning_rejects_a_rate_that_does_not_learn_and_one_that_diverges():
    data = load_dataset("diabetes", backend="numpy")
    lr, scores = tune_learning_rate(data, (8,), [1e-6, 0.01, 50.0], steps=40, batch_size=32, seed=0, backend="numpy")
    assert [s.lr for s in scores] == [1e-6, 0.01, 50.0]
    assert lr == 0.01
    assert scores[2].diverged and scores[2].metric is None and not scores[1].diverged
    assert scores[1].metric < scores[0].metric  # lower validation MSE
    assert [type(s).from_dict(json.loads(json.dumps(s.to_dict()))) for s in scores] == scores


# --- aggregation and JSON ----------------------------------------------------------------------------


def test_medians_and_worst_cases_count_not_reached_as_worst():
    assert median_or_none([1.0, 2.0, 4.0, None]) == 1.5
    assert median_or_none([None, None, 3.0]) is None
    assert worst_or_none([2.0, 3.0]) == 2.0 and worst_or_none([2.0, None]) is None


def _outcome(drop, speed, skipped=0.5):
    return ModeOutcome(0.9, drop, speed, speed, skipped, 10.0, 1.0)


def test_within_tolerance_uses_the_median_drop_and_the_metric_unit():
    base = [_outcome(0.0, 1.0, 0.0)] * 2
    cls = SettingResult(SuiteSetting("wine", 16, (8,), 10), 16, 10, 0.1, [], [0, 1],
                        {"baseline": base, "phase": [_outcome(0.5, 2.0), _outcome(1.4, None)]})
    reg = SettingResult(SuiteSetting("diabetes", None, (8,), 10), 353, 10, 0.1, [], [0, 1],
                        {"baseline": base, "phase": [_outcome(4.0, 1.5), _outcome(5.5, 1.1)]})
    assert cls.median("phase", "metric_drop") == pytest.approx(0.95) and cls.within_tolerance("phase")
    assert cls.median("phase", "pass_speedup") is None  # one seed did not reach the target
    assert reg.metric == "mse" and reg.within_tolerance("phase")  # median 4.75 % <= 5 %
    summary = SuiteResult([cls, reg], {"seeds": [0, 1]}, "m").summary()["phase"]
    assert summary["pass_speedup_worst"] is None and summary["pass_speedup_median"] is None
    assert summary["accuracy_drop_worst"] == pytest.approx(0.95) and summary["mse_drop_worst"] == pytest.approx(4.75)
    assert summary["within_tolerance"] == "2/2"


def test_quick_suite_runs_every_mode_and_round_trips_json():
    seen = []
    suite = run_suite(QUICK_MATRIX, seeds=[0, 1], lr_grid=QUICK_LR_GRID, backend="numpy",
                      on_progress=lambda done, total, text: seen.append((done, total)))
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert suite.modes == list(MODES)
    for s in suite.settings:
        assert s.lr in QUICK_LR_GRID and [x.lr for x in s.lr_scores] == list(QUICK_LR_GRID)
        assert all(len(v) == 2 for v in s.outcomes.values())
        assert all(o.pass_speedup == 1.0 and o.metric_drop == 0.0 for o in s.outcomes["baseline"])
        phase_skipped = [o.skipped_share for o in s.outcomes["phase"]]
        assert [o.skipped_share for o in s.outcomes["skip"]] == phase_skipped
        assert [o.skipped_share for o in s.outcomes["reuse"]] == phase_skipped
        assert all(o.telemetry is not None for o in s.outcomes["phase"])
    assert suite.settings[1].batch_size == load_dataset("diabetes", backend="numpy").x_train.shape[0]  # full batch
    again = SuiteResult.from_json(suite.to_json())
    assert again == suite and again.summary() == suite.summary()


@pytest.mark.parametrize("text", ["[1]", "{}", '{"config": {}, "machine": "m", "settings": [{"setting": 3}]}', "nope", None])
def test_a_malformed_suite_result_is_a_config_error(text):
    with pytest.raises(ConfigError, match="SuiteResult"):
        SuiteResult.from_json(text)


# --- the command ------------------------------------------------------------------------------------


def test_cli_suite_quick_writes_tables_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "suite.json", tmp_path / "suite.png"
    args = ["train", "--suite", "--quick", "--backend", "numpy", "--json", str(out), "--plot", str(png)]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Summary over 2 settings" in result.output and "small_batch" in result.output
    assert "wine b16 h8x1" in result.output and "diabetes full h8x2" in result.output
    suite = SuiteResult.from_json(out.read_text())
    assert len(suite.settings) == 2 and suite.config["seeds"] == [0, 1]
    doc = json.loads(out.read_text())
    assert set(doc["summary"]) == set(MODES)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_quick_needs_suite():
    result = CliRunner().invoke(cli, ["train", "--quick"])
    assert result.exit_code == 2 and "--suite" in result.output


def test_the_command_line_lists_match_the_library():
    from vsaopt.cli import train as cli_train
    from vsaopt.train import DATASETS, QUICK_MODES

    assert cli_train._MODES == MODES and cli_train._QUICK_MODES == QUICK_MODES
    assert set(cli_train._DATASETS) == set(DATASETS) == set(cli_train.DATASET_DEFAULTS)


def test_a_diverged_run_is_the_worst_drop_and_not_within_tolerance():
    base = [_outcome(0.0, 1.0, 0.0)] * 2
    gone = ModeOutcome(None, None, None, None, 0.5, 10.0, 1.0)
    reg = SettingResult(SuiteSetting("diabetes", None, (8,), 10), 353, 10, 0.1, [], [0, 1],
                        {"baseline": base, "skip": [_outcome(-0.1, 1.0), gone]})
    cls = SettingResult(SuiteSetting("wine", 16, (8,), 10), 16, 10, 0.1, [], [0, 1],
                        {"baseline": base, "skip": [_outcome(0.2, 1.0)] * 2})
    assert reg.median("skip", "metric_drop") is None and not reg.within_tolerance("skip")
    assert reg.median("skip", "final_metric") is None
    suite = SuiteResult([cls, reg], {"seeds": [0, 1]}, "m")
    row = suite.summary()["skip"]
    assert row["diverged"] == "1/2" and row["within_tolerance"] == "1/2"
    assert row["mse_drop_worst"] is None and row["accuracy_drop_worst"] == pytest.approx(0.2)
    assert SuiteResult.from_json(suite.to_json()) == suite
    three = SettingResult(SuiteSetting("diabetes", None, (8,), 10), 353, 10, 0.1, [], [0, 1, 2],
                          {"skip": [_outcome(1.0, 1.0), _outcome(2.0, 1.0), gone]})
    assert three.median("skip", "metric_drop") == 2.0  # a diverged seed ranks as the largest drop
