"""Config loading: profile overlays, --set overrides, and errors that name the key and the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from seqlib.config import ConfigError, load_config

PARAMS = Path(__file__).resolve().parent.parent / "params"


@pytest.fixture
def params(tmp_path: Path) -> Path:
    """A private copy of the repository's params/ to edit."""
    return Path(shutil.copytree(PARAMS, tmp_path / "params"))


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_profiles_overlay_the_same_files():
    smoke = load_config("mqar", "griffin", "smoke", params_dir=PARAMS)
    full = load_config("mqar", "griffin", "full", params_dir=PARAMS)
    assert smoke.model.d_model == 32 and full.model.d_model == 128  # models.yaml profile overlay
    assert smoke.task.params["seq_len"] == 64 and full.task.params["seq_len"] == 256  # tasks.yaml overlay
    parity = load_config("parity_check", "lstm", "full", params_dir=PARAMS)
    assert smoke.optim.steps == 40 and parity.optim.steps == 1000  # defaults.yaml overlay
    assert full.optim.steps == 4000  # the task's full overlay wins over the defaults' full overlay
    assert smoke.optim.early_stop_accuracy == 0.99  # tasks.yaml base entry, kept under the profile
    assert smoke.optim.lrs == [3e-3]  # the smoke overlay clears the base entry's sweep ([] -> lr)
    assert full.optim.lrs == [2.15e-3]  # the task's full overlay (one rate) wins over its base entry's sweep
    assert parity.optim.lrs == [1e-3, 3e-3] and parity.task.params["test_length_step"] == 5
    assert smoke.run.profile == "smoke"


def test_set_overrides_and_parses_yaml_values():
    cfg = load_config("mqar", "hawk", "smoke", ["optim.lr=5e-4", "optim.seeds=[3, 4]", "task.params.num_kv_pairs=2",
                                                "run.eval_size_per_split={test: 7}"], params_dir=PARAMS)
    assert cfg.optim.lr == 5e-4 and cfg.optim.seeds == [3, 4]
    assert cfg.task.params["num_kv_pairs"] == 2 and cfg.task.params["seq_len"] == 64
    assert cfg.run.eval_size_per_split == {"test": 7}


def test_hash_ignores_output_location_but_not_content():
    base = load_config("mqar", "hawk", "smoke", params_dir=PARAMS)
    moved = load_config("mqar", "hawk", "smoke", ["run.results_dir=/elsewhere", "run.progress=false"],
                        params_dir=PARAMS)
    changed = load_config("mqar", "hawk", "smoke", ["optim.lr=1e-4"], params_dir=PARAMS)
    assert base.hash() == moved.hash() != changed.hash()
    assert base.for_run(1e-3, 0).hash() != base.for_run(1e-3, 1).hash()


@pytest.mark.parametrize(
    ("file", "change", "expect"),
    [
        ("defaults.yaml", lambda d: d["optim"].update(lrr=1e-3), ["optim.lrr", "Extra inputs are not permitted",
                                                                  "defaults.yaml"]),
        ("models.yaml", lambda d: d["griffin"].update(widht=3), ["model.widht", "models.yaml [griffin]"]),
        ("tasks.yaml", lambda d: d["mqar"]["optim"].update(grad_clip="big"), ["optim.grad_clip", "'big'",
                                                                              "tasks.yaml [mqar]"]),
        ("defaults.yaml", lambda d: d["profiles"]["smoke"]["optim"].update(lr=-1), ["optim.lr", "greater than 0",
                                                                                    "[profiles.smoke]"]),
        ("defaults.yaml", lambda d: d["run"].update(device="tpu"), ["run.device", "'tpu'", "defaults.yaml"]),
        ("defaults.yaml", lambda d: d["optim"].update(betas=[0.9, 1.5]), ["optim.betas", "[0, 1)"]),
        ("models.yaml", lambda d: d["profiles"]["smoke"]["griffin"].update(d_model=31),
         ["model", "not divisible by num_heads", "models.yaml"]),
        ("tasks.yaml", lambda d: d["profiles"]["smoke"]["mqar"]["params"].update(num_kv_pairs=40),
         ["task.params", "more pairs than fit", "tasks.yaml [profiles.smoke] [mqar]"]),
        ("tasks.yaml", lambda d: d["mqar"]["params"].update(bogus=1), ["task.params", "bogus", "tasks.yaml [mqar]"]),
        ("tasks.yaml", lambda d: d.update(mqra={"params": {}}), ["unknown task", "'mqra'", "tasks.yaml"]),
        ("tasks.yaml", lambda d: d["mqar"].update(optimizer="adamw"), ["unknown key", "optimizer", "tasks.yaml"]),
        ("tasks.yaml", lambda d: d["mqar"].update(run={"select_split": "valid"}),
         ["run.select_split", "'valid'", "tasks.yaml [mqar]"]),
    ],
)
def test_bad_params_name_the_key_and_the_file(params, file, change, expect):
    edit(params / file, change)
    with pytest.raises(ConfigError) as err:
        load_config("mqar", "griffin", "smoke", params_dir=params)
    for text in expect:
        assert text in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("optim.steps=0", ["optim.steps", "greater than or equal to 1", "--set optim.steps=0"]),
        ("optim.warmup_steps=100", ["warmup_steps", "optim.warmup_steps in --set optim.warmup_steps=100",
                                    "optim.steps in", "defaults.yaml [profiles.smoke]"]),
        ("optim.optimizer=sgd", ["optim.optimizer", "'sgd'"]),
        ("optim.seeds=[1, 1]", ["optim.seeds", "distinct"]),
        ("model.window=0", ["model", "window must be >= 1"]),
        ("nonsense.key=1", ["nonsense", "Extra inputs are not permitted", "--set nonsense.key=1"]),
        ("optim.lr", ["expected key.sub=value"]),
    ],
)
def test_bad_overrides_are_named(override, expect):
    with pytest.raises(ConfigError) as err:
        load_config("mqar", "griffin", "smoke", [override], params_dir=PARAMS)
    for text in expect:
        assert text in str(err.value), str(err.value)


def test_unknown_profile_and_model_are_errors():
    with pytest.raises(ConfigError, match="unknown profile 'smok'"):
        load_config("mqar", "griffin", "smok", params_dir=PARAMS)
    with pytest.raises(ConfigError, match="unknown model 'griffon'"):
        load_config("mqar", "griffon", "smoke", params_dir=PARAMS)


def test_an_empty_mapping_in_an_overlay_clears_the_setting():
    from seqlib.config import load_config

    assert load_config("flipflop", "hawk", "full").run.eval_size_per_split  # the full split sizes
    cleared = load_config("flipflop", "hawk", "full", overrides=["run.eval_size_per_split={}"])
    assert cleared.run.eval_size_per_split == {}
