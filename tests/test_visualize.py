"""Class / filter visualizations, weight images, class averages: analytic answers on tiny models,
invariants of the stopping rule, reproducibility, round trips, and models left untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vizcore.explain.objectives import AscentState, class_logit, l2, total_variation
from vizcore.explain.visualize import (VisualizeConfig, Visualizations, class_averages, class_visualizations,
                               cosine_similarity, diversity, filter_visualization, input_gradients, similarities,
                               summary, weight_images)

SHAPE = (1, 8, 8)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """8x8 images in batches of tens: one thread is faster than two fighting over shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_linear_ascent_direction_from_blank_is_the_weight_row(digits_linear):
    """Seed 003 section 9: from the blank image the ascent moves along the class's weight row."""
    w = digits_linear.fc1.weight.detach().reshape(10, *SHAPE)
    grads = input_gradients(digits_linear, torch.zeros(1, *SHAPE))
    assert torch.allclose(grads, w, atol=1e-6)
    # one small plain-gradient step through the sigmoid parameterization, which keeps every pixel free to move
    cfg = VisualizeConfig(start="blank", optimizer="sgd", pixel="sigmoid", lr=10.0, steps=1, threshold=None)
    vis = class_visualizations(digits_linear, range(10), 1, cfg, input_shape=SHAPE)
    moved = vis.images - torch.sigmoid(torch.logit(torch.tensor(1e-3)))
    cos = cosine_similarity(moved, w)
    assert cos.min() > 0.999, cos
    # from mid-grey a small clamped plain-gradient step is exactly the weight row times the learning rate
    grey = VisualizeConfig(start="grey", optimizer="sgd", lr=0.01, steps=1, threshold=None)
    vis = class_visualizations(digits_linear, range(10), 1, grey, input_shape=SHAPE)
    assert torch.allclose(vis.images - 0.5, 0.01 * w, atol=1e-6)


def test_linear_weight_image_is_the_row_exactly(digits_linear, digits):
    wi = weight_images(digits_linear, digits)
    assert wi.kind == "weights"
    assert torch.equal(wi.images.flatten(1), digits_linear.fc1.weight.detach())


def test_effective_weights_of_a_deep_model_are_labelled_gradients(digits_cnn, digits):
    blank = weight_images(digits_cnn, digits, at="blank")
    assert blank.kind == "gradient at blank" and "effective" in blank.label
    data = weight_images(digits_cnn, digits, at="data", max_samples=40)
    assert data.kind == "mean gradient over data"
    # the average gradient over 40 images is the mean of the per-image gradients
    manual = torch.stack([input_gradients(digits_cnn, digits.test_x[i:i + 1]) for i in range(40)]).mean(0)
    assert torch.allclose(data.images, manual, atol=1e-5)
    with pytest.raises(ValueError, match="blank"):
        weight_images(digits_cnn, digits, at="middle")


def test_reached_samples_satisfy_the_threshold_rule(digits_cnn):
    cfg = VisualizeConfig(start="noise", threshold_range=(0.9, 0.99), attract_repel=True, steps=150, seed=3)
    vis = class_visualizations(digits_cnn, range(10), 3, cfg, input_shape=SHAPE)
    assert vis.images.shape == (30, *SHAPE) and vis.images.min() >= 0 and vis.images.max() <= 1
    assert ((vis.thresholds >= 0.9) & (vis.thresholds <= 0.99)).all() and vis.thresholds.unique().numel() > 1
    with torch.no_grad():
        logits = digits_cnn(vis.images)
    assert torch.allclose(logits, vis.logits, atol=1e-5)
    assert torch.allclose(vis.probs, logits.softmax(1), atol=1e-6)
    target_p = vis.probs.gather(1, vis.labels[:, None])[:, 0]
    assert vis.reached.sum() >= 25
    r = vis.reached
    assert (target_p[r] > vis.thresholds[r]).all() and (vis.probs[r].argmax(1) == vis.labels[r]).all()
    assert (vis.steps[r] < cfg.steps).all()
    # samples stop as soon as they pass: one step fewer would not have done for most of them
    assert vis.steps.float().mean() < cfg.steps / 2


def test_bfloat16_ascent_decides_and_scores_in_float32(digits_cnn, digits_linear):
    """The fast path does the ascent's arithmetic in bf16, but a sample only counts as reaching T when the
    float32 teacher agrees, and the returned logits are the float32 teacher's."""
    cfg = VisualizeConfig(start="noise", threshold_range=(0.9, 0.99), attract_repel=True, steps=150, seed=3,
                          precision="bfloat16")
    vis = class_visualizations(digits_cnn, range(10), 3, cfg, input_shape=SHAPE)
    with torch.no_grad():
        logits = digits_cnn(vis.images)
    assert torch.allclose(logits, vis.logits, atol=1e-5) and vis.reached.sum() >= 24
    p = logits.softmax(1).gather(1, vis.labels[:, None])[:, 0]
    r = vis.reached
    assert (p[r] > vis.thresholds[r]).all() and (logits[r].argmax(1) == vis.labels[r]).all()
    assert (vis.steps[r] < cfg.steps).all()
    # a stop taken on a bf16 reading alone would leave samples stopped early but not reaching T
    assert (vis.steps[~r] == cfg.steps).all()
    # bf16 keeps the ascent direction: from mid-grey one step is the weight row to about three digits
    w = digits_linear.fc1.weight.detach().reshape(10, *SHAPE)
    grey = VisualizeConfig(start="grey", optimizer="sgd", lr=0.01, steps=1, threshold=None, precision="bfloat16")
    moved = class_visualizations(digits_linear, range(10), 1, grey, input_shape=SHAPE).images - 0.5
    assert cosine_similarity(moved, w).min() > 0.999


def test_a_bfloat16_reading_alone_never_stops_a_sample():
    """A teacher whose bf16 weights round its probability above T while float32 stays below: the sample
    must keep running (the stop is confirmed in float32) and be reported as not reaching T."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[4.02], [0.0]]))  # bf16 rounds 4.02 to 4.03125
    p32 = torch.sigmoid(torch.tensor(0.5 * 4.02))
    p16 = torch.sigmoid(torch.tensor(0.5 * 4.03125))
    T = float((p32 + p16) / 2)
    cfg = VisualizeConfig(start="grey", optimizer="sgd", lr=1e-6, steps=1, threshold=T, precision="bfloat16")
    vis = class_visualizations(model, [0], 1, cfg, input_shape=(1, 1, 1))
    assert not vis.reached[0] and int(vis.steps[0]) == 1
    assert float(vis.probs[0, 0]) < T


def test_samples_that_never_reach_t_are_reported_not_hidden(digits_cnn):
    cfg = VisualizeConfig(start="blank", threshold=0.999, steps=2, lr=0.001)
    vis = class_visualizations(digits_cnn, [0, 1, 2], 4, cfg, input_shape=SHAPE)
    assert len(vis.labels) == 12 and vis.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    missed = ~vis.reached
    assert missed.any()
    assert (vis.steps[missed] == 2).all()
    rows = summary(vis, [str(i) for i in range(10)])
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[0]["reached_fraction"] == pytest.approx(float(vis.reached[:4].float().mean()))


def test_batched_equals_one_at_a_time(digits_cnn):
    """Samples are optimized independently inside the batch, stopping included."""
    cfg = VisualizeConfig(start="blank", threshold=0.95, steps=60)
    batch = class_visualizations(digits_cnn, range(10), 1, cfg, input_shape=SHAPE)
    for k in (0, 7):
        one = class_visualizations(digits_cnn, [k], 1, cfg, input_shape=SHAPE)
        assert torch.allclose(one.images[0], batch.images[k], atol=1e-4)
        assert int(one.steps[0]) == int(batch.steps[k])


def test_seeded_runs_are_reproducible_and_seeds_differ(digits_cnn):
    cfg = VisualizeConfig(start="noise", attract_repel=True, threshold_range=(0.9, 0.99), steps=40, seed=7)
    a = class_visualizations(digits_cnn, [1, 2], 3, cfg, input_shape=SHAPE)
    b = class_visualizations(digits_cnn, [1, 2], 3, cfg, input_shape=SHAPE)
    c = class_visualizations(digits_cnn, [1, 2], 3, VisualizeConfig(**{**cfg.to_dict(), "seed": 8,
                                                                     "threshold_range": (0.9, 0.99)}),
                             input_shape=SHAPE)
    assert torch.equal(a.images, b.images) and torch.equal(a.thresholds, b.thresholds)
    assert not torch.allclose(a.images, c.images)


def test_mean_start_and_diversity(digits_cnn, digits):
    means = class_averages(digits.train_x, digits.train_y, 10)
    cfg = VisualizeConfig(start="mean", threshold=None, steps=0)
    vis = class_visualizations(digits_cnn, range(10), 2, cfg, input_shape=SHAPE, class_means=means)
    assert torch.equal(vis.images[::2], means)  # zero steps: the start itself
    assert diversity(vis.images, vis.labels, range(10)) == [0.0] * 10  # identical starts collapse
    noisy = class_visualizations(digits_cnn, range(10), 3, VisualizeConfig(start="noise", steps=0, threshold=None),
                                 input_shape=SHAPE)
    d = diversity(noisy.images, noisy.labels, range(10))
    # two independent uniform images differ by sqrt(1/6) RMS per pixel on average
    assert all(0.3 < v < 0.5 for v in d)
    assert diversity(noisy.images[:1], noisy.labels[:1], [0]) == [None]
    with pytest.raises(ValueError, match="class_means"):
        class_visualizations(digits_cnn, [0], 1, VisualizeConfig(start="mean"), input_shape=SHAPE)


def test_class_averages_and_similarities():
    x = torch.tensor([[[[1.0, 0.0]]], [[[3.0, 2.0]]], [[[5.0, 5.0]]]])
    y = torch.tensor([0, 0, 2])
    avg = class_averages(x, y, 3)
    assert torch.equal(avg, torch.tensor([[[[2.0, 1.0]]], [[[0.0, 0.0]]], [[[5.0, 5.0]]]]))
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [-1.0, -1.0]])
    assert torch.allclose(cosine_similarity(a, b), torch.tensor([1.0, -1.0]))
    sims = similarities(a, b, a)
    assert sims["visualization ~ average"] == pytest.approx([1.0, 1.0])
    assert sims["visualization ~ weights"] == pytest.approx([1.0, -1.0])


def test_objectives_compose():
    images = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    logits = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    state = AscentState(images, logits, torch.tensor([0, 1]))
    obj = class_logit(torch.tensor([1, 0])) - 0.5 * l2() + total_variation() * 2
    # sample 0: logit 3 - 0.5 * 3 + 2 * (tv 2); sample 1: logit 2 - 0.5 * 1 + 0
    assert torch.allclose(obj(state), torch.tensor([3 - 1.5 + 4.0, 2 - 0.5]))
    sub = AscentState(images[1:], logits[1:], torch.tensor([1]))  # per-sample targets follow the row index
    assert torch.allclose(class_logit(torch.tensor([1, 0]))(sub), torch.tensor([2.0]))


def test_filter_visualization_raises_the_channel(digits_cnn):
    cfg0 = VisualizeConfig(start="noise", steps=0, threshold=None, seed=1)
    cfg = VisualizeConfig(start="noise", steps=60, threshold=None, seed=1)
    for layer, chans in (("conv2", [0, 3, 5]), ("fc1", [1, 2])):
        before = filter_visualization(digits_cnn, layer, chans, cfg0, input_shape=SHAPE)
        after = filter_visualization(digits_cnn, layer, chans, cfg, input_shape=SHAPE)
        assert after.channels.tolist() == chans
        assert (after.activation > before.activation + 0.1).all(), (before.activation, after.activation)
    with pytest.raises(ValueError, match="channels"):
        filter_visualization(digits_cnn, "conv1", [99], cfg, input_shape=SHAPE)
    with pytest.raises(ValueError, match="unknown layer"):
        filter_visualization(digits_cnn, "conv9", [0], cfg, input_shape=SHAPE)


def test_npz_round_trip(digits_linear, tmp_path):
    cfg = VisualizeConfig(threshold_range=(0.9, 0.95), l2=0.01, steps=20)
    vis = class_visualizations(digits_linear, [3, 4], 2, cfg, input_shape=SHAPE)
    path = vis.to_npz(tmp_path / "v.npz")
    back = Visualizations.from_npz(path)
    for f in ("images", "labels", "logits", "probs", "reached", "thresholds", "steps"):
        assert torch.equal(getattr(back, f), getattr(vis, f)), f
    assert back.config == cfg
    with np.load(path) as z:
        assert json.loads(str(z["config"]))["threshold_range"] == [0.9, 0.95]


@pytest.mark.parametrize("bad", [dict(threshold=1.5), dict(threshold_range=(0.99, 0.9)), dict(start="gray"),
                                 dict(objective="prob"), dict(blur=2.0), dict(pixel="tanh"), dict(precision="half")])
def test_bad_config_says_what_is_wrong(bad):
    with pytest.raises(ValueError):
        VisualizeConfig(**bad)


def test_bad_classes_get_a_clear_message(digits_linear):
    with pytest.raises(ValueError, match="0..9"):
        class_visualizations(digits_linear, [10], 1, VisualizeConfig(), input_shape=SHAPE)
    with pytest.raises(ValueError, match="at least one"):
        class_visualizations(digits_linear, [], 1, VisualizeConfig(), input_shape=SHAPE)


def test_cli_writes_the_npz_and_a_summary(digits_linear, digits, tmp_path, capsys):
    from vizcore.cli import main
    from vizcore.zoo import ModelCard, save_model

    save_model(digits_linear, ModelCard(name="tiny-linear", dataset="digits", arch="linear", input_shape=list(SHAPE),
                                        class_names=list(digits.class_names)))
    out = tmp_path / "v.npz"
    rc = main(["visualize", "--model", "user:tiny-linear", "--per-class", "2", "--threshold-range", "0.9", "0.95",
               "--start", "noise", "--precision", "bfloat16", "--out", str(out), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    vis = Visualizations.from_npz(out)
    assert report["n"] == len(vis.labels) == 20
    assert vis.config.threshold_range == (0.9, 0.95) and vis.config.threshold is None
    assert vis.config.precision == "bfloat16"
    rows = report["per_class"]
    assert [r["index"] for r in rows] == list(range(10))
    assert rows[3]["mean_target_prob"] == pytest.approx(float(vis.probs[6:8, 3].mean()), abs=1e-6)
    assert rc == 0 and main(["visualize", "--model", "user:tiny-linear", "--start", "mean", "--dataset", "yale-faces",
                             "--out", str(out)]) == 2



def test_cli_preset_is_the_pages_default_and_explicit_options_win(digits_linear, digits, tmp_path, capsys):
    """``visualize --preset``: the page's presets by the same names, the page's default (recognizable, 10 distinct
    samples per class) when none is given, the seeds' method one flag away; options given explicitly override."""
    from dataclasses import replace

    from vizcore.cli import build_parser, main
    from vizcore.cli.visualize_cmd import config_from_args
    from vizcore.explain.visualize import DEFAULT_PRESET, PRESET_PER_CLASS, PRESETS, preset
    from vizcore.zoo import ModelCard, save_model

    parse = build_parser().parse_args
    base = ["visualize", "--model", "user:tiny-linear", "--out", str(tmp_path / "v.npz")]
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["visualize"]
    assert next(a for a in sub._actions if a.dest == "preset").choices == PRESETS and DEFAULT_PRESET == "recognizable"
    assert config_from_args(parse(base), SHAPE) == preset("recognizable", SHAPE)
    assert config_from_args(parse(base + ["--preset", "seed"]), SHAPE) == VisualizeConfig()
    assert config_from_args(parse(base + ["--steps", "7", "--threshold", "0.9"]), SHAPE) == replace(
        preset("recognizable", SHAPE), steps=7, threshold=0.9)
    assert config_from_args(parse(base + ["--preset", "seed", "--no-threshold"]), SHAPE).threshold is None

    save_model(digits_linear, ModelCard(name="tiny-linear", dataset="digits", arch="linear", input_shape=list(SHAPE),
                                        class_names=list(digits.class_names)))
    assert main(base + ["--classes", "0", "1", "--steps", "3", "--json"]) == 0
    report, vis = json.loads(capsys.readouterr().out), Visualizations.from_npz(tmp_path / "v.npz")
    assert report["preset"] == "recognizable" and report["n"] == 2 * PRESET_PER_CLASS["recognizable"] == 20
    assert vis.config == replace(preset("recognizable", SHAPE), steps=3)
    assert len({tuple(x.flatten().tolist()) for x in vis.images[vis.labels == 0]}) == 10  # distinct samples
    assert main(base + ["--preset", "seed", "--classes", "4", "--steps", "3", "--json"]) == 0
    report, vis = json.loads(capsys.readouterr().out), Visualizations.from_npz(tmp_path / "v.npz")
    assert report["preset"] == "seed" and report["n"] == 1 and vis.config == replace(VisualizeConfig(), steps=3)
    assert main(base + ["--pixel", "clamp"]) == 2  # the preset's fft image needs the sigmoid: a one-line error
    assert "error: the fft parameterization" in capsys.readouterr().err

def test_recognizable_preset_gives_distinct_samples_in_a_visible_range(digits_cnn, digits):
    """The page's default: every sample of a class differs from the others, pixels span a visible range,
    and the teacher puts (nearly) every picture in its class."""
    from vizcore.explain.visualize import preset

    cfg = preset("recognizable", SHAPE)
    assert cfg.param == "fft" and cfg.jitter == 1 and cfg.threshold is None and cfg.start == "average"
    means = class_averages(digits.train_x, digits.train_y, 10)
    vis = class_visualizations(digits_cnn, range(10), 4, cfg, input_shape=SHAPE, class_means=means)
    for c in range(10):
        z = vis.images[vis.labels == c].flatten(1)
        d = torch.cdist(z, z) / z.shape[1] ** 0.5 + torch.eye(len(z))  # RMS per pixel
        assert d.min() > 0.02, f"class {c}: two samples are (nearly) the same picture"
    assert vis.images.min() >= 0 and vis.images.max() <= 1
    assert (vis.images.amax((1, 2, 3)) - vis.images.amin((1, 2, 3))).min() > 0.5  # not a faint smudge
    assert (vis.probs.argmax(1) == vis.labels).float().mean() >= 0.9
    # the seed preset is today's plain ascent: identical samples per class (the contrast the page shows)
    seed = class_visualizations(digits_cnn, [3], 3, preset("seed", SHAPE), input_shape=SHAPE)
    assert torch.equal(seed.images[0], seed.images[1])
    assert preset("recognizable", (3, 60, 60)).jitter == 4
    with pytest.raises(ValueError, match="preset"):
        preset("pretty", SHAPE)
    # the average start is one picture for every class: the mean of the class averages, no class hint
    start = class_visualizations(digits_cnn, [0, 5], 1, VisualizeConfig(start="average", steps=0, threshold=None),
                                 input_shape=SHAPE, class_means=means)
    assert torch.allclose(start.images[0], means.mean(0)) and torch.equal(start.images[0], start.images[1])
    with pytest.raises(ValueError, match="class_means"):
        class_visualizations(digits_cnn, [0], 1, cfg, input_shape=SHAPE)


def test_fft_parameterization_and_random_views():
    from vizcore.explain.objectives import fft_param, random_view

    g = torch.Generator().manual_seed(0)
    start = torch.full((5, 3, 12, 10), 0.5)
    param, image = fft_param(start, g, sd=0.01)
    x = image()
    assert x.shape == start.shape and param.shape == (5, 3, 12, 6, 2)
    assert (x - 0.5).abs().max() < 0.05  # a small random spectrum around the start
    assert not torch.equal(x[0], x[1])
    (x[:, 0].sum()).backward()  # gradients reach every coefficient
    assert param.grad.abs().sum() > 0
    assert random_view(x, g) is x  # no transform asked: the images themselves
    moved = random_view(x.detach(), g, shift=2, scale=0.1, degrees=10)
    assert moved.shape == x.shape and not torch.allclose(moved[0], x[0].detach())
    with pytest.raises(ValueError, match="sigmoid"):
        VisualizeConfig(param="fft", pixel="clamp")
