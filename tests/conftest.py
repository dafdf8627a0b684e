"""Shared fixtures: an isolated workspace, real small data, tiny seeded models.

Every test runs with ``VIZCORE_HOME`` pointing at a fresh temporary folder, so nothing touches the user's
workspace. Fixtures that train are session-scoped and seeded (a few seconds on 2 cores).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
import torch

os.environ["VIZCORE_HOME"] = tempfile.mkdtemp(prefix="vizcore-test-")
torch.set_num_threads(2)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/app_server.py for the browser tests

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")  # AppTest resolves relative paths against the calling file
SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session", autouse=True)
def _apptest_uses_navigation():
    """Keep AppTest on ``st.navigation`` although the app has a ``pages/`` folder.

    Since streamlit/streamlit#14217 (the fix of #9446) AppTest resets ``PagesManager.uses_pages_directory`` before
    every run and re-detects it from the ``pages/`` folder, so ``switch_page`` runs a page the legacy (v1) way,
    without ``app.py`` and its sidebar. The real server clears the flag on the app's first ``st.navigation`` call;
    here the manager AppTest builds clears it as soon as it is created.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class NavigationPagesManager(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    mp = pytest.MonkeyPatch()
    mp.setattr(app_test, "PagesManager", NavigationPagesManager)
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch):
    """A fresh workspace per test."""
    home = tmp_path / "home"
    monkeypatch.setenv("VIZCORE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets``: required, the suite fails loudly if it is missing instead of skipping."""
    assert SHARED.is_dir(), f"tests need the shared datasets at {SHARED}"
    return SHARED


@pytest.fixture(scope="session")
def digits():
    from vizcore.data import load_digits

    return load_digits()


@pytest.fixture(scope="session")
def digits_linear(digits):
    """A `linear` model trained on digits (seeded), about 95 % test accuracy."""
    from vizcore.models import build_model
    from vizcore.train import TrainConfig, fit

    model = build_model("linear", digits.input_shape, 10, seed=0)
    fit(model, digits.train_x, digits.train_y, TrainConfig(epochs=30, lr=0.01, batch_size=64))
    return model


@pytest.fixture(scope="session")
def digits_cnn(digits):
    """A `cnn_s` model trained on digits (seeded), about 95 % test accuracy."""
    from vizcore.models import build_model
    from vizcore.train import TrainConfig, fit

    model = build_model("cnn_s", digits.input_shape, 10, seed=0)
    fit(model, digits.train_x, digits.train_y, TrainConfig(epochs=15, batch_size=64))
    return model


def weights_snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_untouched(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    """The model has no hooks left and bit-identical weights."""
    from vizcore.core.hooks import hook_count

    assert hook_count(model) == 0, "hooks were left on the model"
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"weight {k} changed"
