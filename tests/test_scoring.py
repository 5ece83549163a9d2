"""The scoring card of every task: present, consistent with the evaluator, and today's headline choices."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from test_tasks_registry import small

from seqlib.evaluate import (
    METRIC_SCALES,
    ConstantAnswer,
    evaluate_split,
    metric_scale,
    split_metric,
    summarize,
)
from seqlib.tasks import Scoring, get_task, list_tasks
from seqlib.tasks.scoring import COPYING_SOLVE_THRESHOLD, DP_SOLVE_THRESHOLD


@pytest.mark.parametrize("name", list_tasks())
def test_every_task_has_a_consistent_card(name):
    task = small(name)
    card = task.scoring
    assert isinstance(card, Scoring) and card.length_key == "length"
    assert card.split in task.splits and set(card.curve_splits) <= set(task.splits)
    low, high = card.train_lengths
    assert isinstance(low, int) and isinstance(high, int) and 1 <= low <= high
    assert card.chance == task.spec.chance
    assert card.label and card.threshold_source
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.split = "train"


@pytest.mark.parametrize("name", list_tasks())
def test_the_evaluator_emits_the_headline_and_the_curve(name):
    """A constant answer, scored by the evaluator itself, gives a finite headline value and a
    ``length`` slice on every curve split."""
    task = small(name)
    card = task.scoring
    model = ConstantAnswer(task.spec, 0)
    for split in {card.split, *card.curve_splits}:
        per_example = evaluate_split(model, task, split, 20, 0, 64, torch.device("cpu"))
        rows = summarize(per_example, task.spec, split)
        if split == card.split:
            assert math.isfinite(split_metric(rows, split, card.metric)), (split, card.metric)
        if split in card.curve_splits:
            assert any(r["slice_key"] == card.length_key for r in rows), split


@pytest.mark.parametrize("name", list_tasks())
def test_every_sample_carries_its_length(name):
    task = small(name)
    for split in task.splits:
        b = task.sample(split, 4, seed=1)
        assert "length" in b.meta and b.meta["length"].dtype.kind in "iu", split
        if task.lengths(split):
            assert set(b.meta["length"].tolist()) <= set(task.lengths(split)), split


# today's choices (chapters/results.py::headline, chapters/length_generalization.py::length_spec)
HEADLINES = {
    "parity_check": ("test", "length_mean_accuracy", True, "accuracy, length mean", ("val", "test")),
    "bucket_sort": ("test", "length_mean_accuracy", True, "accuracy, length mean", ("val", "test")),
    "flipflop": ("val_sparse", "glitch_rate", False, "glitch rate, sparse", ()),
    "knapsack": ("test", "f1", True, "F1", ("test", "test_length")),
    "balanced_partition": ("test", "f1", True, "F1", ("test", "test_length")),
    "subset_sum": ("test", "accuracy", True, "accuracy (= micro-F1)", ("test", "test_length")),
    "lis": ("test", "loss", False, "MSE", ("test", "test_length")),
    "mqar": ("test", "accuracy", True, "accuracy", ("test_length",)),
    "selective_copying": ("test", "accuracy", True, "accuracy", ("test", "test_length")),
    "induction_heads": ("test", "accuracy", True, "accuracy", ("test", "test_length")),
}


@pytest.mark.parametrize("name", sorted(HEADLINES))
def test_todays_headline_choices(name):
    c = get_task(name).scoring
    assert (c.split, c.metric, c.higher_is_better, c.label, c.curve_splits) == HEADLINES[name]


def test_training_lengths_come_from_the_instance():
    assert get_task("parity_check", train_max_length=20).scoring.train_lengths == (1, 20)
    assert get_task("parity_check").scoring.train_lengths == (1, 40)
    assert get_task("mqar", vocab_size=512, seq_len=64, num_kv_pairs=4).scoring.train_lengths == (64, 64)
    assert get_task("knapsack", num_items=5, ood_num_items=7).scoring.train_lengths == (5, 5)
    assert get_task("induction_heads", seq_len=32, test_lengths=(64,)).scoring.train_lengths == (32, 32)
    assert get_task("flipflop", seq_len=64).scoring.train_lengths == (64, 64)


def test_solve_thresholds_follow_the_direction():
    chomsky, mqar, flipflop = (get_task(n).scoring for n in ("even_pairs", "mqar", "flipflop"))
    assert chomsky.solve_threshold == 0.9 and chomsky.solves(0.9) and not chomsky.solves(0.89)
    assert mqar.solve_threshold == 0.99 and mqar.solves(0.995) and not mqar.solves(0.98)
    assert flipflop.solves(0.0) and not flipflop.solves(1e-4)  # a glitch rate: lower is better
    assert get_task("lis").scoring.solves(0.0) is None  # an MSE: no solve line
    assert get_task("cycle_navigation").scoring.chance == pytest.approx(0.2)
    assert get_task("knapsack").scoring.chance is None


def test_the_book_sets_the_solve_line_where_the_source_states_none():
    """Copying and DP: the sources call tasks solved without a number; the cards carry the book's
    constants and say so. LIS's MSE has no line."""
    for name in ("selective_copying", "induction_heads"):
        card = get_task(name).scoring
        assert card.solve_threshold == COPYING_SOLVE_THRESHOLD == 0.99 and card.threshold_source.startswith("ours")
    for name in ("knapsack", "subset_sum", "min_coin_change", "balanced_partition"):
        card = get_task(name).scoring
        assert card.solve_threshold == DP_SOLVE_THRESHOLD == 0.99 and card.threshold_source.startswith("ours")
        assert card.solves(0.99) and not card.solves(0.98)
    lis = get_task("lis").scoring
    assert lis.solve_threshold is None and lis.threshold_source.startswith("none")


@pytest.mark.parametrize("name", list_tasks())
def test_the_card_s_direction_is_its_metric_s(name):
    """The summaries read a metric's range and direction from ``seqlib.evaluate.metric_scale``; a card's
    headline must agree with it."""
    card = small(name).scoring
    assert metric_scale(card.metric)[2] == card.higher_is_better


def test_every_emitted_metric_has_a_scale_that_holds_its_values():
    assert metric_scale("length_mean_accuracy") == metric_scale("accuracy") == (0.0, 1.0, True)
    assert metric_scale("loss") == (0.0, None, False) and metric_scale("glitch_rate") == (0.0, 1.0, False)
    with pytest.raises(KeyError):
        metric_scale("bleu")
    emitted = set()
    for t in (small("knapsack"), small("parity_check"), small("lis")):  # binary, classes, regression
        per_example = evaluate_split(ConstantAnswer(t.spec, 0), t, "test", 8, 0, 8, torch.device("cpu"))
        for row in summarize(per_example, t.spec, "test"):
            low, high, _ = metric_scale(row["metric"])
            assert (low is None or row["value"] >= low) and (high is None or row["value"] <= high), row
            emitted.add(row["metric"])
    assert emitted == set(METRIC_SCALES)


@pytest.mark.parametrize("name", list_tasks())
def test_every_task_has_an_in_distribution_validation_split(name):
    """Selection and early stopping need a split of the training distribution that no reported number
    uses (the protocol issue): ``val``, on its own seed stream, at the training lengths."""
    task = small(name)
    assert "val" in task.splits
    val, train = task.sample("val", 4, seed=0), task.sample("train", 4, seed=0)
    assert not torch.equal(val.inputs, train.inputs) or val.inputs.shape != train.inputs.shape
    lo, hi = task.scoring.train_lengths
    assert all(lo <= n <= hi for n in val.meta["length"]), (val.meta["length"], task.scoring.train_lengths)
