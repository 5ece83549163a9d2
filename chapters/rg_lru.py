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
# The Real-Gated Linear Recurrent Unit is the temporal mixer of Hawk and Griffin (§2.4 and App. A of
# {cite:t}`de2024griffin`). It is a diagonal linear recurrence whose decay depends on the input but
# never on the state, so it can be computed with a parallel scan in training and with a
# constant-size state when decoding. This chapter puts the equations next to the `seqlib` code that
# computes them, looks at what the gates do at initialisation and after a short training run, checks
# the scan backends against each other, shows why the square root's gradient is capped, decodes with
# a state whose size does not depend on the context, and lists where `seqlib` follows the reference
# code rather than the paper.

# %% tags=["parameters"]
profile = "smoke"  # "full" on a GPU, "smoke" on a CPU, "tiny" in the tests
seed = 0

# %% tags=["hide-input"]
import tempfile

import altair as alt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from seqlib import tasks as task_registry
from seqlib.book.chapter import setup, show_source
from seqlib.config import load_config
from seqlib.layers import scan
from seqlib.layers.rglru import RGLRU
from seqlib.models import ModelConfig, build_model
from seqlib.results import record_path
from seqlib.tasks.base import TaskSpec
from seqlib.train import run_one

setup(profile, seed=seed)

# sizes per profile: RG-LRU width, gate blocks (heads), tokens sampled
SIZES = {"tiny": (64, 4, 32), "smoke": (256, 8, 256), "full": (1024, 16, 2048)}
width, heads, tokens = SIZES[profile]
torch.manual_seed(seed);


# %%
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
# ## The gates after training
#
# Do the gates move once the model has a task? Below, a small Hawk learns flip-flop language
# modelling {cite:p}`liu2023flipflop`: the sequence writes a bit, then many noise instructions follow,
# and at a read the model must return the last written bit, so some channels must hold a value
# across many tokens. The run goes through the training engine exactly as a task chapter's does
# (`load_config` for the model and optimiser of this profile, then `run_one`), for a fixed number
# of steps, into a scratch results store; the chapter then loads the run's checkpoint.

# %%
# steps and sequence length per profile; "tiny" (the tests) trains with the smoke settings of params/
TRAIN = {"tiny": (20, 32), "smoke": (200, 128), "full": (2000, 512)}
steps, seq_len = TRAIN[profile]
store = tempfile.mkdtemp(prefix="rg_lru_run_")
cfg = load_config("flipflop", "hawk", profile="full" if profile == "full" else "smoke", overrides=[
    f"optim.steps={steps}", "optim.lr_sweep=[]", f"optim.seeds=[{seed}]", f"task.params.seq_len={seq_len}",
    "run.eval_splits=[val]", f"run.results_dir={store}", "run.progress=false",
])
cfg = cfg.for_run(cfg.optim.lr, seed)
record = run_one(cfg, force=True).record
assert record.status == "ok", record.reason

val = {m["metric"]: m["value"] for m in record.metrics
       if m["split"] == "val" and m["slice_key"] == "all"}
pd.Series({
    "model": f"hawk, d_model={cfg.model.d_model}, {cfg.model.n_layers} layers",
    "RG-LRU width, parameters": f"{cfg.model.resolved.d_rnn}, {record.measure['num_params']:,}",
    "task": f"flipflop, seq_len={seq_len}",
    "optimiser": f"{cfg.optim.optimizer}, lr={cfg.optim.lr:g}, batch {cfg.optim.batch_size}, "
                 f"{record.train['steps_done']} steps",
    "train loss, first / last step": f"{record.train['loss_curve'][0][1]:.3f} / "
                                     f"{record.train['loss_curve'][-1][1]:.3f}",
    "val glitch rate": f"{val['glitch_rate']:.3f} (on {cfg.run.eval_size} sequences)",
    "training time": f"{record.measure['train_time_s']:.1f} s on {record.provenance.device_name}",
    "run id": record.run_id,
}, name="").to_frame()

# %% [markdown]
# The engine seeds the build with the run's seed, so rebuilding the model with that seed gives
# the exact initial weights. A forward hook on every `RGLRU` layer catches the layer's input on a
# batch of validation sequences; the decay $a_t$ is then computed by the library's own
# `rg_lru_gates` (document starts, where $a_t$ is zeroed, are left out).

# %%
task = task_registry.get_task("flipflop", **cfg.task.params)
torch.manual_seed(seed)
initial = build_model(cfg.model, task.spec).eval()
trained = build_model(cfg.model, task.spec).eval()
checkpoint = record_path(store, "flipflop", "hawk", record.config_hash).with_suffix(".pt")
trained.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
batch = task.sample("val", 16, seed=10_000 + seed)


def decays(model) -> torch.Tensor:
    """a_t of every RG-LRU layer, channel and token (document starts excluded), flattened."""
    seen = []

    def hook(layer, args, output):
        x, segment_pos = args[0], args[1]
        a_t, _ = scan.rg_lru_gates(x, layer.input_gate(x), layer.a_gate(x), layer.a_param,
                                   segment_pos == 0)
        seen.append(a_t[segment_pos > 0].flatten())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, RGLRU)]
    with torch.no_grad():
        model(batch.inputs, batch.segment_pos)
    for h in handles:
        h.remove()
    return torch.cat(seen)


gates = pd.concat([pd.DataFrame({"a_t": decays(m).numpy(), "model": name})
                   for name, m in (("initial", initial), ("trained", trained))])
gates["memory"] = 1.0 / (1.0 - gates["a_t"])
moved = {name: (dict(trained.named_parameters())[name] - p).abs().max().item()
         for name, p in initial.named_parameters() if "rg_lru" in name}
table = gates.groupby("model")[["a_t", "memory"]].quantile([0.05, 0.5, 0.95, 0.99]).unstack()
table.round(3)

# %%
a_edges = np.linspace(0.0, 1.0, 41)
m_edges = np.logspace(0, 3, 31)
rows = []
for name, group in gates.groupby("model"):
    for col, edges in (("a_t", a_edges), ("memory", m_edges)):
        counts, _ = np.histogram(group[col].clip(edges[0], edges[-1]), bins=edges)
        rows += [{"quantity": col, "model": name, "lo": lo, "hi": hi, "share": c / counts.sum()}
                 for lo, hi, c in zip(edges[:-1], edges[1:], counts)]
hists = pd.DataFrame(rows)
colour = alt.Color("model:N", title=None, scale=alt.Scale(range=["#9e9e9e", "#1f77b4"]),
                   legend=alt.Legend(orient="top"))
common = dict(y=alt.Y("share:Q", title="share of channels x tokens", stack=None,
                      axis=alt.Axis(format="%")),
              color=colour, opacity=alt.value(0.55),
              tooltip=["model:N", alt.Tooltip("lo:Q", format=".3g"), alt.Tooltip("hi:Q", format=".3g"),
                       alt.Tooltip("share:Q", format=".1%")])
a_chart = alt.Chart(hists[hists.quantity == "a_t"], title="a_t").mark_rect().encode(
    x=alt.X("lo:Q", title="a_t"), x2="hi:Q", y2=alt.datum(0), **common
).properties(width=260, height=200)
m_chart = alt.Chart(hists[hists.quantity == "memory"], title="memory 1/(1 - a_t)").mark_rect().encode(
    x=alt.X("lo:Q", scale=alt.Scale(type="log"), title="tokens (log scale; clipped to [1, 1000])"),
    x2="hi:Q", y2=alt.datum(0), **common
).properties(width=260, height=200)
a_chart | m_chart

# %%
factors = {q: table.loc["trained", ("memory", q)] / table.loc["initial", ("memory", q)]
           for q in (0.5, 0.95, 0.99)}
largest = max(moved, key=moved.get)
init_std = dict(initial.named_parameters())[largest].std().item()
display(Markdown(
    f"After {record.train['steps_done']} steps (val glitch rate {val['glitch_rate']:.3f}), the "
    "memory length changed by a factor "
    + ", ".join(f"{f:.2f} at the {q:.0%} quantile" for q, f in factors.items())
    + f". The largest change of any RG-LRU parameter is {moved[largest]:.3f} (`{largest}`, "
    + (f"initial standard deviation {init_std:.3f}). " if init_std > 0 else "initialised at 0). ")
    + ("These are small changes: the initial range [0.9, 0.999] of the base a already gives "
       f"memories up to {table.loc['initial', ('memory', 0.99)]:.0f} tokens (99% quantile), and "
       "this run did not need to move the gates far."
       if all(2 / 3 < f < 1.5 for f in factors.values()) else
       "Training moved the memory lengths well away from their initial distribution.")
))

# %% [markdown]
# ## Two scan backends, one answer
#
# `rg_lru_scan` runs the same recurrence with a plain loop over time (`sequential`, the readable
# reference) or a log-depth associative scan (`parallel`). Both accumulate in fp32 and must agree;
# here with a document boundary in the middle of the sequence. On a CUDA GPU a third backend,
# `triton` (`seqlib/kernels/rglru_triton.py`), fuses the gate maths and the scan into one kernel
# and is what `auto` picks there; its agreement with these two is tested on the GPU
# (`tests/test_kernel_rglru.py`) and its speed is in the Efficiency chapter.

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

# %% [markdown]
# ## The bounded square-root gradient
#
# The input is scaled by $\sqrt{1 - a_t^2}$, whose derivative in $z = 1 - a_t^2$ is
# $1 / (2\sqrt z)$: unbounded as $a_t \to 1$, which is exactly where the long-memory channels
# live. The reference code replaces the backward pass by $1/\sqrt{\max(4z,\, 10^{-6})}$, so the
# gradient never exceeds 1000, "to prevent NaNs during training in bfloat16" (the comment in
# `RGLRU.forward`, `google-deepmind/recurrentgemma`, `recurrentgemma/torch/layers.py`, where
# `SqrtBoundDerivative` implements the cap).
# The forward value is the exact square root.

# %%
show_source(scan.SqrtBoundDerivative)

# %%
z = torch.logspace(-10, 0, 201, dtype=torch.float64, requires_grad=True)
scan.sqrt_bound_derivative(z).sum().backward()
capped = z.grad.clone()
exact = 0.5 / z.detach().sqrt()
z_kink = 1.0 / (4 * scan.MAX_SQRT_GRADIENT**2)
grads = pd.concat([
    pd.DataFrame({"z": z.detach().numpy(), "gradient": exact.numpy(), "backward": "exact 1/(2 sqrt z)"}),
    pd.DataFrame({"z": z.detach().numpy(), "gradient": capped.numpy(),
                  "backward": "SqrtBoundDerivative"}),
])
line = alt.Chart(grads, title="d sqrt(z) / dz").mark_line().encode(
    x=alt.X("z:Q", scale=alt.Scale(type="log"), title="z = 1 - a_t^2", axis=alt.Axis(format=".0e")),
    y=alt.Y("gradient:Q", scale=alt.Scale(type="log"), title="gradient"),
    color=alt.Color("backward:N", title=None, legend=alt.Legend(orient="top")),
    strokeDash=alt.StrokeDash("backward:N", title=None, legend=alt.Legend(orient="top")),
    tooltip=["backward:N", alt.Tooltip("z:Q", format=".2e"), alt.Tooltip("gradient:Q", format=".3g")],
)
rule = alt.Chart(pd.DataFrame({"z": [z_kink]})).mark_rule(color="gray").encode(x="z:Q")
(line + rule).properties(width=420, height=240)

# %%
a_kink = (1 - z_kink) ** 0.5
print(f"the cap acts for z < {z_kink:.2e}, i.e. a_t > {a_kink:.9f} "
      f"(a memory 1/(1 - a_t) above {1 / (1 - a_kink):,.0f} tokens); "
      f"largest gradient on this grid: {capped.max().item():.1f}")

# %% [markdown]
# In fp32 the cap only matters for memories of millions of tokens. The reference computes the
# gates in bf16, whose 8 significant bits round $a_t^2$ to 1 once $a_t$ exceeds about 0.999 (a
# memory of about 1,000 tokens, within reach of a trained gate with $r_t \to 0$): there
# $z = 0$ exactly and the uncapped gradient would be infinite.

# %% [markdown]
# ## Decoding with a constant-size state
#
# At generation time each recurrent block carries two things from token to token: the RG-LRU
# state $h_t$ ($D_{RNN}$ numbers, fp32) and the last three inputs of the width-4 convolution
# ($3 D_{RNN}$). Neither grows with the context. An attention layer instead keeps every key and
# value it has seen (a global Transformer) or the last $W$ of them (local attention, see the next
# chapter). `model.state_size(T)` counts the elements a sequence needs after $T$ tokens:

# %%
show_source(RGLRU.init_cache)

# %%
spec = TaskSpec("tokens", "tokens", "ce", num_outputs=task.spec.vocab_size, vocab_size=task.spec.vocab_size)
shape = {k: getattr(cfg.model, k) for k in ("d_model", "n_layers", "num_heads")}
models = {name: build_model(ModelConfig(name=name, **shape), spec) for name in ("hawk", "transformer")}
lengths = [256, 1024, 4096, 16384, 65536]
state = pd.DataFrame([{"model": name, "T": T, **model.state_size(T)}
                      for name, model in models.items() for T in lengths]).fillna(0).astype(
    {"rg_lru": int, "conv": int, "kv": int})
state.pivot(index="T", columns="model", values="total").rename_axis(
    columns=f"elements per sequence (d_model={shape['d_model']}, {shape['n_layers']} layers)")

# %%
alt.Chart(state, title="decode state per sequence").mark_line(point=True).encode(
    x=alt.X("T:Q", scale=alt.Scale(type="log", base=2), title="tokens of context T"),
    y=alt.Y("total:Q", scale=alt.Scale(type="log"), title="elements"),
    color=alt.Color("model:N", title=None, legend=alt.Legend(orient="top")),
    tooltip=["model:N", "T:Q", alt.Tooltip("total:Q", format=",")],
).properties(width=420, height=240)

# %% [markdown]
# Constant size is only useful if decoding computes the same function as the parallel forward.
# The check below feeds random tokens, with a second document starting part-way, to the trained
# Hawk once in parallel and once token by token through its cache:

# %%
T = 4 * seq_len if profile != "tiny" else 48
tokens_in = torch.randint(0, task.spec.vocab_size, (2, T))
segment_pos = torch.arange(T).repeat(2, 1)
segment_pos[1, T // 3:] = torch.arange(T - T // 3)  # row 1: a new document at T/3
with torch.no_grad():
    full, _ = trained(tokens_in, segment_pos)
    cache = trained.init_cache(2)
    steps_out = []
    for t in range(T):
        out, cache = trained(tokens_in[:, t:t + 1], segment_pos[:, t:t + 1], cache)
        steps_out.append(out)
stepped = torch.cat(steps_out, dim=1)
error = ((stepped - full).abs().max() / full.abs().max()).item()
sizes = {k: tuple(v.shape) for k, v in vars(cache[0]).items()}
print(f"{T} tokens decoded one at a time: max |decode - forward| / max |forward| = {error:.1e}")
print(f"cache of block 0 after {T} tokens: {sizes}  (the same shapes after 1 token)")
assert error < 1e-5

# %% [markdown]
# ## Negative eigenvalues: a control for parity
#
# Along one channel the RG-LRU multiplies its state by $a_t \in (0, 1)$ at every step, so the
# state's transition has only positive eigenvalues. {cite:t}`grazzi2024negative` (Theorem 1) prove that a finite-precision linear RNN whose transitions have only positive
# eigenvalues cannot solve parity at arbitrary lengths, and that allowing eigenvalues in
# $(-1, 1)$ (for Mamba and DeltaNet, by mapping the gate's range) lifts the barrier: a state that
# is multiplied by $-1$ at every 1 and by $+1$ at every 0 carries the parity. The same map applied to
# the RG-LRU is our construction; it is not in Griffin or in Grazzi et al.:
#
# $$
# A_t = 2 a_t - 1 \in (-1, 1), \qquad
# h_t = A_t \odot h_{t-1} + \sqrt{1 - A_t^2} \odot (i_t \odot x_t).
# $$
#
# The normalisation keeps its meaning: for a stationary input $u_t$ of unit variance, independent
# over time, $h_t = A h_{t-1} + \sqrt{1 - A^2}\, u_t$ has variance 1 for every fixed
# $A \in (-1, 1)$, as before. It stays well defined over the whole range, because
#
# $$
# 1 - A_t^2 = 1 - (2a_t - 1)^2 = 4\, a_t (1 - a_t) = -4\, a_t\, \mathrm{expm1}(\log a_t),
# $$
#
# which `seqlib` computes in the last form, from $\log a_t$, with no cancellation as $a_t \to 1$. The
# multiplier is 1 at $A_t = 0$ ($a_t = 1/2$) and goes to 0 at both ends, $A_t \to \pm 1$, where the
# bounded square-root gradient above caps its derivative. The initialisation is the RG-LRU's, so at
# zero input $A_t = 2a^{4} - 1$ (with $r_t = 1/2$) is positive, and a channel reaches $A_t \to -1$
# only by learning a large $r_t\, \mathrm{softplus}(\theta)$ ($a_t \to 0$). The variant is the
# `negative` option of `RGLRU` (the models `hawk_neg` and `griffin_neg`), in both scans and in the
# fused kernel, and it is tested as the RG-LRU is (reference loop, gradients, resets, decode =
# forward).
#
# Below, one channel with its gates pushed to $a_t \approx 0$ reads a single impulse at a document
# start followed by zeros. The RG-LRU forgets it at once and its state never changes sign; the
# variant keeps it and flips its sign at every step, which is what a parity state does at every 1. Whether training
# finds such a solution, and whether it generalises beyond the training lengths as the theory allows,
# is what the runs of `hawk_neg` and `griffin_neg` on the Chomsky tasks test.

# %%
steps = 8
impulse = torch.zeros(1, steps, 1)
impulse[0, 0, 0] = 1.0
big = torch.full((1, steps, 1), 12.0)  # gate pre-activations: r_t and i_t near 1
start = torch.arange(steps)[None] == 0  # a document starts at t = 0: h_0 = i_0 x_0
theta = torch.tensor([6.0])  # softplus(6) * c * r_t ~ 48: a_t ~ e^-48
states = {}
for negative in (False, True):
    h, _ = scan.rg_lru_scan(impulse, big, big, theta, start, backend="sequential", negative=negative)
    states["A_t = 2 a_t - 1" if negative else "a_t (RG-LRU)"] = h[0, :, 0].numpy()
pd.DataFrame(states, index=pd.RangeIndex(steps, name="t")).style.format("{:+.2e}")

# %%
flips = np.sign(states["A_t = 2 a_t - 1"][1:]) != np.sign(states["A_t = 2 a_t - 1"][:-1])
assert flips.all() and (states["a_t (RG-LRU)"] >= 0).all()

# %% [markdown]
# ## Where we follow the reference code rather than the paper
#
# Where the paper {cite:p}`de2024griffin` and the released code (`google-deepmind/recurrentgemma`)
# differ, `seqlib` does what the code does, with two exceptions where we keep the paper's
# Hawk/Griffin presets. Section numbers (§) refer to the paper; file and function names to the code,
# under `recurrentgemma/` (the torch and JAX versions compute the same thing unless said otherwise).
#
# * **Initial decay.** The paper says $\Lambda$ is set so that $a^c$ is uniform in $[0.9, 0.999]$
#   (§2.4); the code draws $a^2$ uniform in $[0.9^2, 0.999^2]$ (`torch/layers.py`, `rnn_param_init`,
#   called by `RGLRU.a_param_init`), so it is the base $a$, not $a^c$, that lies in that range.
#   `seqlib`'s `a_param_init` follows the code; the histograms above are of this initialisation.
# * **Gate blocks.** The paper uses 16 blocks for both gate projections (§4.1); the code uses
#   one block per attention head (`num_heads` blocks of `BlockDiagonalLinear` in `RGLRU`,
#   `torch/layers.py`). `ModelConfig.gate_blocks` defaults to `num_heads`.
# * **Gate initialisation.** LeCun normal over the block's fan-in, std $\sqrt{1/(R/H)}$, as the
#   torch reference (`BlockDiagonalLinear.w_init_`, `torch/layers.py`); the JAX reference's
#   `variance_scaling` counts all $R$ inputs, std $\sqrt{1/R}$ (`jax/layers.py`).
# * **RoPE on half of each head.** The paper says "RoPE"; the code rotates the first half of each
#   head's channels and passes the rest through (`_apply_rope`, `torch/modules.py`).
# * **First token of a document.** At `segment_pos == 0` the code drops the state and does *not*
#   scale the input by $\sqrt{1 - a_t^2}$ (`RGLRU.forward`, `torch/layers.py`); `rg_lru_gates`
#   above does the same.
# * **$W + 1$ keys.** The local-attention mask lets a query see keys $i - W \dots i$, i.e. $W + 1$
#   tokens with itself (`_compute_causal_mask`, `torch/modules.py`).
# * **Convolution document mask.** The width-4 convolution drops inputs from before a document
#   start (`Conv1D._compute_document_mask`, `torch/layers.py`); the paper does not discuss packing.
# * **Gate maths in fp32.** The reference computes the gates in the activation dtype (bf16 in
#   training) and only accumulates the scan in fp32 (`rnn_scan`'s `acc_dtype=torch.float32`, and the
#   fp32 state of `RGLRU.init_cache`, `torch/layers.py`); `rg_lru_gates` casts the gate
#   pre-activations to fp32 first. This is our choice, not the reference's.
# * **Embedding and logits (paper presets).** RecurrentGemma multiplies the embedding by
#   $\sqrt D$ and soft-caps the logits at 30; the paper's Hawk/Griffin presets do neither
#   (the presets in `common.py`; the soft-cap is applied in `Griffin.forward`), and neither does
#   `seqlib` by default (`embed_scale_by_sqrt_dim=False`, no soft-cap).
# * **RG-LRU width (paper).** $D_{RNN} \approx 4D/3$ as in the paper's Table 2, not $D$ as in
#   RecurrentGemma's presets (`common.py`): `ModelConfig.resolved.d_rnn` rounds $4D/3$ to a multiple
#   of the gate blocks. Comparisons across architectures are made at equal parameter counts with
#   `seqlib.models.sizing.match_budget` (see the Architectures chapter), not at equal $D$.
