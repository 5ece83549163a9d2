"""Document bookkeeping shared by the mixers.

``segment_pos`` [B, T] is the position of each token inside its document; 0 starts a new one
(recurrentgemma's convention). A running document id, ``cumsum(segment_pos == 0)``, tells which
tokens may interact: the conv's document mask, the attention mask (:func:`attention_mask`) and
the decode caches all compare document ids.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

_ONE_DOCUMENT_PER_ROW = contextvars.ContextVar("one_document_per_row", default=False)


@contextlib.contextmanager
def one_document_per_row():
    """Inside, the caller has checked on the host that no row of the batches restarts a document after
    its first position, so :func:`restarts_mid_row` need not look: its look is a host sync, which a
    CUDA graph of the step cannot capture (seqlib.stack)."""
    token = _ONE_DOCUMENT_PER_ROW.set(True)
    try:
        yield
    finally:
        _ONE_DOCUMENT_PER_ROW.reset(token)


def restarts_mid_row(segment_pos: torch.Tensor) -> bool:
    """Whether a document starts after position 0 of any row of ``segment_pos`` [..., T] (False
    inside :func:`one_document_per_row`, without looking)."""
    return not _ONE_DOCUMENT_PER_ROW.get() and bool((segment_pos[..., 1:] == 0).any())


def default_segment_pos(batch: int, length: int, device: torch.device) -> torch.Tensor:
    return torch.arange(length, device=device).expand(batch, length)


def check_segment_pos(x: torch.Tensor, segment_pos: torch.Tensor) -> None:
    if segment_pos.shape != x.shape[:2]:
        raise ValueError(
            f"segment_pos has shape {tuple(segment_pos.shape)}; it must be [B, T] = {tuple(x.shape[:2])}"
        )


def document_ids(segment_pos: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
    """Running document id per token: start (per row, default 0) + number of resets so far."""
    ids = torch.cumsum((segment_pos == 0).long(), dim=1)
    return ids if start is None else ids + start[:, None]


def attention_mask(q_pos, q_doc, k_pos, k_doc, window: int | None) -> torch.Tensor:
    """[B, Tq, Tk] bool, True = may attend: key j is visible to query i iff j <= i, i - j <= W
    (``window``; None = global) and both are in the same document (recurrentgemma
    ``_compute_causal_mask``). Positions are absolute token indices (-1 = empty)."""
    qp, kp = q_pos[:, :, None], k_pos[:, None, :]
    mask = (kp >= 0) & (kp <= qp) & (q_doc[:, :, None] == k_doc[:, None, :])
    if window is not None:
        mask &= qp - kp <= window
    return mask
