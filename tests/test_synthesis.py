"""Synthesis methods and the synthetic-set artifact, on the session's tiny digits teachers."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from conftest import assert_untouched, weights_snapshot
from vizcore.distill.kegnet import diversity_loss, train_kegnet_generators
from vizcore.distill.synthesis import SynthesisConfig, SyntheticSet, label_with_teacher, synthesize
from vizcore.core.layers import penultimate_layer
from vizcore.core.progress import Cancelled

SMALL = dict(n=20, batch_size=10, images_per_generator=10, max_steps=40, pre_steps=3, train_steps=12)


def make(model, digits, method, **kw):
    cfg = SynthesisConfig(method=method, **{**SMALL, **kw})
    return synthesize(model, cfg, input_shape=digits.input_shape, class_names=digits.class_names, dataset="digits",
                      teacher_id="test:teacher")


@pytest.mark.parametrize("method", ["generator-am", "kegnet", "dfad"])
def test_methods_make_labelled_images_and_leave_teacher_untouched(digits, digits_cnn, method):
    before = weights_snapshot(digits_cnn)
    s = make(digits_cnn, digits, method)
    assert_untouched(digits_cnn, before)
    assert s.images.shape == (20, *digits.input_shape)
    assert float(s.images.min()) >= 0 and float(s.images.max()) <= 1
    assert torch.allclose(s.probs.sum(1), torch.ones(20), atol=1e-5)
    assert torch.equal(s.labels, s.logits.argmax(1))
    assert s.config["method"] == method and s.teacher_id == "test:teacher"


def test_generator_am_reaches_threshold_and_stored_soft_labels_are_teacher_softmax(digits, digits_cnn, tmp_path):
    s = make(digits_cnn, digits, "generator-am", threshold=0.9)
    # seed 000 eq. 2: most images stop once p(target) > T and target is the argmax
    assert s.stats["reached_fraction"] >= 0.5
    assert float((s.probs.max(1).values > 0.9).float().mean()) >= 0.5
    back = SyntheticSet.from_npz(s.to_npz(tmp_path / "set.npz"))
    _, _, probs = label_with_teacher(digits_cnn, back.images)
    assert torch.allclose(back.probs, probs, atol=1e-6)
    assert back.class_names == digits.class_names and back.config == s.config
    assert not list(tmp_path.glob("*.part"))


def test_generator_am_is_seeded(digits, digits_cnn):
    a, b = make(digits_cnn, digits, "generator-am", n=4, images_per_generator=4, max_steps=5), make(digits_cnn, digits, "generator-am", n=4, images_per_generator=4, max_steps=5)
    assert torch.equal(a.images, b.images)


def _distance_to_real(model, images, labels, digits):
    from vizcore.core.hooks import capture

    layer = penultimate_layer(model)
    with torch.no_grad(), capture(model, [layer]) as f:
        model(images)
        gen = f[layer].flatten(1)
        model(digits.train_x)
        real = f[layer].flatten(1)
    return float(torch.stack([torch.cdist(gen[i:i + 1], real[digits.train_y == labels[i]]).mean()
                              for i in range(len(images))]).mean())


def test_loss2_needs_real_data_and_moves_features_away_from_real_ones(digits, digits_cnn):
    with pytest.raises(ValueError, match="real training data"):
        make(digits_cnn, digits, "generator-am", loss2=True)
    kw = dict(input_shape=digits.input_shape, class_names=digits.class_names, real=(digits.train_x, digits.train_y))
    small = {**SMALL, "n": 6, "images_per_generator": 6, "max_steps": 10, "pre_steps": 0, "threshold": 0.999}
    plain = synthesize(digits_cnn, SynthesisConfig(method="generator-am", **small), **kw)
    away = synthesize(digits_cnn, SynthesisConfig(method="generator-am", loss2=True, loss2_lr_ratio=1.0, **small), **kw)
    assert _distance_to_real(digits_cnn, away.images, away.labels, digits) > \
        _distance_to_real(digits_cnn, plain.images, plain.labels, digits)


def test_kegnet_beta_default_follows_the_paper():
    assert SynthesisConfig(method="kegnet").kegnet_beta("digits") == 0.0
    assert SynthesisConfig(method="kegnet").kegnet_beta("fashion-mnist") == 10.0
    assert SynthesisConfig(method="kegnet").kegnet_lr("digits") == 1e-3
    assert SynthesisConfig(method="kegnet").kegnet_lr("npz:mine.npz") == 1e-2  # a user's images: the Fashion setting
    assert SynthesisConfig(method="kegnet", lr=0.05).kegnet_lr("digits") == 0.05
    assert SynthesisConfig(method="kegnet").noise() == 10


def test_kegnet_trains_table_generators_against_the_teacher_with_its_dropout_on():
    """KegNet's code leaves its MLP classifier in training mode while the generators learn: for a table the teacher's
    dropout is on during every generator step, and the teacher is back in eval mode afterwards; images keep eval."""
    from vizcore.models import build_model

    for shape, expect in (((6,), True), ((1, 8, 8), False)):
        teacher = build_model("mlp10" if len(shape) == 1 else "cnn", shape, 3, seed=0).eval()
        drops = [m for m in teacher.modules() if isinstance(m, torch.nn.Dropout)]
        assert drops
        seen = []
        teacher.register_forward_pre_hook(lambda m, a: seen.append(all(d.training for d in drops)))
        cfg = SynthesisConfig(method="kegnet", n=12, generators=1, train_steps=3, batch_size=8)
        _, stats = train_kegnet_generators(teacher, cfg, input_shape=shape, num_classes=3)
        assert seen == [expect] * 3 and stats["teacher_dropout"] is expect
        assert not any(m.training for m in teacher.modules())


def test_diversity_loss_is_one_for_identical_images_and_falls_with_spread():
    z = torch.randn(6, 10)
    same = torch.zeros(6, 1, 4, 4)
    assert float(diversity_loss(z, same)) == pytest.approx(1.0)
    spread = torch.rand(6, 1, 4, 4)
    assert float(diversity_loss(z, spread)) < 1.0


def test_cancel_stops_synthesis(digits, digits_cnn):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 1

    before = weights_snapshot(digits_cnn)
    with pytest.raises(Cancelled):
        synthesize(digits_cnn, SynthesisConfig(method="generator-am", **SMALL), input_shape=digits.input_shape,
                   class_names=digits.class_names, cancelled=cancelled)
    assert_untouched(digits_cnn, before)  # an interrupted call leaves no hooks and the same weights


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown synthesis method"):
        SynthesisConfig(method="magic")
    with pytest.raises(ValueError, match="threshold"):
        SynthesisConfig(threshold=1.5)


def test_seed003_visualizations_keep_the_signed_weight_rows_and_teach_a_linear_student(digits, digits_linear):
    """Seed 003 sections 5.2-5.3: free-pixel ascent from blank keeps the negative half of a linear teacher's
    weights (0.1 x each row), and 10 images with soft targets retrain a linear student almost exactly."""
    from vizcore.distill.students import SEED003_STUDENT, train_student
    from vizcore.distill.synthesis import SEED003_VISUALIZE

    cfg = SynthesisConfig(method="pixel-am", n=10, per_class=1, visualize=SEED003_VISUALIZE)
    s = synthesize(digits_linear, cfg, input_shape=digits.input_shape, class_names=digits.class_names)
    w = digits_linear.fc1.weight.detach().reshape(10, *digits.input_shape)
    assert torch.allclose(s.images, 0.1 * w, atol=1e-5) and float(s.images.min()) < 0
    stored = {k: v for k, v in s.config.items() if k != "dataset"}
    assert SynthesisConfig(**stored) == cfg  # the config survives JSON, nested visualization options included
    student = train_student(s, SEED003_STUDENT)
    teacher = digits_linear(digits.test_x).argmax(1).numpy()
    assert (student.predict(digits.test_x) == teacher).mean() >= 0.95


def test_pixel_am_from_blank_keeps_a_dark_background(digits, digits_cnn):
    """Seed 003's blank start (the default) gives pictures darker than noise starts, every class present,
    with the reached fraction reported; 'mean' is no data-free start."""
    cfg = SynthesisConfig(method="pixel-am", n=40, max_steps=150, pre_steps=3, threshold=0.5, threshold_max=0.99)
    blank = synthesize(digits_cnn, cfg, input_shape=digits.input_shape, class_names=digits.class_names)
    noise = synthesize(digits_cnn, replace(cfg, start="noise"), input_shape=digits.input_shape,
                       class_names=digits.class_names)
    assert blank.config["start"] == "blank" and blank.config["lr"] is None
    assert float(blank.images.mean()) < 0.5 * float(noise.images.mean())
    assert 0.5 <= blank.stats["reached_fraction"] <= 1 and sum(c > 0 for c in blank.stats["class_counts"]) >= 8
    with pytest.raises(ValueError, match="blank"):
        SynthesisConfig(method="pixel-am", start="mean")


def test_mixed_am_is_half_generator_half_blank_pixel_am(digits, digits_cnn):
    cfg = SynthesisConfig(method="mixed-am", n=40, images_per_generator=10, max_steps=60, threshold=0.9)
    s = synthesize(digits_cnn, cfg, input_shape=digits.input_shape, class_names=digits.class_names)
    assert len(s) == 40 and s.stats["generator_am"]["generators"] == 2
    assert s.stats["pixel_am"]["visualize_config"]["threshold_range"] == (0.5, 0.99)  # the pixel half's own T
    gen, pix = s.images[:20], s.images[20:]
    assert float(pix.mean()) < 0.5 * float(gen.mean())  # pixel AM from blank keeps the background dark
    fractions = (s.stats["generator_am"]["reached_fraction"] + s.stats["pixel_am"]["reached_fraction"]) / 2
    assert s.stats["reached_fraction"] == pytest.approx(fractions)
    with torch.no_grad():
        assert torch.allclose(s.probs, digits_cnn(s.images).softmax(1), atol=1e-5)
    with pytest.raises(ValueError, match="2 for a mixed set"):
        SynthesisConfig(method="mixed-am", n=1)
