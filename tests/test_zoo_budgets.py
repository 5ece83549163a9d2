"""The fla zoo at the book's parameter budgets, on a CPU (fla is in requirements-cpu.txt: its layers
construct without a GPU, only their Triton kernels need one). Every zoo model that a task chapter lists
is sized by :func:`seqlib.models.sizing.match_budget` to the book profile's budget of the chapter's
tasks (``param_budget``, params/defaults.yaml and tasks.yaml) within 3%, counted on the meta device
and checked against the layers built for real; a pair the grid skips for its budget cannot be sized."""

from __future__ import annotations

import pytest
import yaml

from seqlib.config import load_config
from seqlib.models.sequence_model import SequenceModel
from seqlib.models.sizing import TOLERANCE, count_params, match_budget
from seqlib.models.zoo import FLA_LAYERS
from seqlib.provenance import REPO
from seqlib.tasks import get_task

GRID = yaml.safe_load((REPO / "params" / "grid.yaml").read_text())
CHAPTERS = [e for e in GRID["runs"] if "task" in e]


@pytest.fixture(scope="module")
def largest() -> dict[str, str]:
    """Per task chapter, its task with the largest input and output sizes (its tasks differ in those
    only, and share one budget), by the book configurations of a native model."""
    out = {}
    for entry in CHAPTERS:
        names = (entry.get("params") or {}).get("subtasks") or [entry["task"]]
        configs = {name: load_config(name, "hawk", "book") for name in names}
        specs = {name: get_task(c.task.name, **c.task.params).spec for name, c in configs.items()}
        assert len({c.param_budget for c in configs.values()}) == 1, f"{entry['chapter']}: one budget per chapter"
        out[entry["chapter"]] = max(names, key=lambda n: (specs[n].vocab_size or specs[n].feature_dim or 0,
                                                          specs[n].num_outputs))
    return out


@pytest.mark.parametrize("model", sorted(FLA_LAYERS))
def test_every_zoo_model_is_sized_to_its_task_family_budget(model, largest):
    pytest.importorskip("fla", reason="flash-linear-attention 0.6.0 (requirements-cpu.txt) is not installed")
    chapters = [e for e in CHAPTERS if model in e["models"]]
    assert chapters, f"{model} is on no task chapter"
    for entry in chapters:
        cfg = load_config(largest[entry["chapter"]], model, "book")
        spec = get_task(cfg.task.name, **cfg.task.params).spec
        sized = match_budget(cfg.model, spec, cfg.param_budget)
        got = count_params(sized, spec)
        assert abs(got - cfg.param_budget) <= TOLERANCE * cfg.param_budget, (entry["chapter"], got, cfg.param_budget)
        assert (sized.n_layers, sized.num_heads) == (cfg.model.n_layers, cfg.model.num_heads)  # only widths change
        if FLA_LAYERS[model].head_dims:  # PaTH, DeltaFormer: fla's kernels refuse other head widths
            assert sized.d_model // sized.num_heads in FLA_LAYERS[model].head_dims, (entry["chapter"], sized.d_model)
    assert SequenceModel(sized, spec).num_params() == got  # the layers built for real (CPU), as counted


@pytest.mark.parametrize("entry,model", [(e, m) for e in CHAPTERS for m, why in (e.get("skip") or {}).items()
                                         if "budget" in why], ids=lambda x: x["chapter"] if isinstance(x, dict) else x)
def test_a_pair_skipped_for_its_budget_cannot_be_sized(entry, model):
    pytest.importorskip("fla", reason="flash-linear-attention 0.6.0 (requirements-cpu.txt) is not installed")
    for name in (entry.get("params") or {}).get("subtasks") or [entry["task"]]:
        cfg = load_config(name, model, "book")
        with pytest.raises(ValueError, match=f"cannot size {model!r} to {cfg.param_budget} parameters"):
            match_budget(cfg.model, get_task(cfg.task.name, **cfg.task.params).spec, cfg.param_budget)
