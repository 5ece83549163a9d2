"""Fast paths for Griffin's local / global MQA (training and prefill; decode keeps the ring buffer).

Same function as :func:`seqlib.layers.attention.masked_attention` under
:func:`~seqlib.layers.segments.attention_mask`: key j is visible to query i iff j <= i,
i - j <= W (local only) and both are in the same document, so a query sees W + 1 keys
including itself (recurrentgemma ``_compute_causal_mask``).

* Local attention, or any attention with mid-row document starts: FlexAttention
  (Dong et al. 2024, "Flex Attention: a programming model for generating optimized attention
  kernels"; ``torch.nn.attention.flex_attention``) with a block mask, so key blocks entirely
  outside the window are skipped, and ``enable_gqa=True``, so the single K/V head is never
  repeated in memory. The compiled kernel is built once (``torch.compile`` caches a graph per
  shape); block masks without documents are cached by (T, W, device); a document mask depends on
  the batch (its document ids are captured by the ``mask_mod``) and is built per call.
* Global attention with one document per row: SDPA with ``is_causal=True`` (FlashAttention-2,
  Dao 2023, on CUDA).
* Sequences shorter than ``FLEX_MIN_LEN``: SDPA with the explicit boolean mask (the memory-efficient
  kernel; K/V repeated to the query heads, which is cheap at these lengths). A compiled FlexAttention
  kernel is specialised to its shape, so a task whose lengths vary from batch to batch (the Chomsky
  tasks: one length per batch, hundreds of test lengths) would recompile for each one, while at such
  lengths skipping key blocks saves little.
* Heads narrower than ``FLEX_MIN_HEAD_DIM`` on a GPU: the same masked SDPA (inductor's FlexAttention
  kernel needs head_dim >= 16: Triton's ``tl.dot`` has no smaller tile).

On a CPU, FlexAttention runs eagerly (correct but slow): the CPU path of the model is the
reference :func:`masked_attention`, and this module is used there only by tests.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F

from seqlib.layers.segments import attention_mask, document_ids, restarts_mid_row

_BLOCK_MASKS: dict[tuple, object] = {}
FLEX_MIN_LEN = 2048  # shorter sequences take the masked-SDPA path (no compilation per shape)
FLEX_MIN_HEAD_DIM = 16  # on a GPU (torch._inductor.kernel.flex: "NYI: embedding dimension ... at least 16")


def flex_applies(seq_len: int, head_dim: int, device_type: str) -> bool:
    """Whether :func:`fast_attention` takes FlexAttention for a window or document mask."""
    return seq_len >= FLEX_MIN_LEN and (device_type == "cpu" or head_dim >= FLEX_MIN_HEAD_DIM)


def _flex_modules():
    from torch.nn.attention import flex_attention as fa

    return fa


@functools.cache
def _compiled_flex():
    fa = _flex_modules()
    return torch.compile(fa.flex_attention, dynamic=False)


def _flex_fn(device: torch.device):
    return _compiled_flex() if device.type == "cuda" else _flex_modules().flex_attention


def window_block_mask(T: int, window: int | None, device: torch.device):
    """Causal (and sliding-window) block mask for one document per row; cached by (T, W, device)."""
    key = (T, window, str(device))
    if key not in _BLOCK_MASKS:
        fa = _flex_modules()

        def mask_mod(b, h, q_idx, kv_idx):
            visible = kv_idx <= q_idx
            if window is not None:
                visible = visible & (q_idx - kv_idx <= window)
            return visible

        _BLOCK_MASKS[key] = fa.create_block_mask(mask_mod, None, None, T, T, device=device)
    return _BLOCK_MASKS[key]


def document_block_mask(doc: torch.Tensor, window: int | None):
    """Block mask for documents packed in rows: ``doc`` [B, T] is the running document id."""
    fa = _flex_modules()
    B, T = doc.shape

    def mask_mod(b, h, q_idx, kv_idx):
        visible = (kv_idx <= q_idx) & (doc[b, q_idx] == doc[b, kv_idx])
        if window is not None:
            visible = visible & (q_idx - kv_idx <= window)
        return visible

    return fa.create_block_mask(mask_mod, B, None, T, T, device=doc.device)


def fast_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segment_pos: torch.Tensor, window: int | None
) -> torch.Tensor:
    """q [B, T, H, Dh], k/v [B, T, Hkv, Dh] (after RoPE), segment_pos [B, T] -> [B, T, H, Dh].

    Scale Dh^-1/2; the kernels accumulate the softmax in fp32.
    """
    B, T, H, Hkv = *q.shape[:3], k.shape[2]
    gqa = H != Hkv
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # [B, heads, T, Dh]
    resets = restarts_mid_row(segment_pos)
    if window is None and not resets:
        return F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=gqa).transpose(1, 2)
    if flex_applies(T, q.shape[-1], q.device.type):
        mask = document_block_mask(document_ids(segment_pos), window) if resets else window_block_mask(
            T, window, q.device
        )
        try:
            return _flex_fn(q.device)(qt, kt, vt, block_mask=mask, enable_gqa=gqa).transpose(1, 2)
        except Exception as exc:  # noqa: BLE001 - inductor found no kernel for this shape
            # seen on torch 2.11 / H100: B=2, T=77, Dh=32 with a document mask (NoValidChoicesError)
            warnings.warn(f"FlexAttention failed for q {tuple(q.shape)} ({type(exc).__name__}); using "
                          "SDPA with an explicit mask", stacklevel=2)
    pos = torch.arange(T, device=q.device).expand(B, T)
    doc = document_ids(segment_pos)
    mask = attention_mask(pos, doc, pos, doc, window)[:, None]  # [B, 1, T, T]
    kt, vt = (t.repeat_interleave(H // Hkv, dim=1) for t in (kt, vt))
    return F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask).transpose(1, 2)


def use_fast_path(backend: str, x: torch.Tensor) -> bool:
    """``auto``: the fast path on CUDA, the reference elsewhere; ``flex``: always; ``reference``: never."""
    if backend == "reference":
        return False
    if backend == "flex":
        return True
    if backend != "auto":
        raise ValueError(f"unknown attention backend {backend!r}; use 'auto', 'reference' or 'flex'")
    return x.is_cuda
