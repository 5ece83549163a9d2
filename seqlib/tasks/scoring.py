"""A task's scoring card: how its source scores it, so no code outside the task branches on its name.

Every task declares ``task.scoring`` (a :class:`Scoring` built from the instance's own parameters);
the protocols and thresholds are those of ``../shared/reference/tasks.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

LENGTH_KEY = "length"  # the meta key every task gives its length axis (the length curves' slice)

# The book's own solve lines, for the task families whose source counts a task as solved without a number
# (the cards name them as ours in ``threshold_source``); the solve rates of the pages use them.
COPYING_SOLVE_THRESHOLD = 0.99  # selective copying, induction heads (accuracy): Zoology's MQAR line
DP_SOLVE_THRESHOLD = 0.99  # the DP tasks' F1 or accuracy (= micro-F1); the MSE of LIS has no solve line


@dataclass(frozen=True, kw_only=True)
class Scoring:
    """How one task instance is scored.

    split, metric:    the headline: a metric name of the evaluator's rows (``seqlib.evaluate``) on
                      that split's whole-split slice, or ``length_mean_<m>``: ``<m>`` averaged over
                      the split's ``length`` slice (``seqlib.evaluate.length_mean``).
    higher_is_better: the metric's direction.
    label:            a short name for tables.
    train_lengths:    ``(shortest, longest)`` length of the training split, in ``length`` meta units.
    curve_splits:     the splits whose ``length`` slice forms the length-generalization curve (empty
                      when the task has no length axis to generalise over).
    solve_threshold:  the headline value from which the task counts as solved (``>=`` when higher
                      is better, ``<=`` otherwise): the source's, else the book's own line for the
                      family (:data:`COPYING_SOLVE_THRESHOLD`, :data:`DP_SOLVE_THRESHOLD`), None
                      where neither sets one; ``threshold_source`` says who sets it.
    chance:           the task's chance accuracy (``spec.chance``), None where it defines none.
    position_buckets: bucket starts of the positions whose loss the evaluator also reports apart
                      (``seqlib.evaluate.bucket_labels``: the curve over context position); empty: none.
    """

    train_lengths: tuple[int, int]
    curve_splits: tuple[str, ...]
    chance: float | None
    threshold_source: str
    split: str = "test"
    metric: str = "accuracy"
    higher_is_better: bool = True
    label: str = "accuracy"
    solve_threshold: float | None = None
    position_buckets: tuple[int, ...] = ()
    length_key: ClassVar[str] = LENGTH_KEY  # the meta key of every task's length

    def solves(self, value: float) -> bool | None:
        """Whether a headline ``value`` reaches the solve threshold; None without a threshold."""
        if self.solve_threshold is None:
            return None
        return value >= self.solve_threshold if self.higher_is_better else value <= self.solve_threshold
