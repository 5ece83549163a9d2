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
