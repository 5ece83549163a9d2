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
# # Architectures
#
# Every model in the book is one `SequenceModel`: an embedding, a stack of blocks, a final RMSNorm
# and a head tied to the embedding. Models differ only in the list of block types, which the
# registry derives from the depth by cycling the model's pattern of mixers. This chapter lists the models, draws their stacks, shows the
# blocks' code, and compares parameter counts and decode-state sizes at matched budgets.

# %% tags=["parameters"]
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0

# %% tags=["hide-input"]

import altair as alt
import pandas as pd
import torch
from IPython.display import Markdown, display

from seqlib.book.chapter import setup, show_source, show_table
from seqlib.layers.mlp import MLPBlock
from seqlib.layers.recurrent_block import RecurrentBlock
from seqlib.layers.residual import ResidualBlock
from seqlib.layers.rnn import RecurrentBaseline
from seqlib.models import MODELS, ModelConfig, ModelUnavailable, build_model, list_models, sequence_model
from seqlib.models.mixers import final_w_init_variance_scale
from seqlib.models.registry import MIXERS
from seqlib.models.sizing import count_params, match_budget
from seqlib.tasks.base import TaskSpec

setup(profile, seed=seed)
torch.manual_seed(seed);


# %%
# %% [markdown]
# ## The mixers and the models
#
# `seqlib.models.registry.MIXERS` holds one entry per block type: its builder, the check of what
# it needs of the `ModelConfig` (attention: `d_model` divisible by `num_heads`, a RoPE head width
# that is a multiple of 4; the recurrent block: $D_{RNN}$ divisible by the gate blocks), whether it
# needs a GPU, and the layer class whose `init_cache` / `state_size` are its decode state. The fla
# zoo's entries (flash-linear-attention 0.6.0 layers) come from `seqlib.models.zoo`.

# %%
mixer_table = pd.DataFrame([{"mixer": kind, "description": m.description, "layer": m.layer.__name__,
                             "residual block": m.residual, "GPU only": m.requires_gpu}
                            for kind, m in MIXERS.items()]).set_index("mixer")
with pd.option_context("display.max_colwidth", None):
    display(mixer_table)

# %% [markdown]
# `seqlib.models.registry.MODELS` maps each model name to a description and a pattern of mixers;
# a model needs a GPU when one of its mixers does. The fla zoo (each fla mixer is also a model of
# the same name, in the same backbone) runs on Triton kernels only, so on a CPU `build_model`
# refuses it with `ModelUnavailable`; the last column is what it says here.

# %%
spec = TaskSpec("tokens", "tokens", "ce", num_outputs=512, vocab_size=512)
rows, refusals = [], {}
for name in list_models():
    entry = MODELS[name]
    try:
        build_model(ModelConfig(name=name, d_model=64, n_layers=1, num_heads=4), spec)
        here = "builds"
    except ModelUnavailable as err:
        here, refusals[name] = "skipped (ModelUnavailable)", str(err)
    except ImportError as err:  # a GPU machine without flash-linear-attention installed
        here, refusals[name] = "skipped (fla missing)", str(err)
    rows.append({"model": name, "description": entry.description, "GPU only": entry.requires_gpu,
                 "on this machine": here})
registry = pd.DataFrame(rows).sort_values(["GPU only", "model"]).set_index("model")
with pd.option_context("display.max_colwidth", None):
    display(registry)
if refusals:
    name = next(iter(refusals))
    print(f"{len(refusals)} models skipped here; build_model({name!r}) says:\n  {refusals[name]}")

# %% [markdown]
# The descriptions name the papers behind the mixers: the Transformer {cite:p}`vaswani2017attention`,
# the LSTM {cite:p}`hochreiter1997lstm` and GRU {cite:p}`cho2014gru` baselines, the negative-eigenvalue
# variants {cite:p}`grazzi2024negative`, 2-simplicial attention
# {cite:p}`clift2019simplicial,roy2025simplicial`, and in the fla zoo Mamba-2 {cite:p}`dao2024mamba2`,
# DeltaNet {cite:p}`yang2024deltanet`, Gated DeltaNet {cite:p}`yang2025gateddeltanet`, RWKV-6
# {cite:p}`peng2024rwkv6` and RWKV-7 {cite:p}`peng2025rwkv7`, MesaNet {cite:p}`vonoswald2025mesanet`,
# PaTH attention {cite:p}`yang2025path`, DeltaFormer {cite:p}`zhong2025deltaformer`, Native Sparse
# Attention {cite:p}`yuan2025nsa`, Gated Linear Attention {cite:p}`yang2024gla`, RetNet
# {cite:p}`sun2023retnet`, HGRN2 {cite:p}`qin2024hgrn2`, Based {cite:p}`arora2024based` and Gated Slot
# Attention {cite:p}`zhang2024gsa`.

# %% [markdown]
# ## The stacks
#
# Each rectangle is one block, input on the left, as `ModelConfig.block_types` gives it for a
# depth of 6. Griffin repeats (recurrent, recurrent, local attention) with `itertools.cycle`
# (Griffin §3 {cite:p}`de2024griffin`; `recurrentgemma/common.py` in `google-deepmind/recurrentgemma`
# builds the pattern the same way); the others repeat one block type. Every zoo model has the
# shape of Hawk with its own mixer in place of the recurrent block (one shown: `mamba2`).

# %%
depth = 6
shown = [n for n in list_models() if not MODELS[n].requires_gpu] + ["mamba2"]
label = {"recurrent": "RG-LRU", "local_attention": "local MQA", "global_attention": "global MQA"}
stack = pd.DataFrame([{"model": name, "layer": i, "block": label.get(kind, kind)}
                      for name in shown
                      for i, kind in enumerate(ModelConfig(name=name, n_layers=depth).block_types)])
base = alt.Chart(stack).encode(
    x=alt.X("layer:O", title="layer (input on the left)", axis=alt.Axis(labelAngle=0)),
    y=alt.Y("model:N", title=None, sort=shown),
)
(base.mark_rect(stroke="white", strokeWidth=3).encode(
    color=alt.Color("block:N", title="block", legend=alt.Legend(orient="bottom", columns=4)),
    tooltip=["model:N", "layer:O", "block:N"])
 + base.mark_text(fontSize=10).encode(text="block:N")
 ).properties(width=alt.Step(78), height=alt.Step(30))

# %% [markdown]
# ## Inside a block
#
# All but the LSTM and GRU use Griffin's pre-norm residual block (§2.1): a temporal mixer, then a
# gated MLP, each behind an RMSNorm and a residual connection. The LSTM and GRU baselines are plain
# stacked recurrent layers, without MLP or residual.
#
# ```text
# residual block (pre-norm, Griffin §2.1)
#   x ──┬── RMSNorm ── mixer ──┐
#       └──────────────────── (+) ── r
#   r ──┬── RMSNorm ── MLP ────┐
#       └──────────────────── (+) ── x'
#   mixer: recurrent block | local MQA | global MQA | 2-simplicial | fla layer
#
# recurrent block (Hawk, Griffin; Griffin §2.3)
#   u ──┬── W_y ── GeLU ───────────────────────────┐
#       └── W_x ── Conv1D (width 4) ── RG-LRU ─── (×) ── W_o ── out
#
# gated MLP (GeGLU, width 3D; Griffin §2.2)
#   u ──┬── W_1 ── GeLU ───┐
#       └── W_2 ───────── (×) ── W_d ── out
# ```
#
# The code, from `seqlib`:

# %%
show_source(ResidualBlock.forward)

# %%
show_source(RecurrentBlock.forward)

# %%
show_source(MLPBlock.forward)

# %% [markdown]
# `build_block` looks a block type up in `MIXERS` and puts the mixer it builds in a residual block
# with the MLP; the output projections of each block are initialised with variance scale $2/L$ for
# $L$ layers, as `final_w_init_variance_scale = 2 / num_layers` in the reference's `Griffin.__init__`
# (`google-deepmind/recurrentgemma`):

# %%
show_source(sequence_model.build_block)
show_source(final_w_init_variance_scale)

# %% [markdown]
# The LSTM and GRU keep PyTorch's fused kernels (cuDNN on a GPU) and fall back to a step loop with
# the same weights only when a document starts mid-row:

# %%
show_source(RecurrentBaseline.forward)

# %% [markdown]
# ## Matched parameter budgets
#
# Comparisons are made at equal parameter counts, not equal widths: an RG-LRU block with
# $D_{RNN} = 4D/3$ holds more parameters than an attention block of the same $D$. `match_budget`
# searches, on the meta device, the largest $D$ (a multiple of $4H$) that fits the budget with
# the paper's MLP width $3D$, then resizes the MLP so that the total lands within 3% of the target;
# the LSTM and GRU search their hidden size. Here at the depth, heads, vocabulary and budgets the
# code below names, for every model that runs on a CPU:

# %%
show_source(match_budget)

# %%
cpu_models = [n for n in list_models() if not MODELS[n].requires_gpu]
budgets = [1_000_000, 20_000_000]
lengths = [1024, 8192]
sized = []
for target in budgets:
    for name in cpu_models:
        cfg = match_budget(ModelConfig(name=name, n_layers=3, num_heads=4), spec, target)
        with torch.device("meta"):
            model = build_model(cfg, spec)
        recurrent_width = cfg.resolved.d_rnn if "recurrent" in cfg.block_types else None
        no_mlp = name in ("lstm", "gru")
        sized.append({
            "budget": f"{target / 1e6:g}M", "model": name, "d_model": cfg.d_model,
            "D_RNN": recurrent_width, "MLP width": None if no_mlp else cfg.resolved.mlp_width,
            "parameters": count_params(cfg, spec),
            **{f"state @ T={T}": model.state_size(T)["total"] for T in lengths},
        })
sized = pd.DataFrame(sized)
sized["off budget"] = [f"{p / int(float(b[:-1]) * 1e6) - 1:+.2%}" for p, b in zip(sized["parameters"], sized["budget"])]
show_table(sized.set_index(["budget", "model"]).astype({"D_RNN": "Int64", "MLP width": "Int64"}))

# %% [markdown]
# The state column counts the elements one sequence carries between decoding steps
# (`model.state_size(T)`): the RG-LRU state and the convolution's last three inputs of each
# recurrent block, the keys and values kept by attention (one KV head, so $2 d_{head}$ per token
# and layer; the 2-simplicial layer keeps two key/value pairs per token), the LSTM's $h$ and $c$ or
# the GRU's $h$.

# %%
display(Markdown(f"Local attention, Griffin and 2-simplicial attention use `ModelConfig`'s default window, "
                 f"{ModelConfig.model_fields['window'].default}."))

# %% [markdown]
# ## How decode state scales
#
# Across context lengths, at the 1M budget:

# %%
one_m = {r["model"]: match_budget(ModelConfig(name=r["model"], n_layers=3, num_heads=4), spec, 1_000_000)
         for r in sized[sized.budget == "1M"].to_dict("records")}
scaling = []
for name, cfg in one_m.items():
    with torch.device("meta"):
        model = build_model(cfg, spec)
    scaling += [{"model": name, "T": T, "state": model.state_size(T)["total"]}
                for T in (16, 64, 128, 1024, 8192, 32768)]
scaling = pd.DataFrame(scaling)
alt.Chart(scaling, title="decode state per sequence, 1M-parameter models").mark_line(point=True).encode(
    x=alt.X("T:Q", scale=alt.Scale(type="log", base=2), title="tokens of context T"),
    y=alt.Y("state:Q", scale=alt.Scale(type="log"), title="elements"),
    color=alt.Color("model:N", title=None),
    tooltip=["model:N", "T:Q", alt.Tooltip("state:Q", format=",")],
).properties(width=420, height=260)

# %% [markdown]
# Three regimes appear. The Hawk, LSTM and GRU states are constant: they depend on the width only.
# The global Transformer's cache grows linearly with $T$, without bound. Local attention,
# 2-simplicial attention and Griffin grow until $T$ reaches the window and are constant from
# there; Griffin's plateau is lower than the local Transformer's because only one block in three
# keeps keys and values. Griffin's authors make the same argument for decoding speed (§5.1): per
# token, decoding reads the parameters plus the cache, so a bounded cache keeps the cost per token
# flat as the context grows.

# %%
scaling.pivot(index="model", columns="T", values="state").rename_axis(columns="elements at T =")
