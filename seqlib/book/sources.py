"""Our runs beside the published results (issue 19, item 3): per (task, model), what a source reports,
where (paper and table, figure or section), how far the value is checked, what it says of the model on
our headline (it solves the task, it fails, or nothing to compare), and the source's training budget.
:func:`against_sources` marks each comparison **agrees**, **disagrees** or **not comparable** from the
records, with the reason and the share of the source's training sequences our runs had.

A comparison follows the source's own reading: Delétang et al. and Grazzi et al. report the best of
their seeds and rates, so our best seed is compared (solved: it reaches the task card's solve line);
Liu et al. count runs, so every seed must (or must not) solve. A run that did not fit its training
distribution supports no claim about lengths or splits beyond it: such a comparison is not comparable.

MQAR's cells (Zoology's configuration, its width x length sweep, Griffin's window) are held to what
the sources plot (:func:`against_cells`): a value near Zoology Fig. 2's, a point on the recall-state
frontier of Zoology's README plot (:class:`Frontier`), recall falling with the length at one width
(Zoology's reading of recurrences), recall rising with the window (Based Fig. 2), each within the
reading's tolerance (:data:`TOLERANCE`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from seqlib.record import RunRecord

SOLVES, FAILS = "solves", "fails"
COLUMNS = ["task", "model", "ours", "reported by the source", "verdict", "why", "our budget", "source", "checked"]
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
MAMBA3 = Source("Mamba-3 (arXiv 2603.15569), Table 4b (scaled accuracy)", UNVERIFIED)  # its budget not in our notes
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
    ("parity_check", "gated_deltanet"): Published("not reported; eigenvalues in [0, 1], as DeltaNet [0,1]: 0.017",
                                                  GRAZZI, FAILS, True),
    ("parity_check", "gated_deltanet_neg"): Published("100% (Gated DeltaNet [-1,1])", MAMBA3, SOLVES),
    ("modular_arithmetic", "gated_deltanet_neg"): Published("99.25% (Gated DeltaNet [-1,1])", MAMBA3, SOLVES),
    ("parity_check", "mamba2"): Published("0.90%", MAMBA3, FAILS),
    ("modular_arithmetic", "mamba2"): Published("47.81%", MAMBA3, FAILS),
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
    from seqlib.book.report import training_sequences

    return sequences_share(training_sequences(rows), source, task)


def sequences_share(ours: float | None, source: Source, task: str) -> tuple[float | None, str]:
    """``ours`` training sequences (None or NaN: not recorded) as a share of ``source``'s on ``task``."""
    budget = (source.budgets or {}).get(task)
    if budget is None:
        return None, "the source does not state its budget"
    if ours is None or pd.isna(ours):
        return None, "steps not recorded"
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
    return pd.DataFrame(out, columns=COLUMNS)


# MQAR's cells (seqlib.book.cells) beside the published results: Zoology's Fig. 2 configuration, the
# recall-state frontier of Zoology's README plot, its width x length sweep, and Based's window sweep
TOLERANCE = 0.05  # a source's value read by eye (about ±0.03) against one seed of ours
BASED_MIXTURE = 32 * (100_000 + 4 * 20_000)  # Based Fig. 2's mixture: 32 epochs of 180k sequences
ZOOLOGY_PLOT = Source("Zoology's README plot 'Recall-Memory Tradeoff' (HazyResearch/zoology, "
                      "analysis/paper/zoology_paper/zoology_results.png, 2025-09-24)",
                      "read by eye from the image (about ±0.03); its runs train Based Fig. 2's mixture of lengths "
                      "up to 256 and test up to 1,024, ours Zoology Fig. 2's length 256; its state sizes are its "
                      "code's, ours seqlib's (elements of every layer)", {"mqar": BASED_MIXTURE})
BASED = Source("Arora et al. 2024 (Based), Fig. 2", "read by eye from the figure (about ±0.03); its runs train a "
               "mixture of lengths up to 256", {"mqar": BASED_MIXTURE})


@dataclass(frozen=True)
class Frontier:
    """A source's best recall of one model against its decode state (elements), read from a plot: from
    (``low_state``, ``low``) to (``high_state``, ``high``). One point (``low_state == high_state``) is
    the best the source reports at any state."""

    low_state: float
    low: float
    high_state: float
    high: float

    def judge(self, value: float, state: float) -> tuple[bool, str]:
        """Whether ``value`` at ``state`` lies on the frontier within :data:`TOLERANCE` -> (it does, why).
        Below the plot's smallest state the model should recall no more than there, beyond a curve's
        largest no less; in between the curve is read at our state (linear in log state)."""
        point = self.low_state == self.high_state
        if state < self.low_state:
            return value <= self.low + TOLERANCE, (f"our state ({state:,.0f}) is below the plot's smallest "
                                                   f"({self.low_state:,.0f}, where it reads {self.low:.2f}): ours "
                                                   "should be no higher")
        if state > self.high_state and not point:
            return value >= self.high - TOLERANCE, (f"our state ({state:,.0f}) is beyond the plot's largest "
                                                    f"({self.high_state:,.0f}, where it reads {self.high:.2f}): "
                                                    "ours should be no lower")
        if point:
            expected, where = self.high, f"the best it reports ({self.high:.2f}, at {self.high_state:,.0f})"
        else:
            t = math.log(state / self.low_state) / math.log(self.high_state / self.low_state)
            expected = self.low + t * (self.high - self.low)
            where = f"the plot's curve at our state ({state:,.0f}): {expected:.2f}"
        return abs(value - expected) <= TOLERANCE, f"{where}: ours should be within {TOLERANCE} of it"


@dataclass(frozen=True)
class CellPublished:
    """What ``source`` reports that a model's cells of ``family`` (MQAR's, :mod:`seqlib.book.cells`)
    can be held to: ``result`` in words, and ``judge`` the check of their scores (the rows of
    :func:`seqlib.book.cells.scores` with a record) -> (it holds, why). ``predicted``: the source
    states it for the model's class, not from a run of this model."""

    family: str
    model: str
    result: str
    source: Source
    judge: Callable[[pd.DataFrame], tuple[bool, str]]
    predicted: bool = False


def near_one(rows: pd.DataFrame) -> tuple[bool, str]:
    """Every cell at about 1.0 (at least 1 - :data:`TOLERANCE`)."""
    low = rows[rows["value"] < 1 - TOLERANCE]
    return low.empty, ("every cell at least " if low.empty else "below ") + (
        f"{1 - TOLERANCE:.2f}" + ("" if low.empty else ": " + cell_values(low)))


def on_frontier(frontier: Frontier) -> Callable[[pd.DataFrame], tuple[bool, str]]:
    def judge(rows: pd.DataFrame) -> tuple[bool, str]:
        row = rows.iloc[0]
        if pd.isna(row["state_size"]):
            return False, "the record has no state size"
        return frontier.judge(float(row["value"]), float(row["state_size"]))
    return judge


def falls_with_length(rows: pd.DataFrame) -> tuple[bool, str]:
    """Zoology's reading for recurrences and gated convolutions: at one width, recall falls as the
    sequence (and its pairs) grows, so the width must grow with it. Holds where at no width the longer
    length scores more than :data:`TOLERANCE` above the shorter and at some width less, the model not
    solving every cell."""
    drops = {}
    for d, g in rows.groupby("d_model"):
        by_length = g.set_index("seq_len")["value"].sort_index()
        if len(by_length) > 1:
            drops[int(d)] = float(by_length.iloc[0] - by_length.iloc[-1])
    if not drops:
        return False, "no width has cells at two lengths"
    text = "; ".join(f"d {d}: {-drop:+.2f} from the shortest length to the longest" for d, drop in drops.items())
    if (rows["value"] >= 0.99).all():
        return False, f"it solves every cell ({text})"
    return bool(min(drops.values()) >= -TOLERANCE and max(drops.values()) > TOLERANCE), text


def rises_with_window(rows: pd.DataFrame) -> tuple[bool, str]:
    """Based's sliding-window attention: recall rises with the window. Holds where no larger window
    scores more than :data:`TOLERANCE` below a smaller one and the largest beats the smallest by more."""
    by_window = rows.set_index("window")["value"].sort_index()
    text = ", ".join(f"W {int(w)}: {v:.2f}" for w, v in by_window.items())
    if len(by_window) < 2:
        return False, f"one window only ({text})"
    falls = (by_window.cummax() - by_window).max() > TOLERANCE
    return bool(not falls and by_window.iloc[-1] - by_window.iloc[0] > TOLERANCE), text


def cell_values(rows: pd.DataFrame) -> str:
    return ", ".join(f"{r['cell']} {r['value']:.2f}" for _, r in rows.iterrows())


ATTENTION = ("transformer", "transformer_vanilla")
CELL_PUBLISHED: dict[str, list[CellPublished]] = {"mqar": [  # per task entry of the grid
    *(CellPublished("zoology", m, "attention ≈1.0 at d = 128, L = 256 (this cell's configuration)", ZOOLOGY,
                    near_one) for m in ATTENTION),
    CellPublished("zoology", "gated_deltanet", "0.89 at 1.7e4 state elements to ≈1.0 at 6.5e4", ZOOLOGY_PLOT,
                  on_frontier(Frontier(1.7e4, 0.89, 6.5e4, 1.0))),
    CellPublished("zoology", "deltanet", "0.79 at 9e3 state elements to 0.99 at 1.3e5", ZOOLOGY_PLOT,
                  on_frontier(Frontier(9e3, 0.79, 1.3e5, 0.99))),
    CellPublished("zoology", "gla", "up to 0.95, at 7e4 state elements", ZOOLOGY_PLOT,
                  on_frontier(Frontier(7e4, 0.95, 7e4, 0.95))),
    CellPublished("zoology", "mamba2", "up to 0.85, at 1e5 state elements", ZOOLOGY_PLOT,
                  on_frontier(Frontier(1e5, 0.85, 1e5, 0.85))),
    CellPublished("zoology", "rwkv7", "up to 0.98, at 1e6 state elements", ZOOLOGY_PLOT,
                  on_frontier(Frontier(1e6, 0.98, 1e6, 0.98))),
    *(CellPublished("sweep", m, "attention ≈1.0 at every width and length", ZOOLOGY, near_one) for m in ATTENTION),
    *(CellPublished("sweep", m, "gated convolutions and RWKV: at one width recall falls with the length (L 64 to "
                    "128 at d 64: RWKV 0.74 to 0.18, BaseConv 0.69 to 0.37), so the width must grow with it",
                    ZOOLOGY, falls_with_length, predicted=True) for m in ("hawk", "hawk_neg", "lstm", "gru")),
    CellPublished("window", "griffin", "sliding-window attention rises from 0.07 to 1.0 as its window grows",
                  BASED, rises_with_window, predicted=True),
]}


def against_cells(cell_scores: pd.DataFrame, task: str) -> pd.DataFrame:
    """Per :data:`CELL_PUBLISHED` entry of ``task``, from ``cell_scores`` (:func:`seqlib.book.cells.scores` of the
    profile's cells of ``task``): our cells' test scores at the rate chosen on ``val``, the source's
    result, the verdict and why, and our share of the source's training budget (the cells' mean);
    columns as :func:`against_sources`', the cell family in ``task``. A family the profile does not
    train for the model has no row."""
    out = []
    for pub in CELL_PUBLISHED.get(task, []):
        mine = cell_scores[(cell_scores["family"] == pub.family) & (cell_scores["model"] == pub.model)]
        if mine.empty:
            continue
        done = mine[mine["recorded"] > 0].sort_values("cell")
        if done.empty:
            mark, why, ours, budget = NOT_COMPARABLE, "no run", "no run", ""
        else:
            holds, why = pub.judge(done)
            mark = AGREES if holds else DISAGREES
            if pub.predicted:
                why += " (the source's statement for a related model class, not a run of this model)"
            seeds = sorted(set(done["seeds"].astype(int)))
            ours = (cell_values(done) + f" ({done['split'].iloc[0]} {done['metric'].iloc[0]}, "
                    f"{'/'.join(map(str, seeds))} seed{'s' * (seeds != [1])} at the rate chosen on val"
                    + (f", {len(mine) - len(done)} of {len(mine)} cells without a record)" if len(done) < len(mine) else ")"))
            budget = sequences_share(done["train_sequences"].mean(), pub.source, task)[1]
        out.append({"task": f"{task} ({pub.family} cells)", "model": pub.model, "ours": ours,
                    "reported by the source": pub.result, "verdict": mark, "why": why, "our budget": budget,
                    "source": pub.source.name, "checked": pub.source.checked})
    return pd.DataFrame(out, columns=COLUMNS)


# Griffin's language-modelling claims (De et al. 2024), held to the text chapter's runs in miniature
MATCHES, CLOSE = 0.01, 0.05  # "matches or beats": within 1% of the baseline's bits per byte; "close": within 5%
BYTES_PER_TOKEN = 4  # an assumption for the budget share: the paper counts tokens of its tokenizer, we count bytes
GRIFFIN_LM = Source("De et al. 2024 (Griffin), §3 (Fig. 1) and §6.1 (Fig. 5)",
                    "the paper's statements, at 100M to 14B parameters on up to 300B tokens; no number of theirs "
                    "is compared, only the direction", {"text": 1_900_000_000})  # its smallest size (App. C, Table 2)


def lm_claims_rule() -> str:
    """How :func:`against_lm_claims` marks the claims, in words, from its constants (the text page states it)."""
    from seqlib.book.report import EXTRAPOLATION_TOLERANCE

    return ("**How Griffin's claims are marked.** A run is held to a claim only if its `test` bits per byte beat a "
            "byte-unigram model fitted on the train split (`seqlib.corpus.unigram_bits`): one that does not has not "
            f"learned to use its context. Griffin *matches or beats* the Transformer where its mean is within "
            f"{MATCHES:.0%} of the Transformer's bits per byte or below; Hawk *comes close* within {CLOSE:.0%}: our "
            "readings of the paper's words, at equal parameters and bytes, not its equal FLOPs. A curve *holds* past "
            "the training context where the bits per byte at the longest length are within "
            f"{EXTRAPOLATION_TOLERANCE:.0%} of those at the training length, *improves* below that and *breaks* above "
            "it; Hawk and Griffin agree with §6.1 where they hold or improve, the RoPE Transformer where it breaks.")


def text_budget(records: list[RunRecord]) -> str:
    """Our runs' training bytes (steps done x batch x window, their mean) beside the paper's tokens."""
    from seqlib.book.report import task_of, training_sequences

    sequences = training_sequences(records)
    return "steps not recorded" if sequences is None else bytes_budget(sequences * task_of(records[0]).seq_len)


def bytes_budget(ours: float) -> str:
    tokens = GRIFFIN_LM.budgets["text"]
    return (f"{ours:,.0f} training bytes; the paper's smallest model trains on {tokens:,} tokens (App. C, Table 2), "
            f"so about {ours / (tokens * BYTES_PER_TOKEN):.2%} of it at an assumed {BYTES_PER_TOKEN} bytes a token")


def _learned(bits: float, bar: float | None, who: str) -> str | None:
    """Why a run of ``bits`` per byte cannot be held to a claim (None: it can): it must beat the
    byte-unigram model's ``bar`` (:func:`seqlib.corpus.unigram_bits`)."""
    if bar is None:
        return "the byte corpus is not built here (make corpus), so the unigram bar a run must beat is unknown"
    if not bits < bar:
        return (f"{who} ({bits:.3f} bits per byte) does not beat the byte-unigram model ({bar:.3f}): it has not "
                "learned to use its context")
    return None


def against_lm_claims(board: pd.DataFrame, records: list[RunRecord], large: pd.DataFrame | None = None,
                      bar: float | None = None) -> pd.DataFrame:
    """Griffin's claims on the text task's runs: quality at a matched budget (Griffin matches or beats the
    Transformer, within :data:`MATCHES`; Hawk comes close, within :data:`CLOSE`; mean test bits per byte
    at the rate chosen on val, the ``board``'s rows, and again at the ``large`` cell's one seed), and
    extrapolation (Hawk and Griffin hold or improve past the training length, the RoPE Transformer breaks:
    :func:`seqlib.book.report.extrapolation`). A run that does not beat the unigram ``bar`` is held to
    nothing. Columns as :func:`against_sources`'."""
    from seqlib.book.report import EXTRAPOLATION_TOLERANCE, bits_curves, chosen_runs, extrapolation, task_of

    rows = {r["model"]: r for _, r in board.iterrows() if r["task"] == "text"} if not board.empty else {}
    budgets = {"~5M parameters": ({m: r["mean"] for m, r in rows.items()},
                                  lambda m: text_budget(chosen_runs(rows[m], records)))}
    if large is not None and not large.empty:
        done = large[large["recorded"] > 0]
        texts = [r for r in records if r.task == "text" and r.status == "ok"]
        window = task_of(texts[0]).seq_len if texts else None  # the cell's windows are the entry's
        seen = dict(zip(done["model"], done["train_sequences"]))
        budgets["~20M parameters, one seed"] = (dict(zip(done["model"], done["value"])), lambda m: (
            bytes_budget(seen[m] * window) if window and pd.notna(seen[m]) else "training bytes not known"))
    out = []

    def add(where: str, model: str, ours: str, claim: str, mark: str, why: str, budget: str) -> None:
        out.append({"task": f"text ({where})", "model": model, "ours": ours, "reported by the source": claim,
                    "verdict": mark, "why": why, "our budget": budget, "source": GRIFFIN_LM.name,
                    "checked": GRIFFIN_LM.checked})

    for where, (bits, budget_of) in budgets.items():
        for model, claim, within in (("griffin", "matches or beats the Transformer baseline at equal training "
                                      "compute", MATCHES), ("hawk", "comes close to the Transformer baseline", CLOSE)):
            if model not in bits or "transformer" not in bits:
                add(where, model, "no run" if model not in bits else f"{bits[model]:.3f} bits per byte", claim,
                    NOT_COMPARABLE, "no run of " + (model if model not in bits else "the Transformer"), "")
                continue
            ratio = bits[model] / bits["transformer"] - 1
            ours = f"{bits[model]:.3f} bits per byte against the Transformer's {bits['transformer']:.3f} ({ratio:+.1%})"
            unfit = _learned(bits[model], bar, model) or _learned(bits["transformer"], bar, "the Transformer")
            if unfit:
                add(where, model, ours, claim, NOT_COMPARABLE, unfit, budget_of(model))
                continue
            holds = ratio <= within
            add(where, model, ours, claim, AGREES if holds else DISAGREES,
                f"{'within' if holds else 'more than'} {within:.0%} of the baseline's bits per byte, at equal "
                "parameters and bytes (not the paper's equal FLOPs)", budget_of(model))
    trends = extrapolation(bits_curves([r for r in records if r.task == "text"])).set_index("model")
    for model, claim, expects in (("hawk", "extrapolates: holds or improves to at least 4x its training length",
                                   ("holds", "improves")),
                                  ("griffin", "extrapolates: holds or improves to at least 4x its training length",
                                   ("holds", "improves")),
                                  ("transformer", "the RoPE baseline gets worse past its training length",
                                   ("breaks",))):
        if model not in trends.index:
            add("past the training context", model, "no run", claim, NOT_COMPARABLE, "no run evaluated past its "
                "training length", "")
            continue
        t = trends.loc[model]
        ours = (f"{t['train_bits']:.3f} bits per byte at {t['train_length']:,}, {t['longest_bits']:.3f} at "
                f"{t['longest']:,} ({t['change']:+.1%}: {t['trend']})")
        unfit = _learned(t["train_bits"], bar, model)
        holds = t["trend"] in expects
        add("past the training context", model, ours, claim, NOT_COMPARABLE if unfit else AGREES if holds else DISAGREES,
            unfit or f"it {t['trend']} (a change beyond ±{EXTRAPOLATION_TOLERANCE:.0%} of its bits at the training "
                     "length counts)",
            budgets["~5M parameters"][1](model) if model in rows else "")
    return pd.DataFrame(out, columns=COLUMNS)
