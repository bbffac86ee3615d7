import pathlib
import re

import pytest

from usmr_tf.errors import ConfigError
from usmr_tf.training import recipe as recipe_lib

RECIPES = pathlib.Path(__file__).resolve().parents[2] / "recipes"
TABLE_1 = ("ae", "gan", "cyclegan", "ours_no_bilatent", "ours_no_struct", "ours_no_att", "ours")


@pytest.mark.parametrize("name", TABLE_1 + ("phantom_quick",))
def test_every_recipe_loads_and_names_its_data_source(name):
    path = RECIPES / f"{name}.yaml"
    recipe = recipe_lib.load_recipe(path)
    assert recipe["name"] == name
    assert recipe["data"]["source"] in ("phantoms", "prepared")
    assert "Data:" in path.read_text()  # the header documents where images come from
    assert recipe["data"]["test_fraction"] == pytest.approx(0.2)  # paper: 80/20


@pytest.mark.parametrize("name", [n for n in TABLE_1 if n.startswith("ours")])
def test_paper_settings_in_ours_recipes(name):
    recipe = recipe_lib.load_recipe(RECIPES / f"{name}.yaml")
    assert recipe["model"]["lambda_rec"] == 10.0  # Eq. 1 and 5
    assert recipe["training"]["generator_optimizer"]["name"] == "adam"
    flags = {k: recipe["model"][k] for k in ("use_bilatent", "use_structural", "use_attention")}
    expected_off = {"ours_no_bilatent": "use_bilatent", "ours_no_struct": "use_structural",
                    "ours_no_att": "use_attention"}.get(name)
    assert [k for k, v in flags.items() if not v] == ([expected_off] if expected_off else [])


def test_overrides_are_parsed_as_yaml_and_nested():
    recipe = recipe_lib.load_recipe(RECIPES / "phantom_quick.yaml", [
        "training.epochs=3", "data.augment=false", "model.base_filters=4",
        "training.mixed_precision=mixed_bfloat16", "training.steps_per_epoch=null",
    ])
    assert recipe["training"]["epochs"] == 3
    assert recipe["data"]["augment"] is False
    assert recipe["model"]["base_filters"] == 4 and recipe["model"]["name"] == "ours"
    assert recipe["training"]["mixed_precision"] == "mixed_bfloat16"
    assert recipe["training"]["steps_per_epoch"] is None


def test_switching_optimizer_drops_the_old_ones_arguments():
    recipe = recipe_lib.load_recipe(None, ["training.generator_optimizer={name: sgd, learning_rate: 0.1}"])
    assert recipe["training"]["generator_optimizer"] == {"name": "sgd", "learning_rate": 0.1}
    recipe = recipe_lib.load_recipe(None, ["training.generator_optimizer.learning_rate=0.5"])
    assert recipe["training"]["generator_optimizer"]["beta_1"] == 0.5  # same optimizer: merged


@pytest.mark.parametrize("override, words", [
    ("training.epoch=3", "unknown key `training.epoch`"),
    ("nonsense=1", "unknown key `nonsense`"),
    ("training.epochs=0", "training.epochs"),
    ("training.epochs=two", "training.epochs"),
    ("data.source=dicom", "data.source"),
    ("training.strategy=tpu", "training.strategy"),
    ("training.mixed_precision=float8", "training.mixed_precision"),
    ("data.test_fraction=1.5", "data.test_fraction"),
    ("data.val_pick=random", "data.val_pick"),
    ("data.source=prepared", "data.cache_dir"),
    ("training.epochs", "key=value"),
    ("training=3", "must be a mapping"),
    ("training.lr_decay_start=10", "go together"),
    ("training.lr_decay_steps=10", "go together"),
    ("training.lr_decay_start=-1", "training.lr_decay_start"),
    ("training.initial_weights=3", "training.initial_weights"),
    ("logging.validate_realism_repeats=0", "logging.validate_realism_repeats"),
])
def test_bad_overrides_raise_config_error(override, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        recipe_lib.load_recipe(RECIPES / "phantom_quick.yaml", [override])


def test_bad_recipe_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        recipe_lib.load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: ours\ntraining: [")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not a valid YAML"):
        recipe_lib.load_recipe(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="empty"):
        recipe_lib.load_recipe(empty)
    typo = tmp_path / "typo.yaml"
    typo.write_text("trainig:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown key `trainig`"):
        recipe_lib.load_recipe(typo)


def test_dump_round_trip(tmp_path):
    recipe = recipe_lib.load_recipe(RECIPES / "ours.yaml", ["training.epochs=7"])
    recipe_lib.dump_recipe(recipe, tmp_path / "recipe.yaml")
    assert recipe_lib.load_recipe(tmp_path / "recipe.yaml") == recipe
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("name", TABLE_1)
def test_every_table_1_recipe_builds_its_model(name):
    from usmr_tf.training.trainer import build_model

    recipe = recipe_lib.load_recipe(RECIPES / f"{name}.yaml",
                                    ["model.base_filters=4", "model.depth=2"])
    model = build_model(recipe["model"], 32)
    expected = {"ae": "AutoEncoder", "gan": "PlainGAN", "cyclegan": "CycleGAN"}.get(
        name, "AnatomyAwareSynthesis")
    assert type(model).__name__ == expected
    for flag in ("use_bilatent", "use_structural", "use_attention"):
        if flag in recipe["model"]:
            assert getattr(model, flag) == recipe["model"][flag]


@pytest.mark.parametrize("name, data_config", [
    ("preset_fetal_hc18_cc0", "preset_hc18_cc0"), ("ours_crl", "crl")])
def test_real_data_recipes_train_from_an_ignored_prepared_folder(name, data_config, repo_root):
    import subprocess

    path = RECIPES / f"{name}.yaml"
    recipe = recipe_lib.load_recipe(path)
    assert recipe["model"]["name"] == "ours"
    assert recipe["data"]["source"] == "prepared"
    cache = recipe["data"]["cache_dir"]
    assert f"recipes/data/{data_config}.yaml --out {cache}" in path.read_text()
    # prepared data (the CRL atlas above all) must never be committable
    ignored = subprocess.run(["git", "check-ignore", "-q", f"{cache}/us/train.npy"],
                             cwd=repo_root)
    assert ignored.returncode == 0, f"{cache} is not git-ignored"


def test_preset_v3_recipe_is_v2_half_rec_on_data_v3_ranked_by_realism():
    v2 = recipe_lib.load_recipe(RECIPES / "preset_fetal_hc18_v2.yaml")
    v3 = recipe_lib.load_recipe(RECIPES / "preset_fetal_hc18_v3.yaml")
    # v2's configuration but half the reconstruction weight (the probes, docs/metrics.md)
    assert v3["model"]["lambda_rec"] == 5.0 and v2["model"]["lambda_rec"] == 10.0
    assert ({k: v for k, v in v3["model"].items() if k != "lambda_rec"}
            == {k: v for k, v in v2["model"].items() if k != "lambda_rec"})
    assert v3["data"]["cache_dir"].endswith("preset_v3_data")
    assert v3["logging"]["validate_realism"] is True
    assert v3["training"]["mixed_precision"] == "auto"  # bfloat16 where the CPU has it
    assert "recipes/data/preset_v3.yaml" in (RECIPES / "preset_fetal_hc18_v3.yaml").read_text()
