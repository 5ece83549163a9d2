"""Byte-level language modelling on real English text (the corpus of :mod:`seqlib.corpus`).

The test of Griffin's language-modelling claims in miniature (De et al. 2024, §3 and §6; Fig. 5 for
extrapolation): next-byte prediction on the dictionary entries of GCIDE and the prose of the Python
3.11 documentation, split by document (the corpus module says how).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import check_int, make_batch, pick_length, streams
from .base import Batch, Task, TaskSpec
from .scoring import LENGTH_KEY, Scoring

BYTES = 256
DOC = 256  # the token before every document: a model sees where a document starts; it is never a target
POSITION_BUCKETS = (0, 16, 64, 256, 1024, 2048, 4096, 8192, 16384)  # the curve over context position


@lru_cache(maxsize=8)
def token_stream(split: str, root: str | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The corpus split as one ``uint16`` token stream (its bytes with :data:`DOC` before every document),
    the stream index where each source's documents begin, and the sources' names, in stream order."""
    from seqlib import corpus

    data, starts = corpus.load_split(split, root)
    stream = np.insert(np.asarray(data, dtype=np.uint16), starts, DOC)
    docs = corpus.load_manifest(root)["splits"][split]["documents"]
    names = tuple(docs)
    first_doc = np.cumsum([0, *(docs[n] for n in names)])[:-1]
    return stream, starts[first_doc] + first_doc, names


class Text(Task):
    """Next-byte prediction on windows of the corpus (:mod:`seqlib.corpus`).

    A token is a byte (0–255), or :data:`DOC` before each document. An example is a window of ``L``
    tokens at a uniform offset of its split's stream (documents in corpus order, so a window may
    cross into the next document, as in packed LM training); the targets are the next tokens, scored
    wherever the target is a byte. ``train`` draws windows of ``seq_len`` from the first
    ``train_bytes`` tokens of the train split (all of it when None: the smoke profile trains on a few
    hundred KB); ``val`` and ``test`` windows of ``seq_len`` from their own documents; ``val_long`` and
    ``test_long`` every length of ``long_lengths`` (extrapolation past the training context, Griffin
    Fig. 5). Metric: **bits per byte** (``bits``, lower is better), also per position bucket
    (:data:`POSITION_BUCKETS`, the ``position`` slice) and per source (the ``source`` meta: the one
    the window starts in).

    meta: ``length`` (L), ``source``.
    """

    name = "text"
    splits = ("train", "val", "test", "val_long", "test_long")
    in_distribution = ("train", "val", "test")

    def __init__(self, seq_len: int = 1024, long_lengths: tuple[int, ...] = (2048, 4096, 8192, 16384),
                 train_bytes: int | None = None, corpus: str | None = None) -> None:
        self.seq_len = check_int("seq_len", seq_len, 2)
        self.long_lengths = tuple(check_int("long_lengths", n, self.seq_len + 1) for n in long_lengths)
        if not self.long_lengths:
            raise ValueError("text: long_lengths must name at least one length longer than seq_len")
        self.train_bytes = None if train_bytes is None else check_int("train_bytes", train_bytes, self.seq_len + 1)
        self.corpus = None if corpus is None else str(Path(corpus))

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.per_token(BYTES + 1, 1 / BYTES)

    @property
    def scoring(self) -> Scoring:
        """Bits per byte on ``test`` (windows of the training length); the length curve on the long
        splits. No solve line: language modelling has none."""
        return Scoring(
            split="test",
            metric="bits",
            higher_is_better=False,
            label="bits per byte",
            train_lengths=(self.seq_len, self.seq_len),
            curve_splits=("test", "test_long"),
            threshold_source="none: language modelling has no solve line",
            chance=self.spec.chance,
            position_buckets=POSITION_BUCKETS,
        )

    def lengths(self, split: str) -> tuple[int, ...] | None:
        self.check_split(split)
        return self.long_lengths if split.endswith("_long") else None

    def sample(self, split: str, n: int, seed: int, length: int | None = None) -> Batch:
        check_int("n", n, 1)
        length_rng, rng = streams(self, split, seed)
        long = split.endswith("_long")
        length = pick_length(length_rng, self.long_lengths if long else (self.seq_len,), length, f"text/{split}")
        stream, source_starts, sources = token_stream(split.removesuffix("_long"), self.corpus)
        usable = len(stream) if split != "train" or self.train_bytes is None else min(len(stream), self.train_bytes)
        if usable <= length:
            raise ValueError(f"text/{split}: {usable} tokens cannot hold a window of {length} and its next token")
        offsets = rng.integers(0, usable - length, size=n)
        window = stream[offsets[:, None] + np.arange(length + 1)].astype(np.int64)
        inputs, targets = window[:, :-1], window[:, 1:]
        source = np.asarray(sources)[np.searchsorted(source_starts, offsets, side="right") - 1]
        meta = {LENGTH_KEY: np.full(n, length), "source": source}
        return make_batch(inputs, targets, targets != DOC, meta)
