"""Knockouts: analytic checks, cached tail == full masked forward, thread safety, curves, rankings, CLI."""

from __future__ import annotations

import copy
import json
import threading

import numpy as np
import pytest
import torch
from conftest import assert_untouched, weights_snapshot
from torch import nn

from vizcore.data import class_index
from vizcore.core.hooks import hook_count
from vizcore.explain.importance import (
    StudyConfig,
    compare_rankings,
    oracle_scores,
    spearman,
    taylor_scores,
    weight_l1_scores,
)
from vizcore.explain.knockout import (KnockoutEvaluator, eval_subset, knockout_curve, masked_logits, normalize_mask,
                                      parse_filters, random_curve)
from vizcore.core.layers import knockable_layers
from vizcore.models import build_model


@pytest.fixture(scope="module")
def evalset(digits):
    return eval_subset(digits.test_x, digits.test_y, 200)


def _random_masks(widths: dict[str, int], n: int, seed: int = 0) -> list[dict[str, list[int]]]:
    g = torch.Generator().manual_seed(seed)
    masks = []
    for _ in range(n):
        mask = {}
        for layer, w in widths.items():
            if torch.rand(1, generator=g) < 0.6:
                k = int(torch.randint(1, w + 1, (1,), generator=g))
                mask[layer] = torch.randperm(w, generator=g)[:k].tolist()
        masks.append(mask)
    return masks


def test_zero_outgoing_weights_change_nothing(digits_cnn, evalset):
    x, y = evalset
    model = copy.deepcopy(digits_cnn)
    with torch.no_grad():
        model.conv2.weight[:, 3] = 0  # conv1 filter 3 feeds nothing
        model.fc2.weight[:, 7] = 0  # fc1 unit 7 feeds nothing
    ev = KnockoutEvaluator(model, x, y)
    base = ev.evaluate({})
    for mask in ({"conv1": [3]}, {"fc1": [7]}, {"conv1": [3], "fc1": [7]}):
        r = ev.evaluate(mask)
        assert torch.equal(r.predictions, base.predictions)
        assert torch.equal(masked_logits(model, x, mask).argmax(1), base.predictions)
    assert not torch.equal(ev.evaluate({"conv1": [0, 1, 2, 4, 5]}).predictions, base.predictions)


@pytest.mark.parametrize("layer", ["conv1", "conv2", "fc1"])
def test_knocking_a_whole_layer_makes_the_output_constant(digits_cnn, evalset, layer):
    x, y = evalset
    ev = KnockoutEvaluator(digits_cnn, x, y)
    logits = ev.logits({layer: range(ev.widths[layer])})
    assert torch.allclose(logits, logits[:1].expand_as(logits), atol=1e-5)
    assert len(set(ev.evaluate({layer: range(ev.widths[layer])}).predictions.tolist())) == 1


@pytest.mark.parametrize("arch", ["cnn_s", "mlp", "lenet_faces", "cnn_l"])
def test_cached_tail_equals_full_masked_forward(arch):
    """Sigmoid (mlp: a knocked unit is 0.5 after it), tanh, ELU + average pooling, three conv layers."""
    shape = (1, 20, 20) if arch == "lenet_faces" else (1, 8, 8)
    model = build_model(arch, shape, 5, seed=1)
    x, y = torch.rand(150, *shape), torch.randint(0, 5, (150,))
    ev = KnockoutEvaluator(model, x, y, tail_batch=64)
    assert ev.fast
    for mask in _random_masks(ev.widths, 12, seed=2):
        fast, full = ev.logits(mask), masked_logits(model, x, mask)
        assert torch.equal(fast.argmax(1), full.argmax(1))
        assert torch.allclose(fast, full, atol=1e-5)


def test_the_cached_tail_runs_channels_last_without_touching_the_model():
    """The tail's pooling sees channels-last batches (about 10x faster on CPU) even after a 1-channel input, whose
    layout cannot say; the shared model's weights keep their layout and the logits equal the full forward's."""
    model = build_model("cnn", (1, 12, 12), 4, seed=0)
    x, y = torch.rand(70, 1, 12, 12), torch.randint(0, 4, (70,))
    ev = KnockoutEvaluator(model, x, y, tail_batch=32)
    seen = []
    model.pool2.register_forward_pre_hook(lambda m, a: seen.append(a[0].is_contiguous(memory_format=torch.channels_last)))
    fast = ev.logits({"conv1": [0, 2]})
    assert seen[-3:] == [True] * 3  # three tail batches
    assert all(p.is_contiguous() for p in model.parameters())
    assert torch.allclose(fast, masked_logits(model, x, {"conv1": [0, 2]}), atol=1e-5)


def test_fallback_for_models_that_are_not_flat(digits_cnn, evalset):
    x, y = evalset
    wrapped = nn.Sequential(copy.deepcopy(digits_cnn))  # nested: layer names "0.conv1"...
    ev = KnockoutEvaluator(wrapped, x, y)
    assert not ev.fast and set(ev.widths) == {"0.conv1", "0.conv2", "0.fc1"}
    ref = KnockoutEvaluator(digits_cnn, x, y)
    r = ev.evaluate({"0.conv2": [1, 5], "0.fc1": [3]})
    assert torch.equal(r.predictions, ref.evaluate({"conv2": [1, 5], "fc1": [3]}).predictions)
    assert hook_count(wrapped) == 0


def test_result_metrics_from_one_pass(digits_cnn, evalset):
    x, y = evalset
    ev = KnockoutEvaluator(digits_cnn, x, y)
    r = ev.evaluate({"conv2": [0, 1, 2, 3]})
    pred = masked_logits(digits_cnn, x, {"conv2": [0, 1, 2, 3]}).argmax(1)
    assert r.accuracy == pytest.approx(float((pred == y).float().mean()))
    assert r.confusion.sum() == len(y) and np.trace(r.confusion) == int((pred == y).sum())
    for c in range(10):
        sel = y == c
        assert r.class_accuracy[c] == pytest.approx(float((pred[sel] == c).float().mean()))


def test_concurrent_masks_equal_serial_results(digits_cnn, evalset):
    x, y = evalset
    before = weights_snapshot(digits_cnn)
    ev = KnockoutEvaluator(digits_cnn, x, y)
    masks = _random_masks(ev.widths, 8, seed=3)
    serial = [masked_logits(digits_cnn, x, m) for m in masks]
    results: dict[int, torch.Tensor] = {}
    errors = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                # half the threads use the shared evaluator, half the hook-based path on the same model
                results[i] = ev.logits(masks[i]) if i % 2 else masked_logits(digits_cnn, x, masks[i])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(masks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, ref in enumerate(serial):
        assert torch.equal(results[i].argmax(1), ref.argmax(1))
        assert torch.allclose(results[i], ref, atol=1e-5)
    assert_untouched(digits_cnn, before)


def test_nothing_left_behind_even_on_errors(digits_cnn, digits, evalset):
    x, y = evalset
    before = weights_snapshot(digits_cnn)
    ev = KnockoutEvaluator(digits_cnn, x, y)
    with pytest.raises(ValueError, match="choose one of conv1"):
        ev.evaluate({"act1": [0]})
    with pytest.raises(ValueError, match="filters 0..15"):
        ev.evaluate({"conv1": [16]})
    with pytest.raises(ValueError, match="filters 0..15"):
        masked_logits(digits_cnn, x, {"conv1": [99]})
    rx, ry = digits.train_x[digits.train_y == 4][:40], digits.train_y[digits.train_y == 4][:40]
    taylor_scores(digits_cnn, rx, ry, ["conv1", "fc1"])
    compare_rankings(digits_cnn, ev, rx, ry, StudyConfig(target=4, max_k=3, random_seeds=(0,)))
    assert_untouched(digits_cnn, before)
    assert digits_cnn.training is False


@pytest.mark.parametrize("nested", [False, True])
def test_an_evaluation_asked_to_stop_stops_between_batches_and_keeps_nothing(digits_cnn, evalset, nested):
    """``cancelled`` is asked before each batch, on the cached tail and on the full forward pass of a model that is
    not flat: an evaluation stopped part way raises Cancelled, remembers nothing, leaves the evaluator free and no
    hook behind; the same mask asked again is computed whole."""
    from vizcore.core.progress import Cancelled

    x, y = evalset
    model = nn.Sequential(copy.deepcopy(digits_cnn)) if nested else digits_cnn
    quarter = max(1, len(x) // 4)
    ev = KnockoutEvaluator(model, x, y, batch_size=quarter, tail_batch=quarter)
    assert ev.fast is not nested
    mask = {("0.conv1" if nested else "conv1"): [3]}
    asked, before = [], dict(ev._results)
    with pytest.raises(Cancelled):
        ev.evaluate(mask, cancelled=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3  # two batches done, stopped before the third
    assert not ev._lock.locked() and ev._results == before and hook_count(model) == 0
    r = ev.evaluate(mask, cancelled=lambda: False)
    assert torch.equal(r.predictions, KnockoutEvaluator(digits_cnn, x, y).evaluate({"conv1": [3]}).predictions)


def test_cache_follows_weight_changes(digits_cnn, evalset):
    x, y = evalset
    model = copy.deepcopy(digits_cnn)
    ev = KnockoutEvaluator(model, x, y)
    ev.evaluate({"conv1": [0]})
    with torch.no_grad():
        model.conv2.weight.mul_(-1)
    assert torch.allclose(ev.logits({"conv1": [0]}), masked_logits(model, x, {"conv1": [0]}), atol=1e-5)
    assert torch.allclose(ev.base_logits(), masked_logits(model, x, {}), atol=1e-5)


def test_knockout_curves(digits_cnn, evalset):
    x, y = evalset
    ev = KnockoutEvaluator(digits_cnn, x, y)
    order = [("conv2", i) for i in range(32)]
    curve = knockout_curve(ev, order, target=3, max_k=32)
    base = ev.evaluate({})
    assert curve.k == list(range(33))
    assert curve.class_error[0] == pytest.approx(base.class_error(3))
    assert curve.overall_error[0] == pytest.approx(1 - base.accuracy)
    assert curve.overall_error[5] == pytest.approx(1 - ev.evaluate({"conv2": range(5)}).accuracy)
    assert curve.overall_error[-1] >= 0.8  # the whole layer gone: one constant prediction
    rnd = random_curve(ev, order, 3, 32, seeds=(0, 1, 2))
    assert rnd.overall_error[-1] == pytest.approx(curve.overall_error[-1])  # same full set in any order
    assert rnd.overall_error_std[0] == 0 and rnd.overall_error_std[-1] == pytest.approx(0, abs=1e-9)
    assert max(rnd.overall_error_std) > 0
    flat = type(curve)("flat", [0, 1, 2, 3], [0.5] * 4, [0.25] * 4)
    assert flat.class_auc == pytest.approx(0.5) and flat.overall_auc == pytest.approx(0.25)


def test_rankings(digits_cnn, digits, evalset):
    x, y = evalset
    ev = KnockoutEvaluator(digits_cnn, x, y)
    l1 = weight_l1_scores(digits_cnn, ["conv1"])
    assert torch.allclose(l1["conv1"][2], digits_cnn.conv1.weight[2].abs().sum())
    oracle = oracle_scores(ev, 5, ["conv2"])
    base = ev.evaluate({}).class_accuracy[5]
    assert oracle["conv2"][7].item() == pytest.approx(base - ev.evaluate({"conv2": [7]}).class_accuracy[5])
    assert spearman(oracle, oracle) == pytest.approx(1.0)
    assert spearman(l1, {"conv1": -l1["conv1"]}) == pytest.approx(-1.0)


def test_taylor_score_of_a_linear_layer_is_analytic():
    """One hidden linear unit h = w.x feeding logits: |mean_n h * dL/dh| matches the hand computation."""
    model = build_model("mlp3", (1, 2, 2), 3, seed=0)
    x, y = torch.rand(7, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    got = taylor_scores(model, x, y, ["fc1"])["fc1"]
    h = model.fc1(x.flatten(1)).detach().requires_grad_(True)
    loss = nn.functional.cross_entropy(model[2:](h), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, h)
    assert torch.allclose(got, (h * g).abs().mean(0).detach(), atol=1e-6)


def test_parsing_and_validation(digits_cnn):
    assert parse_filters("conv1:3, conv2:0,conv2:7") == {"conv1": [3], "conv2": [0, 7]}
    with pytest.raises(ValueError, match="LAYER:INDEX"):
        parse_filters("conv1-3")
    assert normalize_mask(digits_cnn, {"fc1": [5, 1, 5], "conv1": [2], "conv2": []}) == {"conv1": (2,), "fc1": (1, 5)}
    assert list(knockable_layers(digits_cnn)) == ["conv1", "conv2", "fc1"]
    assert class_index(["T-shirt", "Sneaker"], "sneaker") == 1 and class_index(["a", "b"], "1") == 1
    with pytest.raises(ValueError, match="choose a name or an index"):
        class_index(["a", "b"], "c")


def test_cli_mask_matches_evaluator(capsys, digits):
    from vizcore.cli import main
    from vizcore.zoo import load_model

    assert main(["knockout", "--model", "zoo:digits-cnn", "--dataset", "digits", "--filters", "conv2:1,conv2:4,conv1:0",
                 "--n-eval", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    x, y = eval_subset(digits.test_x, digits.test_y, 300)
    r = KnockoutEvaluator(load_model("zoo:digits-cnn"), x, y).evaluate({"conv1": [0], "conv2": [1, 4]})
    assert out["accuracy"] == pytest.approx(r.accuracy) and out["filters"] == {"conv1": [0], "conv2": [1, 4]}
    assert main(["knockout", "--model", "zoo:digits-cnn", "--dataset", "digits", "--class", "3", "--order", "lowest",
                 "--max-k", "4", "--n-eval", "300", "--json"]) == 0
    curve = json.loads(capsys.readouterr().out)
    assert curve["k"] == [0, 1, 2, 3, 4] and curve["class"] == "3"
    assert curve["overall_error"][0] == pytest.approx(1 - KnockoutEvaluator(load_model("zoo:digits-cnn"), x, y).evaluate({}).accuracy)
    assert main(["knockout", "--model", "zoo:digits-cnn", "--dataset", "digits", "--filters", "conv9:1"]) == 2
    assert "choose one of" in capsys.readouterr().err
