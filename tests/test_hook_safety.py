"""One hook-safety test for every public operation (the shape of captum's ``tests/attr/test_hook_removal.py``).

Models are shared by every browser session, so each operation of the public API that takes a model is run
normally, with an error injected inside the model's forward pass, and (where it takes ``cancelled``) cancelled
at once; afterwards the model must have no hook, bit-identical weights, and its mode and ``requires_grad``
flags as they were. ``test_registry_covers_the_public_api`` makes a new public operation fail until it is
registered here.
"""

from __future__ import annotations

import dataclasses
import inspect
from functools import partial

import pytest
import torch
from conftest import assert_untouched, weights_snapshot

import vizcore
from vizcore.core.progress import Cancelled
from vizcore.distill.protocol import DistillConfig
from vizcore.distill.students import StudentConfig
from vizcore.distill.synthesis import SynthesisConfig
from vizcore.explain import objectives as obj
from vizcore.explain.importance import StudyConfig
from vizcore.explain.perturb import PerturbConfig
from vizcore.explain.visualize import VisualizeConfig
from vizcore.zoo import ModelCard

SHAPE = (1, 8, 8)
VIS = VisualizeConfig(start="noise", steps=3, threshold=0.99, attract_repel=True, pre_steps=2)


@dataclasses.dataclass(frozen=True)
class Op:
    run: object  # run(model, digits, **kw) with kw = {"cancelled": ...} when ``cancels``
    forwards: bool = True  # runs the model (so an error injected in its forward pass reaches it)
    cancels: bool = False  # takes ``cancelled``


def _x(d, n=8):
    return d.test_x[:n]


def _ev(m, d):
    return vizcore.KnockoutEvaluator(m, d.test_x[:40], d.test_y[:40])


def _capture(m, d):
    with vizcore.capture(m, ["conv1", "fc1"]) as acts:
        m(_x(d))
    assert set(acts) == {"conv1", "fc1"}


def _channel_mask(m, d):
    with vizcore.channel_mask(m, {"conv1": [0, 1]}):
        m(_x(d))


def _guarded(m, d):
    with vizcore.guarded(m):
        m(_x(d))


def _save(m, d, tmp):
    card = ModelCard(name="hook-safety", dataset=d.name, arch="cnn_s", input_shape=list(SHAPE),
                     class_names=list(d.class_names))
    vizcore.save_model(m, card, tmp)


def _synth(m, d, **kw):
    return vizcore.synthesize(m, SynthesisConfig(method="pixel-am", n=10, max_steps=3), input_shape=SHAPE,
                              class_names=list(d.class_names), **kw)


def _distill(m, d, **kw):
    cfg = DistillConfig("t", d.name, SynthesisConfig(method="pixel-am", n=20, max_steps=3),
                        students=(StudentConfig(arch="linear", epochs=1, min_steps=1, checkpoints=1),), baseline=False)
    return vizcore.run_distillation(m, cfg, class_names=list(d.class_names), input_shape=SHAPE,
                                    load_test=lambda: (d.test_x[:20], d.test_y[:20]), **kw)


OPS: dict[str, Op] = {
    # core
    "guarded": Op(_guarded),
    "capture": Op(_capture),
    "channel_mask": Op(_channel_mask),
    "frozen_copy": Op(lambda m, d: vizcore.frozen_copy(m), forwards=False),
    "hook_count": Op(lambda m, d: vizcore.hook_count(m), forwards=False),
    "model_device": Op(lambda m, d: vizcore.model_device(m), forwards=False),
    "conv_layers": Op(lambda m, d: vizcore.conv_layers(m), forwards=False),
    "dense_layers": Op(lambda m, d: vizcore.dense_layers(m), forwards=False),
    "knockable_layers": Op(lambda m, d: vizcore.knockable_layers(m), forwards=False),
    "num_classes": Op(lambda m, d: vizcore.num_classes(m), forwards=False),
    # zoo, metrics
    "save_model": Op(None, forwards=False),  # filled in by the test (needs a temporary folder)
    "predict_logits": Op(lambda m, d: vizcore.predict_logits(m, _x(d))),
    "evaluate_model": Op(lambda m, d: vizcore.evaluate_model(m, _x(d), d.test_y[:8], d.class_names, predictions=True)),
    # explain
    "prediction_gradients": Op(lambda m, d: vizcore.prediction_gradients(m, _x(d), 1)),
    "input_gradient": Op(lambda m, d: vizcore.input_gradient(m, _x(d), 1)),
    "class_average_pg": Op(lambda m, d, **kw: vizcore.class_average_pg(m, _x(d), 1, batch_size=3, **kw), cancels=True),
    "class_filter_scores": Op(lambda m, d, **kw: vizcore.class_filter_scores(m, _x(d), 1, batch_size=3, **kw),
                              cancels=True),
    "characteristic_feature": Op(lambda m, d: vizcore.characteristic_feature(m, _x(d)[0], 1)),
    "looks_like": Op(lambda m, d: vizcore.looks_like(m, _x(d)[0], 1, 2)),
    "network_flow": Op(lambda m, d: vizcore.network_flow(m, _x(d)[0], 1, mask={"conv1": [0]})),
    "perturb": Op(lambda m, d: vizcore.perturb(m, _x(d), 1, 1.0, steps=2)),
    "perturbation_sweep": Op(lambda m, d, **kw: vizcore.perturbation_sweep(
        m, d.test_x[:60], d.test_y[:60], PerturbConfig(eps=(0.0, 1.0), per_class=1), **kw), cancels=True),
    "KnockoutEvaluator": Op(lambda m, d: _ev(m, d).evaluate({"conv1": [0], "fc1": [3]})),
    "masked_logits": Op(lambda m, d: vizcore.masked_logits(m, _x(d), {"conv2": [1, 2]})),
    "knockout_curve": Op(lambda m, d, **kw: vizcore.knockout_curve(_ev(m, d), [("conv1", 0), ("conv2", 3)], 1, 2,
                                                                   **kw), cancels=True),
    "compare_rankings": Op(lambda m, d, **kw: vizcore.compare_rankings(
        m, _ev(m, d), _x(d), d.test_y[:8], StudyConfig(target=1, max_k=2, random_seeds=(0,)), **kw), cancels=True),
    "class_visualizations": Op(lambda m, d, **kw: vizcore.class_visualizations(m, range(3), 2, VIS, input_shape=SHAPE,
                                                                               **kw), cancels=True),
    "class_visualizations[bfloat16]": Op(lambda m, d, **kw: vizcore.class_visualizations(
        m, range(3), 2, dataclasses.replace(VIS, precision="bfloat16"), input_shape=SHAPE, **kw), cancels=True),
    "filter_visualization": Op(lambda m, d, **kw: vizcore.filter_visualization(m, "conv1", [0, 1], VIS,
                                                                               input_shape=SHAPE, **kw), cancels=True),
    "weight_images": Op(lambda m, d: vizcore.weight_images(m, d, at="data", max_samples=10)),
    "render": Op(lambda m, d, **kw: vizcore.render(m, obj.class_logit(torch.tensor([0, 1])) - 0.1 * obj.l2(),
                                                   torch.zeros(2, *SHAPE), VisualizeConfig(steps=3, threshold=None),
                                                   param=partial(obj.pixel_param, mode="sigmoid"), **kw),
                 cancels=True),
    # distill
    "synthesize": Op(_synth, cancels=True),
    "run_distillation": Op(_distill, cancels=True),
    "compress_model": Op(lambda m, d: vizcore.compress_model(m, ratio=2.0), forwards=False),
}
# Public functions that take a model but are not read-only operations on a shared model, and why.
NOT_READ_ONLY = {
    "fit": "trains the model it is given, in place (callers pass their own fresh model)",
}


def test_registry_covers_the_public_api():
    takes_model = set()
    for name in vizcore.__all__:
        fn = getattr(vizcore, name)
        if callable(fn) and not isinstance(fn, type(vizcore)) and not dataclasses.is_dataclass(fn):  # not configs
            try:
                params = list(inspect.signature(fn).parameters)
            except (TypeError, ValueError):
                continue
            if params and params[0] in ("model", "teacher"):
                takes_model.add(name)
    registered = {name.split("[")[0] for name in OPS}  # "fn[variant]" runs fn another way
    missing = takes_model - registered - set(NOT_READ_ONLY)
    assert not missing, f"register these public operations in OPS: {sorted(missing)}"
    assert registered <= set(vizcore.__all__)


CASES = [(name, mode) for name, op in OPS.items()
         for mode in ("normal", *(["error"] if op.forwards else []), *(["cancel"] if op.cancels else []))]


@pytest.mark.parametrize(("name", "mode"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_operation_leaves_the_model_untouched(digits, digits_cnn, tmp_path, name, mode):
    model = digits_cnn
    op = OPS[name]
    run = partial(_save, tmp=tmp_path) if name == "save_model" else op.run
    before = weights_snapshot(model)
    model.train()
    model.fc1.weight.requires_grad_(True)  # a mixed set of flags that must come back as it was
    flags = [p.requires_grad for p in model.parameters()]
    try:
        if mode == "normal":
            run(model, digits, **({"cancelled": lambda: False} if op.cancels else {}))
        elif mode == "cancel":
            with pytest.raises(Cancelled):
                run(model, digits, cancelled=lambda: True)
        else:
            def boom(*_):
                raise RuntimeError("injected")

            handle = model.fc2.register_forward_hook(boom)
            try:
                with pytest.raises(RuntimeError, match="injected"):
                    run(model, digits)
            finally:
                handle.remove()
        assert model.training
        assert [p.requires_grad for p in model.parameters()] == flags
        assert_untouched(model, before)
    finally:
        model.eval()
        model.requires_grad_(False)


def test_guarded_restores_each_module_mode(digits_cnn):
    """A student training with its dropout off (the engine's default) is still so after an evaluation under guard."""
    import copy

    student = copy.deepcopy(digits_cnn).train()  # a copy: the fixture is shared with every other test
    drops = [m for m in student.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops, "the digits cnn has dropout layers"
    for m in drops:
        m.eval()
    with vizcore.guarded(student):
        assert not any(m.training for m in student.modules())
    assert student.training and not any(m.training for m in drops)
    assert all(m.training for m in student.modules() if not isinstance(m, torch.nn.Dropout))


def test_a_trainable_copy_trains_while_the_frozen_original_stays_frozen():
    """hooks.trainable_copy: a float32 CPU copy whose every parameter takes gradients; the original (a frozen
    compressed model) keeps its weights and its requires_grad flags."""
    from vizcore.core.hooks import trainable_copy

    original = torch.nn.Sequential(torch.nn.Linear(3, 2)).double().requires_grad_(False)
    twin = trainable_copy(original)
    assert all(p.requires_grad and p.dtype == torch.float32 for p in twin.parameters())
    assert not any(p.requires_grad for p in original.parameters())
    with torch.no_grad():
        twin[0].weight.add_(1.0)
    assert not torch.equal(twin[0].weight.double(), original[0].weight)
