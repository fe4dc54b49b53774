"""Mutation testing of the golden vectors: the catalogue, its application at run time, the CLI, and what the vectors kill."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vsaopt import compressor
from vsaopt.backend import get_backend
from vsaopt.cli.commands import cli
from vsaopt.golden import FAMILIES, generate, vectors_dir, verify
from vsaopt.golden.mutations import BUG_CLASSES, applied, catalogue, run_catalogue, run_mutation


def _by_name(name: str):
    return next(m for m in catalogue() if m.name == name)


def test_catalogue_covers_every_family_with_named_documented_mutations():
    muts = catalogue()
    assert len(muts) >= 150
    assert {m.family for m in muts} == set(FAMILIES)
    assert len({m.name for m in muts}) == len(muts)
    for m in muts:
        assert m.bug_class in BUG_CLASSES and m.doc and m.doc != m.name


def test_applied_mutation_is_undone_and_the_reference_unchanged():
    original = compressor._split_exponent
    with applied(_by_name("compressor.prescale_sign_flipped")) as be:
        assert compressor._split_exponent is not original
        assert be.name == "numpy"
    assert compressor._split_exponent is original
    with applied(_by_name("pack.pack_2bit_msb_first")) as be:
        assert be.pack_2bit(np.array([1, 0, 0, 0], np.int8))[0].tolist() == [64]
    assert get_backend("numpy").pack_2bit(np.array([1, 0, 0, 0], np.int8))[0].tolist() == [1]


def test_mutation_inside_an_op_closure_is_reached_and_restored():
    # the vsa family's ops captured the public functions in closures; the mutation must reach them
    r = run_mutation(_by_name("vsa.cosine_nan_zero"))
    assert r.status == "killed"
    assert verify(get_backend("numpy")) == []


def test_equivalent_mutation_is_reported_with_its_reason():
    r = run_mutation(_by_name("map.bind_float_in_f64"))
    assert r.status == "equivalent" and r.killed_by == ()
    assert "exact" in r.mutation.equivalent


def test_planted_ternary_cases_kill_every_ternary_mutation_at_least_twice():
    # issue 23: the ternary vectors caught about 1 in 4 of the porting bugs before the planted cases
    results = run_catalogue(catalogue(["ternary"]))
    live = [r for r in results if r.status != "equivalent"]
    assert all(r.status == "killed" for r in live), [r.mutation.name for r in live if not r.killed_by]
    assert all(len(r.killed_by) >= 2 for r in live), [r.mutation.name for r in live if len(r.killed_by) < 2]


@pytest.mark.parametrize("name", ["reductions.sum_block_fold_sequential", "reductions.sum_block_fold_odd_first",
                                  "rng.rounds_upper_bound_exclusive", "compressor.padded_to_power_of_two",
                                  "compressor.remainder_blocks_smallest_first", "ternary.stochastic_le"])
def test_planted_case_kills_a_mutation_random_data_missed(name):
    assert run_mutation(_by_name(name)).status == "killed"


def test_cli_mutate_prints_tables_and_writes_json(tmp_path):
    out = tmp_path / "m.json"
    res = CliRunner().invoke(cli, ["spec", "mutate", "--family", "pack", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "summary" in res.output and "pack_2bit_msb_first" in res.output
    doc = json.loads(out.read_text())
    assert doc["summary"]["pack"]["kill_rate"] == 1.0
    assert len(doc["results"]) == len(catalogue(["pack"]))


def test_cli_mutate_refuses_an_unknown_family():
    res = CliRunner().invoke(cli, ["spec", "mutate", "--family", "nope"])
    assert res.exit_code == 2 and "nope" in res.output


def test_generate_reproduces_the_committed_vector_files(tmp_path):
    generate(tmp_path)
    for path in sorted(vectors_dir().glob("*.json")):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
        assert path.stat().st_size < 2 * 2**20, path.name


#: Kill rate of the non-equivalent catalogue that the committed vectors reach, per family (a ratchet: it may only
#: rise).  Issue 23 asks for 0.95 everywhere; every family is at 1.0.
KILL_RATE_FLOOR = {"rng": 1.0, "reductions": 1.0, "ternary": 1.0, "pack": 1.0, "vsa": 1.0, "map": 1.0,
                   "schedule": 1.0, "accumulator": 1.0, "compressor": 1.0, "history": 1.0}
#: Families whose whole catalogue runs in a few seconds; the others (schedule, accumulator, compressor: about
#: 30 s together on two cores) are covered by ``vsaopt spec mutate`` and by the planted-case tests below.
FAST_FAMILIES = ("rng", "reductions", "ternary", "pack", "vsa", "map", "history")
#: Mutations of the fast families that one case kills, and why a second is not planted.
KILLED_BY_ONE = {
    "rng.rounds_upper_bound_exclusive": "only rounds = 65536 tells it apart; each such case costs a 65536-round "
                                        "Philox under every rng mutation",
}


def _kill_rate(results: list) -> float:
    live = [r for r in results if r.status != "equivalent"]
    return sum(r.status == "killed" for r in live) / len(live) if live else 1.0


@pytest.mark.parametrize("family", FAST_FAMILIES)
def test_committed_vectors_keep_their_kill_rate(family):
    results = run_catalogue(catalogue([family]))
    assert _kill_rate(results) >= KILL_RATE_FLOOR[family], [r.mutation.name for r in results if r.status == "SURVIVED"]
    once = [r.mutation.name for r in results if len(r.killed_by) == 1 and r.mutation.name not in KILLED_BY_ONE]
    assert once == [], "killed by a single case"


#: Cases per family before the last round of planted cases (schedule, accumulator, compressor).
_BEFORE_ROUND = {"schedule": 88, "accumulator": 53, "compressor": 28}


@pytest.mark.parametrize("name", [
    "schedule.cosine_one_sqrt",
    "accumulator.rescale_le", "accumulator.rescale_chunks_share_stream", "accumulator.rescale_chunks_of_31",
    "accumulator.mean_unit_over_count_first", "accumulator.threshold_unit_mean_scale_f32",
    "accumulator.bound_shift_floors",
    "compressor.strata_float_bounds", "compressor.prescale_one_factor", "compressor.quantize_f64_ratio",
    "compressor.dimension_product_in_f64", "compressor.dimension_ceil",
])
def test_planted_boundary_cases_kill_mutations_every_earlier_case_missed(name):
    # words planted on a rescale threshold, units one ulp off a float32 midpoint, exponents beyond +-126,
    # strata bounds and dimension products where float32 and exact arithmetic part: two new cases kill each
    m = _by_name(name)
    tests = json.loads((vectors_dir() / f"{m.family}_test.json").read_text())["tests"]
    new = [c for c in tests if c["tcId"] > _BEFORE_ROUND[m.family]]
    assert run_mutation(m, [c for c in tests if c["tcId"] <= _BEFORE_ROUND[m.family]]).killed_by == ()
    assert len(run_mutation(m, new).killed_by) >= 2


def test_block_scale_equivalence_holds_for_every_block():
    # the proof behind compressor.block_scale_in_f32: blocks are 2**k, k <= 16, and both forms agree on each
    m = _by_name("compressor.block_scale_in_f32")
    assert m.equivalent and "2**k" in m.equivalent
    for k in range(17):
        block = 1 << k
        assert np.float32(1.0) / np.sqrt(np.float32(block)) == np.float32(1.0 / np.sqrt(block)), k


@pytest.mark.parametrize("name", [
    "schedule.trend_needs_21", "schedule.trend_rise_ge", "schedule.trend_fall_le", "schedule.trend_up_f64",
    "schedule.trend_down_f64", "schedule.trend_sum_f64", "schedule.loss_window_of_99", "schedule.adapt_without_caps",
    "schedule.axpy_fused", "schedule.wls_divides_by_det", "schedule.powi_is_pow", "schedule.gate_safety_f64",
    "accumulator.add_stochastic_le", "accumulator.add_stochastic_uniform24", "accumulator.add_threshold_inclusive",
    "accumulator.reset_keeps_exponents",
])
def test_planted_v7_case_kills_its_mutation(name):
    # each of these survived every version 6 case; a planted version 7 case kills it
    m = _by_name(name)
    comments = {c["tcId"]: c["comment"] for c in json.loads((vectors_dir() / f"{m.family}_test.json").read_text())["tests"]}
    v6_cases = {"schedule": 55, "accumulator": 41}[m.family]
    r = run_mutation(m)
    assert r.status == "killed"
    assert any(tc > v6_cases for tc in r.killed_by), [comments[tc] for tc in r.killed_by]


@pytest.mark.parametrize("name", ["schedule.residual_one_minus_in_f32", "schedule.correct_checked_at_step_zero"])
def test_equivalent_schedule_mutations_say_why(name):
    m = _by_name(name)
    assert m.equivalent and len(m.equivalent) > 40
