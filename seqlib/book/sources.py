"""Our runs beside the published results (issue 19, item 3): per (task, model), what a source reports,
where (paper and table, figure or section), how far the value is checked, what it says of the model on
our headline (it solves the task, it fails, or nothing to compare), and the source's training budget.
:func:`against_sources` marks each comparison **agrees**, **disagrees** or **not comparable** from the
records, with the reason and the share of the source's training sequences our runs had.

A comparison follows the source's own reading: Delétang et al. and Grazzi et al. report the best of
their seeds and rates, so our best seed is compared (solved: it reaches the task card's solve line);
Liu et al. count runs, so every seed must (or must not) solve. A run that did not fit its training
distribution supports no claim about lengths or splits beyond it: such a comparison is not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from seqlib.record import RunRecord

SOLVES, FAILS = "solves", "fails"
AGREES, DISAGREES, NOT_COMPARABLE = "agrees", "disagrees", "not comparable"
UNVERIFIED = "not verified against the paper (a third-party quote)"


@dataclass(frozen=True)
class Source:
    """A source: its name as the pages cite it, how far its values are checked, and how many training
    sequences (steps x batch) its runs had per task (None: the source does not say)."""

    name: str
    checked: str
    budgets: dict[str, int] | None = None
    runs: str = "best"  # "best": it reports the best seed (and rate); "all": a result over all its runs


# Delétang et al.'s Table 2 (%), per task: (LSTM, Transformer, chance where it is not 50%)
DELETANG_TABLE_2: dict[str, tuple[float, float, str]] = {
    "parity_check": (100, 52.0, "50%"), "even_pairs": (100, 96.4, ""), "cycle_navigation": (100, 61.9, "20%"),
    "modular_arithmetic": (100, 24.2, "20%"), "reverse_string": (60.9, 62.3, ""),
    "stack_manipulation": (59.1, 57.5, ""), "modular_arithmetic_brackets": (59.2, 32.5, "20%"),
    "solve_equation": (67.8, 25.7, "20%"), "duplicate_string": (57.6, 52.8, ""),
    "missing_duplicate_string": (54.3, 56.4, ""), "odds_first": (55.6, 52.8, ""), "binary_addition": (55.5, 54.3, ""),
    "binary_multiplication": (53.1, 52.2, ""), "compute_sqrt": (57.5, 52.4, ""), "bucket_sort": (99.3, 91.9, ""),
}
DELETANG = Source("Delétang et al. 2023, Table 2", UNVERIFIED,
                  dict.fromkeys(DELETANG_TABLE_2, 1_000_000 * 128))  # 1M steps at batch 128 (§4; the same quotes)
GRAZZI = Source("Grazzi et al. 2024, §5.1 (scaled accuracy)", UNVERIFIED,
                {"parity_check": 20_000 * 256, "modular_arithmetic": 100_000 * 256,
                 "modular_arithmetic_brackets": 100_000 * 256})
LIU = Source("Liu et al. 2023", UNVERIFIED + "; the abstract confirms only the Transformers' long tail of sporadic errors",
             {"flipflop": 10_000 * 16}, runs="all")
GRIFFIN = Source("De et al. 2024 (Griffin), §6.2 and App. H", "the paper's statement (no number)")
ZOOLOGY = Source("Arora et al. 2023 (Zoology), Fig. 2", "read by eye from the figure (about ±0.03)",
                 {"mqar": 100_000 * 64})  # 100k training sequences, 64 epochs (the Fig. 2 configs)


@dataclass(frozen=True)
class Published:
    """What ``source`` reports for one (task, model), and what that says of our headline: ``expects``
    :data:`SOLVES` or :data:`FAILS` (None: the source reports nothing this model can be held to).
    ``predicted``: the source states it for the model's class (a theorem, a related model), not from a
    run of this model."""

    result: str
    source: Source
    expects: str | None
    predicted: bool = False


def _deletang(task: str) -> dict[tuple[str, str], Published]:
    """Delétang et al.'s LSTM and Transformer on ``task`` (:data:`DELETANG_TABLE_2`); >= 90% is their bar
    for generalising."""
    lstm, transformer, chance = DELETANG_TABLE_2[task]
    note = f" (chance {chance})" if chance else ""
    return {(task, model): Published(f"{score:g}%{note}", DELETANG, SOLVES if score >= 90 else FAILS)
            for model, score in (("lstm", lstm), ("transformer", transformer))}


# the other sources' results, per (task, model)
_OTHERS: dict[tuple[str, str], Published] = {
    ("parity_check", "hawk"): Published("not reported; Theorem 1: a linear RNN with transition eigenvalues in "
                                        "[0, 1] cannot (Mamba [0,1]: 0.000, [-1,1]: 1.000)", GRAZZI, FAILS, True),
    ("parity_check", "griffin"): Published("not reported (as Hawk: a_t in (0, 1))", GRAZZI, FAILS, True),
    **{("parity_check", m): Published("not reported; with eigenvalues in [-1, 1] a linear RNN can (Mamba [-1,1]: "
                                      "1.000, DeltaNet [-1,1]: 1.000)", GRAZZI, SOLVES, True)
       for m in ("hawk_neg", "griffin_neg")},  # the book's controls: the RG-LRU's a_t in (-1, 1)
    ("parity_check", "deltanet"): Published("0.017 (DeltaNet [0,1])", GRAZZI, FAILS),
    ("parity_check", "deltanet_neg"): Published("1.000 (DeltaNet [-1,1])", GRAZZI, SOLVES),
    ("modular_arithmetic", "deltanet"): Published("0.314 (DeltaNet [0,1])", GRAZZI, FAILS),
    ("modular_arithmetic", "deltanet_neg"): Published("0.971 (DeltaNet [-1,1])", GRAZZI, SOLVES),
    ("flipflop", "lstm"): Published("0 glitches: perfect extrapolation in 100/100 runs", LIU, SOLVES),
    ("flipflop", "transformer"): Published("≈0 in distribution, sporadic glitches on the sparse split, varying by "
                                           "orders of magnitude across seeds", LIU, FAILS),
    ("selective_copying", "hawk"): Published("solved, but learns much more slowly than MQA", GRIFFIN, SOLVES),
    ("selective_copying", "griffin"): Published("solved, about as fast as MQA", GRIFFIN, SOLVES),
    ("selective_copying", "transformer"): Published("solved (MQA)", GRIFFIN, SOLVES),
    ("induction_heads", "hawk"): Published("solved; extrapolates to far longer sequences", GRIFFIN, SOLVES),
    ("induction_heads", "griffin"): Published("solved; extrapolates", GRIFFIN, SOLVES),
    ("induction_heads", "transformer"): Published("solved at the training length; fails to extrapolate (RoPE)",
                                                  GRIFFIN, FAILS),
    ("induction_heads", "local_transformer"): Published("not reported (MQA solves it at the training length)",
                                                        GRIFFIN, None),
    ("mqar", "transformer"): Published("≈1.0 at every width (attention), L = 256", ZOOLOGY, SOLVES),
    ("mqar", "local_transformer"): Published("not reported (global attention ≈1.0)", ZOOLOGY, None),
    ("mqar", "hawk"): Published("not reported (gated convolutions and RWKV at width 128: 0.07 to 0.63)", ZOOLOGY, None),
    ("mqar", "griffin"): Published("not reported (attention ≈1.0; gated convolutions and RWKV at width 128: "
                                   "0.07 to 0.63)", ZOOLOGY, None),
    ("mqar", "lstm"): Published("not reported (gated convolutions and RWKV at width 128: 0.07 to 0.63)", ZOOLOGY, None),
}

# every comparison, task by task (Delétang et al.'s first within a task)
PUBLISHED: dict[tuple[str, str], Published] = {
    key: pub
    for task in dict.fromkeys([*DELETANG_TABLE_2, *(t for t, _ in _OTHERS)])
    for key, pub in [*(_deletang(task) if task in DELETANG_TABLE_2 else {}).items(),
                     *((k, p) for k, p in _OTHERS.items() if k[0] == task)]
}


def share(rows: list[RunRecord], source: Source, task: str) -> tuple[float | None, str]:
    """Our runs' training sequences (steps done x batch, their mean) as a share of the source's -> (the
    share or None, the phrase the table shows)."""
    budget = (source.budgets or {}).get(task)
    if budget is None:
        return None, "the source does not state its budget"
    done = [r.train.get("steps_done") for r in rows]
    if not rows or None in done:
        return None, "steps not recorded"
    ours = sum(d * r.config["optim"]["batch_size"] for d, r in zip(done, rows)) / len(rows)
    return ours / budget, f"{ours / budget:.2%} of its {budget:,} training sequences"


def verdict(row: pd.Series | None, published: Published) -> tuple[str, str]:
    """(agrees | disagrees | not comparable, why) for one leaderboard row (None: no run) against what the
    source says of it."""
    if row is None:
        return NOT_COMPARABLE, "no run"
    if published.expects is None:
        return NOT_COMPARABLE, "the source reports nothing this model can be held to"
    if pd.isna(row.get("threshold")):
        return NOT_COMPARABLE, "the task has no solve line"
    n, solved = int(row["n_seeds"]), int(row["solved"])
    ours = solved >= 1 if published.source.runs == "best" else solved == n
    said = (f"{'our best seed' if published.source.runs == 'best' else 'every seed'} "
            f"{'reaches' if ours else 'misses'} the solve line ({solved}/{n} seeds do)")
    fit = row.get("fit")
    if not ours and pd.isna(fit):  # a miss beyond the training lengths means something only if it fit them
        return NOT_COMPARABLE, f"{said}; whether it fit its training distribution is not recorded"
    if not ours and fit == 0:
        return NOT_COMPARABLE, f"{said}, but no seed fit its training distribution: it says nothing beyond it"
    basis = " (the source's prediction for its model class, not a run of this model)" if published.predicted else ""
    agrees = ours == (published.expects == SOLVES)
    why = said + basis + ("" if agrees or ours else "; a longer budget may change it")
    return (AGREES if agrees else DISAGREES), why


def against_sources(board: pd.DataFrame, records: list[RunRecord], tasks: list[str] | None = None) -> pd.DataFrame:
    """Per (task, model) of :data:`PUBLISHED` (of ``tasks``, default all): our headline (the
    :func:`seqlib.book.report.leaderboard` row: mean, best seed, seeds), the source's result, where it
    comes from and how far it is checked, the :func:`verdict` and why, and our share of the source's
    training budget (:func:`share`, the chosen rate's runs)."""
    from seqlib.book.report import chosen_runs, seed_cells

    ours = board.set_index(["task", "model"]) if not board.empty else None
    cells = seed_cells(board).set_index(["task", "model"]) if not board.empty else None
    out = []
    for (task, model), pub in PUBLISHED.items():
        if tasks is not None and task not in tasks:
            continue
        row = ours.loc[(task, model)] if ours is not None and (task, model) in ours.index else None
        mark, why = verdict(row, pub)
        text, budget = "no run", ""
        if row is not None:
            c = cells.loc[(task, model)]
            seeds = f"{row['n_seeds']} seed{'' if row['n_seeds'] == 1 else 's'}"
            text = f"mean {c['mean [95% CI]']}, best {row['best']:.3f} ({row['label']}, {seeds})"
            picked = pd.Series({"task": task, "model": model, "lr": row["lr"]})
            budget = share(chosen_runs(picked, records), pub.source, task)[1]
        out.append({"task": task, "model": model, "ours": text, "reported by the source": pub.result,
                    "verdict": mark, "why": why, "our budget": budget, "source": pub.source.name,
                    "checked": pub.source.checked})
    return pd.DataFrame(out)
