"""Decode steps replayed from a CUDA graph (issue 20: decode latency in wall clock).

An eager one-token step of a small model launches dozens of small kernels from Python, so its wall
clock is host-bound (Hawk's decode measured 7-10x its kernel time on an H200). :class:`GraphedDecoder`
keeps the cache in static buffers and runs ``model(token, segment_pos, cache)`` followed by an in-place
copy of the new cache into them, replayed from one CUDA graph per input shape
(:class:`seqlib.stack.GraphedStep`: two eager warm-up steps, then the capture), so a step is one
launch. The step must keep the cache's shapes and read nothing on the host: true of Hawk's and
Griffin's recurrent state and local-attention ring buffer (its token count is a tensor); a global
attention cache grows by a token each step and is refused with the reason (its decode stays eager).
Without CUDA (``graphs`` False) each step runs eagerly through the same in-place path.
"""

from __future__ import annotations

import dataclasses

import torch

from seqlib.stack import GraphedStep


def cache_tensors(cache, where: str = "cache") -> list[torch.Tensor]:
    """Every tensor of a decode cache (lists, tuples and dataclasses of tensors, ``None`` skipped), in
    order; any other value (a Python int that changes per step) is refused: a graph would freeze it."""
    if cache is None:
        return []
    if isinstance(cache, torch.Tensor):
        return [cache]
    if isinstance(cache, (list, tuple)):
        return [t for i, item in enumerate(cache) for t in cache_tensors(item, f"{where}[{i}]")]
    if dataclasses.is_dataclass(cache):
        return [t for f in dataclasses.fields(cache)
                for t in cache_tensors(getattr(cache, f.name), f"{where}.{type(cache).__name__}.{f.name}")]
    raise TypeError(f"a graphed decode needs a cache of tensors; {where} is {type(cache).__name__} "
                    f"{cache!r:.40}, which a CUDA graph would freeze at its captured value")


def copy_cache_(dst, src) -> None:
    """Copy the decode cache ``src`` into ``dst`` (the same structure and shapes), in place."""
    targets, sources = cache_tensors(dst), cache_tensors(src)
    if len(targets) != len(sources) or any(a.shape != b.shape for a, b in zip(targets, sources)):
        grown = [(tuple(a.shape), tuple(b.shape)) for a, b in zip(targets, sources) if a.shape != b.shape]
        raise ValueError(f"the decode step changed the cache's shapes ({grown[:2]}, e.g. a global attention "
                         "cache that grows by a token): it cannot replay from static buffers")
    for a, b in zip(targets, sources):
        a.copy_(b)


class GraphedDecoder:
    """One-token decode steps of ``model`` from ``cache`` (its ``init_cache``, after any prefill), the
    cache updated in place; ``step(token, segment_pos)`` returns the step's logits (a buffer the next
    step overwrites: copy it to keep it). ``graphs`` (default: on CUDA) replays the steps from CUDA
    graphs; ``failure`` says why a capture failed (the steps then run eagerly)."""

    def __init__(self, model: torch.nn.Module, cache, graphs: bool | None = None) -> None:
        self.model, self.cache = model, cache
        cache_tensors(cache)  # a cache the graph would freeze is refused before any step
        device = next(model.parameters()).device
        enabled = device.type == "cuda" if graphs is None else graphs
        if enabled and device.type != "cuda":
            raise ValueError(f"graphs=True needs a CUDA device, not {device}")
        self._step = GraphedStep(self._eager, enabled=enabled)

    @property
    def failure(self) -> str | None:
        return self._step.failure

    def _eager(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits, new = self.model(x["token"], x["segment_pos"], self.cache)
        copy_cache_(self.cache, new)
        return {"logits": logits}

    @torch.no_grad()
    def step(self, token: torch.Tensor, segment_pos: torch.Tensor) -> torch.Tensor:
        return self._step({"token": token, "segment_pos": segment_pos})["logits"]
