# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Local attention
#
# Griffin's second temporal mixer is multi-query attention over a sliding window (§2.3 of
# {cite:t}`de2024griffin`): every query attends to the last $W$ tokens and itself, through a single
# key/value head. Its cost per token and its decode cache are bounded by $W$ instead of growing with
# the context. This chapter draws the mask, shows the `seqlib` code that applies it, counts what a
# window saves, and follows the ring-buffer cache that makes decoding bounded.

# %% tags=["parameters"]
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0

# %% tags=["hide-input"]
import platform
import time

import altair as alt
import numpy as np
import pandas as pd
import torch

from seqlib.book.chapter import setup, show_source
from seqlib.layers.attention import Attention, masked_attention
from seqlib.layers.rope import apply_rope
from seqlib.layers.segments import attention_mask, document_ids

setup(profile, seed=seed)

# timing: model width, heads, sequence length, windows; repeats per timing
SIZES = {"tiny": (64, 4, 256, [16, 64, 256], 2), "smoke": (128, 4, 1024, [16, 64, 256, 1024], 3),
         "full": (1024, 8, 4096, [128, 512, 1024, 4096], 5)}
width, heads, seq_len, windows, repeats = SIZES[profile]
torch.manual_seed(seed);


# %%
# %% [markdown]
# ## The mask
#
# With $H$ query heads of size $d = D/H$ and one shared key/value head, query $i$ of head $h$ reads
#
# $$
# o_i^{(h)} = \sum_{j \in \mathcal{N}(i)} \operatorname{softmax}_j\!\Big(\frac{q_i^{(h)} \cdot k_j}{\sqrt d}\Big)\, v_j,
# \qquad \mathcal{N}(i) = \{\, j : j \le i,\; i - j \le W,\; \mathrm{doc}(j) = \mathrm{doc}(i) \,\}.
# $$
#
# So a query sees $W + 1$ tokens including itself, as in the reference's `_compute_causal_mask`
# (`google-deepmind/recurrentgemma`, `recurrentgemma/torch/modules.py`), and never a token of
# another document packed into the same row. Positions are absolute token indices, so the same
# function serves the training forward and the decode cache (where an empty slot has position $-1$):

# %%
show_source(attention_mask)

# %% [markdown]
# Below, 20 tokens hold two documents (the second starts at token 12) and $W = 4$. Each cell is
# one (query, key) pair; the colour says why a key is hidden. Hover a cell for its reason.

# %%
T_demo, W_demo, boundary = 20, 4, 12
segment_pos = torch.cat([torch.arange(boundary), torch.arange(T_demo - boundary)])[None]
pos = torch.arange(T_demo)[None]
doc = document_ids(segment_pos)
same_doc = torch.zeros_like(doc)
local = attention_mask(pos, doc, pos, doc, W_demo)[0]
causal_in_doc = attention_mask(pos, doc, pos, doc, None)[0]
causal = attention_mask(pos, same_doc, pos, same_doc, None)[0]
reason = np.select([local.numpy(), causal_in_doc.numpy(), causal.numpy()],
                   ["attends", "outside the window", "other document"], "future")
cells = pd.DataFrame([{"query": i, "key": j, "reason": reason[i, j]}
                      for i in range(T_demo) for j in range(T_demo)])
print(f"keys per query: {local.sum(1).tolist()}")

alt.Chart(cells, title=f"local attention mask, W = {W_demo}, new document at token {boundary}").mark_rect(
    stroke="white", strokeWidth=0.5).encode(
    x=alt.X("key:O", title="key position j"),
    y=alt.Y("query:O", title="query position i"),
    color=alt.Color("reason:N", title=None,
                    scale=alt.Scale(domain=["attends", "outside the window", "other document", "future"],
                                    range=["#1f77b4", "#aec7e8", "#ffbb78", "#eeeeee"]),
                    legend=alt.Legend(orient="right")),
    tooltip=["query:O", "key:O", "reason:N"],
).properties(width=360, height=360)

# %% [markdown]
# ## The layer
#
# `Attention` projects to $H$ query heads and `num_kv_heads` key/value heads (1 here, multi-query
# attention), rotates queries and keys with RoPE at their position *inside the document*
# (`segment_pos`), and applies the mask. With no cache it runs the whole sequence at once; on a
# CUDA GPU and `attention_backend="auto"` that goes to the fused path of `seqlib.layers.flex`
# (FlexAttention with a sliding-window block mask, or flash attention), with `masked_attention`
# below as the reference and test oracle. With a cache it attends from the new tokens to the
# cache plus themselves and returns the updated cache.

# %%
show_source(Attention.forward)

# %% [markdown]
# The reference attention groups the query heads by key/value head, so one key/value head serves
# all $H$ queries without being copied, and takes the softmax in fp32:

# %%
show_source(masked_attention)

# %% [markdown]
# RoPE rotates pairs of channels by an angle proportional to the position, so that
# $q_i \cdot k_j$ depends on $i - j$ only. Griffin rotates only the first half of each head's
# channels (split-half, base 10,000) and passes the other half through (`_apply_rope` in the same
# file; the paper says only "RoPE"):

# %%
show_source(apply_rope)

# %%
head_dim = width // heads
q, k = torch.randn(1, 1, 1, head_dim), torch.randn(1, 1, 1, head_dim)
offset = 7
scores = [(apply_rope(q, torch.tensor([[s + offset]])) * apply_rope(k, torch.tensor([[s]]))).sum().item()
          for s in (0, 100, 10_000)]
untouched = torch.equal(apply_rope(q, torch.tensor([[123]]))[..., head_dim // 2:], q[..., head_dim // 2:])
print(f"q.k at positions (s + {offset}, s) for s = 0, 100, 10000 (equal up to fp32 rounding): "
      + ", ".join(f"{v:.5f}" for v in scores))
print(f"second half of the channels left unchanged: {untouched}")

# %% [markdown]
# ## What a window saves
#
# Causal attention over $T$ tokens scores $T(T+1)/2$ pairs; a window caps each query at $W + 1$
# keys, about $T(W+1)$ pairs when $T \gg W$. Counting the pairs the mask allows, for the
# sequence length of this profile:

# %%
pos_t = torch.arange(seq_len)[None]
doc_t = torch.zeros_like(pos_t)
full_pairs = seq_len * (seq_len + 1) // 2
pairs = pd.DataFrame([{
    "window W": "global" if w is None else w,
    "pairs scored": int(attention_mask(pos_t, doc_t, pos_t, doc_t, w).sum()),
} for w in [*windows, None]])
pairs["share of causal"] = (pairs["pairs scored"] / full_pairs).map("{:.1%}".format)
pairs.set_index("window W").rename_axis(columns=f"T = {seq_len}")

# %% [markdown]
# Fewer pairs only save time when the kernel skips the masked ones. The reference above builds
# the full $T \times T$ score matrix and masks it, so its cost does not depend on $W$. Timing one
# layer's forward pass with the reference backend, on this machine:

# %%
x = torch.randn(1, seq_len, width)
sp = torch.arange(seq_len)[None]


def forward_time(window) -> float:
    layer = Attention(width, heads, 1, window=window, attention_backend="reference").eval()
    with torch.no_grad():
        layer(x, sp)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            layer(x, sp)
            times.append(time.perf_counter() - start)
    return min(times)


device_label = f"CPU {platform.machine()}, {torch.get_num_threads()} thread(s)"  # the tensors above live on the CPU
timings = pd.DataFrame([{"window W": "global" if w is None else w, "ms": 1e3 * forward_time(w)}
                        for w in [*windows, None]])
timings["ms"] = timings["ms"].round(2)
timings.set_index("window W").rename_axis(
    columns=f"reference forward, T = {seq_len}, D = {width}, H = {heads}, best of {repeats} ({device_label})")

# %% [markdown]
# These are CPU timings of the readable reference and say nothing about a GPU. With a block mask,
# FlexAttention visits only the blocks inside the window, so the work falls with $W$; the
# Efficiency chapter measures that path on a GPU against full-causal flash attention.
#
# ## The ring-buffer KV cache
#
# When decoding, local attention needs only the last $W$ keys and values. `seqlib` keeps them in
# a fixed buffer of $W$ slots and writes the key of absolute position $p$ into slot $p \bmod W$,
# overwriting the key that has just left the window, as the reference's attention cache does with
# `num_tokens % W` (`LocalAttentionBlock` in `recurrentgemma/torch/modules.py`). Each slot also
# records its position and document, which `attention_mask` uses to hide empty slots and keys of an
# earlier document. A chunk of several tokens writes its last $\min(T, W)$ tokens the same way:

# %%
show_source(Attention.init_cache)

# %%
show_source(Attention._update_cache)

# %% [markdown]
# Decoding 11 tokens one by one with $W = 4$, the table lists the position held in each slot
# after each step ($-1$: empty). From step 4 on, each new token replaces the one that is now
# $W + 1$ tokens behind it; the query itself is the $(W+1)$-th key, concatenated before the
# cache is written.

# %%
demo = Attention(32, 2, 1, window=W_demo).eval()
cache = demo.init_cache(1)
steps = []
with torch.no_grad():
    for t in range(11):
        _, cache = demo(torch.randn(1, 1, 32), torch.tensor([[t]]), cache)
        steps.append({"after token": t, **{f"slot {s}": int(p) for s, p in enumerate(cache.positions[0])}})
pd.DataFrame(steps).set_index("after token")

# %% [markdown]
# The cache must give the same outputs as the parallel forward, also after the window has wrapped
# around several times and across a document boundary. Token by token, then in chunks of
# different sizes (one longer than $W$):

# %%
W_check = 8
layer = Attention(width, heads, 1, window=W_check, attention_backend="reference").eval()
T_check = 5 * W_check + 3
xs = torch.randn(2, T_check, width)
sp = torch.arange(T_check).repeat(2, 1)
sp[1, 2 * W_check + 1:] = torch.arange(T_check - 2 * W_check - 1)  # row 1: a new document
with torch.no_grad():
    full, _ = layer(xs, sp)
    cache, outs = layer.init_cache(2), []
    for t in range(T_check):
        out, cache = layer(xs[:, t:t + 1], sp[:, t:t + 1], cache)
        outs.append(out)
    stepped = torch.cat(outs, 1)
    bounds = [0, 3, 4, 4 + W_check + 5, T_check]
    cache, outs = layer.init_cache(2), []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        out, cache = layer(xs[:, lo:hi], sp[:, lo:hi], cache)
        outs.append(out)
    chunked = torch.cat(outs, 1)
scale = full.abs().max()
err_step = ((stepped - full).abs().max() / scale).item()
err_chunk = ((chunked - full).abs().max() / scale).item()
print(f"T = {T_check}, W = {W_check}: max relative difference to the forward "
      f"{err_step:.1e} (token by token), {err_chunk:.1e} (chunks {np.diff(bounds).tolist()})")
print(f"cache keys after {T_check} tokens: {tuple(cache.keys.shape)} = [batch, W, kv heads, head_dim]")
assert max(err_step, err_chunk) < 1e-5

# %% [markdown]
# The reference decoder accepts chunks of one token or of at least $W$ tokens only (its
# `_update_attention_cache` raises `NotImplementedError` otherwise); the position and document kept
# per slot let `seqlib` take any chunk length.
# Per sequence the cache holds $2 W d$ numbers per layer with one key/value head, against $2 T d$
# for global attention:

# %%
budget = pd.DataFrame([{"T": T, "local (W = 1024)": 2 * min(T, 1024) * head_dim, "global": 2 * T * head_dim}
                       for T in (1024, 4096, 16384, 65536)]).set_index("T")
check = {T: Attention(width, heads, 1, window=1024).state_size(T)["kv"] for T in budget.index}
assert all(check[T] == budget.loc[T, "local (W = 1024)"] for T in budget.index)
budget.rename_axis(columns=f"KV elements per layer, head_dim {head_dim}")
