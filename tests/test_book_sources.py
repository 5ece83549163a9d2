"""Our runs beside the published results (seqlib.book.sources): each comparison is marked agrees,
disagrees or not comparable from the leaderboard row, as the source reads its own runs (best seed or
every run), never from a run that did not fit its training distribution; the budget share is the
runs' training sequences over the source's; every entry names a known task and model."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from seqlib.book import sources
from seqlib.book.sources import AGREES, DISAGREES, FAILS, NOT_COMPARABLE, PUBLISHED, SOLVES, Published
from seqlib.models import list_models
from seqlib.record import RunRecord
from seqlib.tasks import list_tasks


def row(solved: int, n: int = 3, fit: float = 3, threshold: float = 0.9) -> pd.Series:
    return pd.Series({"n_seeds": n, "solved": solved, "fit": fit, "threshold": threshold})


BEST = Published("100%", sources.DELETANG, SOLVES)
BEST_FAILS = Published("24.2%", sources.DELETANG, FAILS)
EVERY = Published("0 glitches in 100/100 runs", sources.LIU, SOLVES)


@pytest.mark.parametrize("r,pub,mark", [
    (row(1), BEST, AGREES),                       # the source reports its best seed: one of ours suffices
    (row(0), BEST, DISAGREES),                    # fit, but no seed solves
    (row(0), BEST_FAILS, AGREES),
    (row(2), BEST_FAILS, DISAGREES),
    (row(0, fit=0), BEST, NOT_COMPARABLE),        # no seed fit: it says nothing beyond its training lengths
    (row(0, fit=0), BEST_FAILS, NOT_COMPARABLE),  # ... whichever way the source points
    (row(0, fit=math.nan), BEST_FAILS, NOT_COMPARABLE),  # fit not recorded
    (row(3, fit=math.nan), BEST, AGREES),         # a solve on the headline split needs no fit check
    (row(2), EVERY, DISAGREES),                   # the source counts runs: every seed must
    (row(3), EVERY, AGREES),
    (row(1, threshold=math.nan), BEST, NOT_COMPARABLE),  # no solve line
    (row(1), Published("not reported", sources.ZOOLOGY, None), NOT_COMPARABLE),
])
def test_a_comparison_is_marked_as_the_source_reads_its_runs(r, pub, mark):
    got, why = sources.verdict(r, pub)
    assert got == mark, why
    assert why


def test_no_run_is_not_comparable_and_a_prediction_says_so():
    assert sources.verdict(None, BEST) == (NOT_COMPARABLE, "no run")
    _, why = sources.verdict(row(0), PUBLISHED[("parity_check", "hawk")])
    assert "prediction" in why


def record(tmp_path, steps: int, batch: int) -> RunRecord:
    from conftest import make_tiny_config

    from seqlib.train import new_record

    rec = new_record(make_tiny_config(tmp_path, "lstm", batch_size=batch))
    rec.train["steps_done"] = steps
    return rec


def test_the_budget_share_is_training_sequences_over_the_sources(tmp_path):
    runs = [record(tmp_path, 1000, 128), record(tmp_path, 500, 128)]
    value, text = sources.share(runs, sources.DELETANG, "parity_check")
    assert value == pytest.approx(750 * 128 / (1_000_000 * 128)) and text.startswith("0.07% of its 128,000,000")
    assert sources.share(runs, sources.GRIFFIN, "selective_copying") == (
        None, "the source does not state its budget")


def test_an_empty_board_has_every_comparison_and_no_run():
    table = sources.against_sources(pd.DataFrame(), [], ["parity_check"])
    assert set(table["task"]) == {"parity_check"} and (table["ours"] == "no run").all()
    assert (table["verdict"] == NOT_COMPARABLE).all()


def test_every_entry_names_a_known_task_and_model_and_deletangs_bar():
    assert {t for t, _ in PUBLISHED} <= set(list_tasks()) and {m for _, m in PUBLISHED} <= set(list_models())
    for (task, model), pub in PUBLISHED.items():
        if pub.source is sources.DELETANG:  # >= 90%: their bar for generalising
            assert pub.expects == (SOLVES if float(pub.result.split("%")[0]) >= 90 else FAILS), (task, model)
            assert task in pub.source.budgets


# MQAR's cells against the sources' plots (sources.against_cells)
GDN = sources.Frontier(1.7e4, 0.89, 6.5e4, 1.0)
BEST_ONLY = sources.Frontier(1e5, 0.85, 1e5, 0.85)


@pytest.mark.parametrize("frontier,value,state,holds", [
    (GDN, 0.90, 1e4, True),     # below the plot's smallest state: no higher than its lowest reading (+ tolerance)
    (GDN, 0.99, 1e4, False),    # more recall from less state than the source's best
    (GDN, 0.96, 1e5, True),     # beyond its largest: no lower than its highest reading (- tolerance)
    (GDN, 0.90, 1e5, False),
    (GDN, 0.945, 1.7e4 * (6.5e4 / 1.7e4) ** 0.5, True),   # half-way in log state: the curve reads 0.945
    (GDN, 0.88, 1.7e4 * (6.5e4 / 1.7e4) ** 0.5, False),
    (BEST_ONLY, 0.86, 2e5, True),   # one point: the best it reports at any state, either side within tolerance
    (BEST_ONLY, 0.99, 2e5, False),
    (BEST_ONLY, 0.30, 5e4, True),   # below its state: any lower recall is consistent
])
def test_a_cell_on_the_frontier_is_read_at_its_state(frontier, value, state, holds):
    got, why = frontier.judge(value, state)
    assert got is holds, why
    assert f"{state:,.0f}" in why or "best it reports" in why


def sweep(values: dict[tuple[int, int], float]) -> pd.DataFrame:
    return pd.DataFrame([{"cell": f"sweep-d{d}-L{n}", "d_model": d, "seq_len": n, "value": v}
                         for (d, n), v in values.items()])


@pytest.mark.parametrize("values,holds", [
    ({(64, 64): 0.9, (64, 128): 0.4, (128, 64): 1.0, (128, 128): 0.98}, True),   # falls at d 64, not at d 128
    ({(64, 64): 0.4, (64, 128): 0.9, (128, 64): 1.0, (128, 128): 0.5}, False),   # rises with the length at d 64
    ({(64, 64): 0.3, (64, 128): 0.3}, False),                                     # flat: nothing falls
    ({(64, 64): 1.0, (64, 128): 0.995}, False),                                   # solves every cell
    ({(64, 64): 0.9, (128, 128): 0.4}, False),                                    # no width at two lengths
])
def test_recall_falling_with_the_length_at_one_width(values, holds):
    got, why = sources.falls_with_length(sweep(values))
    assert got is holds, why


@pytest.mark.parametrize("values,holds", [
    ([0.2, 0.4, 0.7, 0.95], True),
    ([0.2, 0.5, 0.3, 0.95], False),   # falls by more than the tolerance from 32 to 64
    ([0.9, 0.91, 0.9, 0.92], False),  # flat
    ([0.5], False),
])
def test_recall_rising_with_the_window(values, holds):
    rows = pd.DataFrame({"window": [16, 32, 64, 128][:len(values)], "value": values})
    got, why = sources.rises_with_window(rows)
    assert got is holds, why


def cell_scores(**values) -> pd.DataFrame:
    """Zoology-cell scores of some models (None: no record), as seqlib.book.cells.scores gives them."""
    return pd.DataFrame([{"cell": "zoology", "family": "zoology", "model": m, "runs": 4,
                          "recorded": 0 if v is None else 4, "value": v, "seeds": 1, "split": "test",
                          "metric": "accuracy", "state_size": 8192, "train_sequences": 512_000}
                         for m, v in values.items()])


def test_cells_are_marked_from_their_scores_with_the_budget_share():
    table = sources.against_cells(cell_scores(transformer=0.97, deltanet=0.95, gla=None, hawk=0.5), "mqar")
    by = table.set_index("model")
    assert by.loc["transformer", "verdict"] == AGREES                 # Fig. 2: attention ≈1.0 here
    assert by.loc["deltanet", "verdict"] == DISAGREES                 # 8,192 < 9e3: at most 0.79 + tolerance
    assert "below the plot's smallest" in by.loc["deltanet", "why"]
    assert (by.loc["gla", "verdict"], by.loc["gla", "ours"]) == (NOT_COMPARABLE, "no run")
    assert "hawk" not in by.index                                     # no source plots Hawk's Zoology cell
    assert by.loc["transformer", "our budget"].startswith("8.00% of its 6,400,000")
    assert set(table["task"]) == {"mqar (zoology cells)"}
    assert sources.against_cells(cell_scores(transformer=0.97), "chomsky").empty   # no cell comparisons there


def test_every_cell_comparison_is_a_cell_the_book_profile_trains():
    from seqlib.book.cells import entry_plan

    trained = {(r.cell.family, r.config.model.name) for r in entry_plan("mqar", "book")}
    for task, published in sources.CELL_PUBLISHED.items():
        assert task == "mqar"
        for pub in published:
            assert (pub.family, pub.model) in trained, (pub.family, pub.model)


# Griffin's language-modelling claims on the text task's records (sources.against_lm_claims)
LN2 = math.log(2)


def text_runs(model: str, bits: float, curve: dict[int, float], seeds: int = 3) -> list[RunRecord]:
    """Text records of ``seeds`` seeds: ``bits`` per byte on val and test, ``curve`` the test bits per byte by
    evaluation length (the training length 1024 on test, the longer ones on test_long), 600 steps of 32."""
    import test_book_report as rep

    out = []
    for seed in range(seeds):
        at_train = {n: b for n, b in curve.items() if n <= 1024}
        metrics = (rep.rows("val", {}, bits, "bits") + rep.rows("test", {}, bits, "bits")
                   + rep.rows("test", {n: b * LN2 for n, b in at_train.items()}, metric="loss")
                   + rep.rows("test_long", {n: b * LN2 for n, b in curve.items() if n > 1024}, metric="loss"))
        r = rep.record(task="text", model=model, seed=seed, params={"seq_len": 1024}, metrics=metrics, select="val")
        r.config["optim"] = {"batch_size": 32, "steps": 600}
        r.train["steps_done"] = 600
        out.append(r)
    return out


def lm_claims(bar: float | None = 4.75, **models) -> pd.DataFrame:
    from seqlib.book.report import leaderboard

    records = [r for m, (bits, curve) in models.items() for r in text_runs(m, bits, curve)]
    return sources.against_lm_claims(leaderboard(records), records, bar=bar)


FALLS = {1024: 1.60, 2048: 1.55, 16384: 1.50}
RISES = {1024: 1.50, 2048: 1.70, 16384: 2.60}


def test_griffins_claims_are_marked_from_the_text_records():
    table = lm_claims(griffin=(1.50, FALLS), hawk=(1.62, FALLS), transformer=(1.52, RISES))
    by = table.set_index(["task", "model"])["verdict"]
    assert by[("text (~5M parameters)", "griffin")] == AGREES      # 1.50 against 1.52: matches or beats
    assert by[("text (~5M parameters)", "hawk")] == DISAGREES      # +6.6%: more than 5% behind
    assert by[("text (past the training context)", "hawk")] == AGREES         # falls with length
    assert by[("text (past the training context)", "transformer")] == AGREES  # RoPE: rises past 1024
    budget = table.set_index("model").loc["hawk", "our budget"].iloc[0]
    assert budget.startswith("19,660,800 training bytes") and "0.26%" in budget   # 600 x 32 x 1024 / (1.9e9 x 4)


def test_a_claim_needs_runs_that_beat_the_unigram_model():
    table = lm_claims(griffin=(5.0, {1024: 5.0, 4096: 5.0}), transformer=(1.52, RISES))
    by = table.set_index(["task", "model"])
    assert by.loc[("text (~5M parameters)", "griffin"), "verdict"] == NOT_COMPARABLE
    assert "does not beat the byte-unigram model" in by.loc[("text (past the training context)", "griffin"), "why"]
    unknown = lm_claims(bar=None, griffin=(1.5, FALLS), transformer=(1.52, RISES))
    assert (unknown["verdict"] == NOT_COMPARABLE).all() and unknown["why"].str.contains("make corpus").any()
    assert (lm_claims()["verdict"] == NOT_COMPARABLE).all()           # no run at all


def test_the_second_budget_is_held_to_the_same_claims():
    from seqlib.book.report import leaderboard

    records = text_runs("transformer", 1.52, RISES)
    large = pd.DataFrame([{"family": "large", "model": m, "recorded": 1, "value": v, "train_sequences": 19200.0}
                          for m, v in (("griffin", 1.40), ("transformer", 1.30), ("hawk", 1.35))])
    table = sources.against_lm_claims(leaderboard(records), records, large, bar=4.75).set_index(["task", "model"])
    assert table.loc[("text (~20M parameters, one seed)", "griffin"), "verdict"] == DISAGREES   # +7.7%
    assert table.loc[("text (~20M parameters, one seed)", "hawk"), "verdict"] == AGREES        # +3.8% < 5%
    assert table.loc[("text (~20M parameters, one seed)", "hawk"), "our budget"].startswith("19,660,800")
