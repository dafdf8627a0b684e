"""The CLI behaves the same everywhere: shared --dataset/--data-root, valid default names, per-architecture
training recipes shared with the Models & data page."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vizcore import zoo
from vizcore.cli import build_parser, main
from vizcore.train import RECIPES, default_model_name, recipe_config


def test_every_command_that_reads_data_takes_dataset_and_data_root():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    reads_data = {"train", "evaluate", "visualize", "pg", "perturb", "knockout", "distill", "distill-preset",
                  "compress", "interpretability", "leakage"}
    zoo_import = next(a for a in sub.choices["zoo"]._actions if a.dest == "zoo_command").choices["import"]
    for name, parser in [(n, sub.choices[n]) for n in reads_data] + [("zoo import", zoo_import)]:
        opts = {o for a in parser._actions for o in a.option_strings}
        assert {"--dataset", "--data-root"} <= opts, name


def test_recipes_are_the_zoos():
    faces = recipe_config("lenet_faces", 123)
    assert (faces.optimizer, faces.lr, faces.batch_size, faces.epochs) == ("adam", 0.003, 16, 250)
    assert recipe_config("cnn", 60000).epochs == 12 and recipe_config("cnn_l", 60000).epochs == 8
    assert recipe_config("lenet_faces", 60000).epochs == 1  # the same step budget on a large set
    assert recipe_config("cnn", 60000, epochs=3, lr=None).epochs == 3
    assert set(RECIPES) == set(zoo.ARCHITECTURES)
    assert recipe_config("mlp10", 14000).epochs == 50  # uci-letter's zoo model
    for card_path in zoo.ZOO_DIR.glob("*.json"):  # every Fashion-MNIST / Yale zoo card is its arch's recipe
        card = json.loads(card_path.read_text())
        if card["dataset"] in ("fashion-mnist", "yale-faces"):
            n = {"fashion-mnist": 60000, "yale-faces": 123}[card["dataset"]]
            cfg = recipe_config(card["arch"], n)
            hp = card["hyperparameters"]
            assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.optimizer) == (
                hp["epochs"], hp["lr"], hp["batch_size"], hp["optimizer"]), card_path.name


@pytest.mark.parametrize(("dataset", "arch", "name"), [
    ("digits", "cnn", "digits-cnn-mine"),  # the zoo's digits-cnn keeps its name
    ("digits", "cnn_tiny", "digits-cnn_tiny"), ("image-folder:/a/b/my faces/", "cnn", "my-faces-cnn"),
    ("npz:/x/y/set.v2.npz", "cnn", "set.v2-cnn"), ("image-folder:/", "cnn", "data-cnn"),
    ("image-folder:/" + "x" * 200, "cnn", "x" * 60 + "-cnn")])
def test_default_names_are_valid_model_names(dataset, arch, name):
    assert default_model_name(dataset, arch) == name
    zoo.check_name(name)


def test_train_on_an_image_folder_without_a_name(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "my pets" / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / "my pets" / cls / f"{i}.png")
    code = main(["train", "--dataset", f"image-folder:{tmp_path / 'my pets'}", "--arch", "linear", "--epochs", "1",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["id"] == "user:my-pets-linear"
    card = zoo.get_entry("user:my-pets-linear").card
    assert card.hyperparameters["lr"] == RECIPES["linear"].lr and card.hyperparameters["epochs"] == 1
