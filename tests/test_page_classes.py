"""AppTest: every class picker follows a switch of model or dataset (issue 13).

A keyed Streamlit widget keeps its identity when only its options change, so after Fashion-MNIST -> digits the
browser went on showing "3: Dress" and the page used the old index. Each picker must show the new model's class
names, come back to its default, and tell the browser (``set_value``); a switch between two models of the same
classes keeps the choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
FASHION = "zoo:fashion-mnist-cnn_tiny"
DIGITS = [str(i) for i in range(10)]

# page -> (selectbox key, value picked on Fashion-MNIST, default expected on digits)
PICKERS = {
    "perturb": [("pt_img_class", 3, 0), ("pt_target", 7, 1)],  # the target's default: the next class
    "gradients": [("pg_img_class", 3, 0), ("pg_target", 7, 0)],  # the gradient's default: the image's class
    "looks_like": [("ll_img_class", 3, 0), ("ll_other", 7, 1)],
    "knockout": [("ko_class", 3, 0)],
}


def _on_fashion(page: str, shared_datasets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["dataset_name"], at.session_state["model_id"] = "fashion-mnist", FASHION
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _to_digits(at: AppTest) -> None:
    at.selectbox(key="dataset_name").set_value("digits").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="model_id").value.startswith("zoo:digits-")


@pytest.mark.parametrize("page", list(PICKERS))
def test_class_pickers_follow_a_dataset_switch(page, shared_datasets):
    at = _on_fashion(page, shared_datasets)
    for key, picked, _ in PICKERS[page]:
        at.selectbox(key=key).set_value(picked).run()
        assert at.selectbox(key=key).options[picked].endswith(("Dress", "Sneaker"))
    _to_digits(at)
    for key, _, default in PICKERS[page]:
        box = at.selectbox(key=key)
        assert [o.split(": ")[-1] for o in box.options] == DIGITS, key
        assert box.value == default and box.index == default, key
        assert box.proto.set_value, f"{key}: the browser is not told the new value"


def test_same_classes_keep_the_choice_and_visualize_takes_every_new_class(shared_datasets):
    at = _on_fashion("perturb", shared_datasets)
    at.selectbox(key="pt_img_class").set_value(3).run()
    at.selectbox(key="model_id").set_value("zoo:fashion-mnist-linear").run()  # same ten classes: keep "3: Dress"
    assert not at.exception and at.selectbox(key="pt_img_class").value == 3
    at.switch_page("pages/visualize.py").run()
    at.multiselect(key="viz_classes").set_value(["Dress", "Bag"]).run()
    _to_digits(at)
    box = at.multiselect(key="viz_classes")
    assert box.options == DIGITS and box.value == DIGITS
