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
# # The RG-LRU
#
# The Real-Gated Linear Recurrent Unit is the temporal mixer of Hawk and Griffin
# (De et al., 2024, §2.4 and App. A). It is a diagonal linear recurrence whose decay depends on
# the input but never on the state, so it can be computed with a parallel scan in training and
# with a constant-size state when decoding. This chapter puts the equations next to the `seqlib`
# code that computes them and looks at what the gates do at initialisation.

# %% tags=["parameters"]
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0

# %% tags=["hide-input"]
import inspect
import textwrap

import altair as alt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from seqlib import provenance
from seqlib.layers import scan
from seqlib.layers.rglru import RGLRU
from seqlib.plots import enable_book_renderer

enable_book_renderer()
provenance.show(profile, seed=seed)

# sizes per profile: RG-LRU width, gate blocks (heads), tokens sampled
SIZES = {"tiny": (64, 4, 32), "smoke": (256, 8, 256), "full": (1024, 16, 2048)}
width, heads, tokens = SIZES[profile]
torch.manual_seed(seed);


# %%
def show_source(obj) -> None:
    """Display the source of a function or method as it is in seqlib."""
    source = textwrap.dedent(inspect.getsource(obj))
    display(Markdown(f"```python\n{source}```"))


# %% [markdown]
# ## The equations
#
# For an input $x_t$ of width $R$ (the output of the block's short convolution), two gates are
# computed from $x_t$ alone, the recurrence gate $r_t$ and the input gate $i_t$:
#
# $$
# r_t = \sigma(W_a x_t + b_a), \qquad i_t = \sigma(W_x x_t + b_x).
# $$
#
# A learnt per-channel base $a = \sigma(\Lambda) \in (0, 1)$ is raised to the power $c\,r_t$ with
# the constant $c = 8$, which gives the decay of step $t$:
#
# $$
# a_t = a^{c\,r_t}, \qquad \log a_t = -c\, r_t\, \mathrm{softplus}(-\Lambda).
# $$
#
# The state mixes the previous state with the gated input, normalised so that a stationary
# input keeps the state's scale:
#
# $$
# h_t = a_t \odot h_{t-1} + \sqrt{1 - a_t^2} \odot (i_t \odot x_t), \qquad y_t = h_t .
# $$
#
# The reference code stores $\theta = -\Lambda$ as `a_param` and works in log space. At the first
# token of a document (`segment_pos == 0`) it drops the state ($a_t \to 0$) and does not scale
# the input ($\sqrt{1-a_t^2} \to 1$). `seqlib` computes the gates in fp32 in `rg_lru_gates`:

# %%
show_source(scan.rg_lru_gates)

# %% [markdown]
# The layer applies the two block-diagonal gate projections (one block per head) and hands the
# pre-activations to the scan, which computes $h_t = a_t h_{t-1} + b_t$ with the backend asked for:

# %%
show_source(RGLRU.forward)

# %% [markdown]
# ## The gates at initialisation
#
# `a_param` is initialised so that $a^2$ is uniform in $[0.9^2, 0.999^2]$. The gate biases start
# at zero, so for a typical input $r_t \approx 0.5$ and $a_t \approx a^4$. The decay sets how far
# back a channel remembers: an impulse fades as $a_t^k$ after $k$ steps, so $1/(1-a_t)$ tokens is
# its effective memory length. Below, a freshly initialised layer reads Gaussian inputs.

# %%
layer = RGLRU(width, heads)
x = torch.randn(1, tokens, width)
with torch.no_grad():
    r = torch.sigmoid(layer.a_gate(x))
    a_t = torch.exp(-scan.C_RGLRU * r * F.softplus(layer.a_param))
a_base = torch.exp(-F.softplus(layer.a_param)).detach()

samples = pd.DataFrame({"r_t": r.flatten().numpy(),
                        "a_t": a_t.flatten().numpy()})
samples["memory"] = 1.0 / (1.0 - samples["a_t"])
quantiles = samples.describe(percentiles=[0.05, 0.5, 0.95])
summary = quantiles.loc[["5%", "50%", "95%"]]
summary.index.name = "quantile"
summary.round(3)

# %% [markdown]
# The left panel is the distribution of $a_t$ over every channel and token. The right panel is the
# effective memory length $1/(1-a^{c r})$ as a function of the gate value $r$ for the channels with
# the smallest, median and largest base $a$: the gate moves each channel's memory over two orders
# of magnitude, from an unbounded memory as $r \to 0$ (the state is held) to $1/(1-a^8)$ at $r = 1$. Hover a line for
# its values.

# %%
edges = np.linspace(0.0, 1.0, 41)
counts, _ = np.histogram(samples["a_t"], bins=edges)
hist = pd.DataFrame({"a_t": edges[:-1], "a_t_end": edges[1:],
                     "share": counts / counts.sum()})

order = torch.argsort(a_base)
picked = {"smallest a": order[0], "median a": order[len(order) // 2],
          "largest a": order[-1]}
# at r = 0, a_t = 1: the state is held and the memory unbounded
r_grid = np.linspace(0.02, 1.0, 50)
curves = pd.DataFrame([
    {"channel": f"{name} = {a_base[i].item():.4f}", "r": rv,
     "memory": 1.0 / (1.0 - a_base[i].item() ** (scan.C_RGLRU * rv))}
    for name, i in picked.items() for rv in r_grid
])

histogram = alt.Chart(hist, title="a_t at initialisation").mark_bar().encode(
    x=alt.X("a_t:Q", bin="binned", title="a_t"),
    x2="a_t_end:Q",
    y=alt.Y("share:Q", title="share of channels x tokens",
            axis=alt.Axis(format="%")),
).properties(width=260, height=220)
memory = alt.Chart(curves, title="memory length vs gate").mark_line().encode(
    x=alt.X("r:Q", title="recurrence gate r"),
    y=alt.Y("memory:Q", scale=alt.Scale(type="log"),
            title="1 / (1 - a^(c r))  [tokens]"),
    color=alt.Color("channel:N", title=None,
                    legend=alt.Legend(orient="bottom", direction="vertical")),
    tooltip=["channel:N", alt.Tooltip("r:Q", format=".2f"),
             alt.Tooltip("memory:Q", format=".1f")],
).properties(width=260, height=220)
histogram | memory

# %% [markdown]
# ## Two scan backends, one answer
#
# `rg_lru_scan` runs the same recurrence with a plain loop over time (`sequential`, the readable
# reference) or a log-depth associative scan (`parallel`). Both accumulate in fp32 and must agree;
# here with a document boundary in the middle of the sequence:

# %%
half = tokens // 2
segment_pos = torch.cat([torch.arange(half), torch.arange(tokens - half)])
reset = (segment_pos == 0)[None]
with torch.no_grad():
    gate_x, gate_a = layer.input_gate(x), layer.a_gate(x)
    y = {backend: scan.rg_lru_scan(x, gate_x, gate_a, layer.a_param, reset,
                                   backend=backend)[0]
         for backend in ("sequential", "parallel")}
diff = (y["parallel"] - y["sequential"]).norm() / y["sequential"].norm()
print(f"parallel vs sequential, {tokens} tokens: relative difference "
      f"{diff.item():.1e}")
