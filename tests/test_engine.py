"""The one distillation engine: online generator, memory bank, augmentation, and the data-free protocol."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import assert_untouched, weights_snapshot

from vizcore.core.hooks import frozen_copy
from vizcore.distill.engine import (
    attention_loss,
    attention_map,
    attention_pairs,
    EngineConfig,
    feature_loss,
    feature_pairs,
    MemoryBank,
    discrepancy,
    distill,
    divergence,
    generator_step,
    mix_images,
    mixed_pairs,
    shift_images,
)
from vizcore.distill.generators import Generator
from vizcore.distill.students import StudentConfig
from vizcore.distill.synthesis import SynthesisConfig
from vizcore.models import build_model


def test_memory_bank_keeps_its_size_and_replays_what_it_holds():
    bank = MemoryBank(10, seed=0)
    for i in range(3):
        bank.add(torch.full((4, 1, 2, 2), float(i)))
    assert len(bank) == 10
    # the ring buffer overwrote the two oldest images of batch 0: four of batch 2, four of 1, two of 0
    assert sorted(bank.images.flatten(1)[:, 0].tolist()) == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    drawn = bank.sample(50)
    assert drawn.shape == (50, 1, 2, 2) and set(drawn.flatten().tolist()) <= {0.0, 1.0, 2.0}


def test_shift_translates_and_mix_keeps_the_unmixed_part():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(6, 1, 8, 8)
    x[:, 0, 4, 4] = 1
    moved = shift_images(x, 2, gen)
    assert moved.shape == x.shape and torch.all(moved.sum((1, 2, 3)) == 1)  # one pixel, moved by at most 2
    ys, xs = torch.nonzero(moved[:, 0], as_tuple=True)[1:]
    assert int((ys - 4).abs().max()) <= 2 and int((xs - 4).abs().max()) <= 2
    y = torch.rand(8, 1, 8, 8, generator=gen)
    mixed = mix_images(y, "both", 0.5, gen)
    assert mixed.shape == y.shape and torch.equal(mixed[:4], y[:4])
    assert float(mixed.min()) >= 0 and float(mixed.max()) <= 1
    assert torch.equal(mix_images(y, "none", 0.5, gen), y)
    for mode in ("mixup", "cutmix"):
        assert mix_images(y, mode, 0.5, gen).shape == y.shape
    rows = torch.rand(8, 5, generator=gen)  # feature rows (a table's teacher) can be mixed up too
    assert mix_images(rows, "mixup", 0.5, gen).shape == rows.shape


def test_generator_step_raises_the_student_teacher_discrepancy(digits, digits_cnn):
    torch.manual_seed(0)
    teacher = frozen_copy(digits_cnn)
    student = build_model("cnn_s", digits.input_shape, 10, seed=1)
    cfg = EngineConfig(batch_size=64, one_hot=0.0, balance=0.0, generator_lr=1e-2)
    G = Generator(digits.input_shape, cfg.noise_dim)
    opt = torch.optim.Adam(G.parameters(), lr=cfg.generator_lr)
    z = torch.randn(256, cfg.noise_dim)
    before_student = weights_snapshot(student)

    def gap():
        G.eval()
        with torch.no_grad():
            x = G(z)
            d = float(discrepancy(student(x), teacher(x), cfg.loss, cfg.temperature))
        G.train()
        return d
    first = gap()
    for _ in range(10):
        generator_step(G, opt, teacher, student, cfg)
    assert gap() > 1.5 * first
    assert_untouched(student, before_student)  # only the generator learned


def test_online_student_agreement_rises_and_teacher_is_untouched(digits, digits_cnn):
    before = weights_snapshot(digits_cnn)
    teacher = frozen_copy(digits_cnn)
    student = build_model("cnn", digits.input_shape, 10, seed=0)
    cfg = EngineConfig(steps=150, batch_size=64, generator=True, bank=256, checkpoints=3)
    # the test measures agreement on real images (the protocol's own hold-out is synthetic)
    res = distill(teacher, student, cfg, input_shape=digits.input_shape, num_classes=10, holdout=digits.test_x[:300])
    assert_untouched(digits_cnn, before)
    scores = [s for _, s in res.history]
    assert len(scores) == 3 and scores[-1] > scores[0] + 0.1
    assert res.stats["generator_steps"] == 30 and len(res.bank) == 256
    assert res.selection["score"] == max(scores)


def test_protocol_online_method_never_reads_real_training_data(digits, digits_cnn):
    from vizcore.distill import protocol as runs

    def forbidden():
        raise AssertionError("the data-free protocol read the real training split")
    reads = []

    def test_split():
        reads.append(1)
        return digits.test_x, digits.test_y
    cfg = runs.DistillConfig("t", "digits", SynthesisConfig(method="dfad", n=100),
                             (StudentConfig(arch="cnn_s"), StudentConfig(arch="rf")), baseline=False,
                             engine=EngineConfig(steps=20, batch_size=32, checkpoints=2))
    rep = runs.run_distillation(digits_cnn, cfg, class_names=digits.class_names, input_shape=digits.input_shape,
                                load_test=test_split, load_train=forbidden)
    assert reads == [1]
    assert rep["synthesis"]["online"] and rep["synthesis"]["n"] == 100  # DFAD's bank: 4 generator steps x 32, capped
    assert [s["name"] for s in rep["students"]] == ["cnn_s-engine", "rf"]
    assert len(rep["live"][0]["points"]) == 2 and rep["engine"]["loss"] == "l1"


def test_online_method_without_engine_is_a_message():
    from vizcore.distill import protocol as runs

    with pytest.raises(ValueError, match="needs the engine"):
        runs.DistillConfig("t", "digits", SynthesisConfig(method="dfad", n=10))


def test_blank_generator_starts_dark_and_dfad_keeps_its_own_generator():
    torch.manual_seed(0)
    z = torch.randn(256, 64)
    with torch.no_grad():
        dark = Generator((1, 28, 28), 64, blank=True)(z)
        grey = Generator((1, 28, 28), 64)(z)
    assert float(dark.mean()) < 0.25 < 0.4 < float(grey.mean())  # sigmoid(-2) = 0.12 against sigmoid(0) = 0.5
    from vizcore.distill.methods import engine_for

    assert engine_for("online", EngineConfig(), 100).generator_blank and not engine_for("dfad", EngineConfig(), 100).generator_blank
    # the method's settings fill in what the user left at the engine's default; what the user changed stays
    chosen = engine_for("kegnet-online", EngineConfig(mix="cutmix", temperature=3.0, steps=50), 100)
    assert (chosen.mix, chosen.temperature, chosen.steps, chosen.lr, chosen.bank) == ("cutmix", 3.0, 50, 3e-3, 100)
    assert engine_for("dfad", EngineConfig(), 100).loss == "l1" and engine_for("dfad", EngineConfig(), 100).attention == 0


def test_online_engine_distills_a_table_teacher_with_a_row_generator():
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(6, 3))
    torch.nn.init.normal_(teacher[0].weight, std=2.0)
    student = torch.nn.Sequential(torch.nn.Linear(6, 3))
    rows = torch.randn(500, 6)  # standardized feature rows, like the tables' after their training-split scaling
    from vizcore.distill.methods import ONLINE

    # a linear student learns fast: lr 3e-2 (uniform-noise rows reached 0.73 in 200 steps at the default 3e-3); 400
    # steps give the generator, which steps once per six student steps, 67 steps of its own
    cfg = EngineConfig(**{**ONLINE, "steps": 400, "batch_size": 64, "checkpoints": 4, "bank": 512, "lr": 3e-2})
    res = distill(frozen_copy(teacher), student, cfg, input_shape=(6,), num_classes=3, holdout=rows)
    scores = [s for _, s in res.history]
    assert scores[-1] > 0.9 and scores[-1] > scores[0]
    assert res.bank.shape == (512, 6)


def test_the_default_is_kegnet_then_online_with_its_measured_settings(digits, digits_cnn):
    from vizcore.distill import protocol as runs
    from vizcore.distill.methods import DEFAULT_ENGINE, DEFAULT_METHOD

    cfg = runs.DistillConfig("t", "digits", SynthesisConfig(method=DEFAULT_METHOD, n=64, generators=2, train_steps=3),
                             (StudentConfig(arch="cnn_s"),), baseline=False,
                             engine=EngineConfig(**{**DEFAULT_ENGINE.to_dict(), "steps": 8, "batch_size": 16}))
    rep = runs.run_distillation(digits_cnn, cfg, class_names=digits.class_names, input_shape=digits.input_shape,
                                load_test=lambda: (digits.test_x, digits.test_y))
    engine, syn = rep["engine"], rep["synthesis"]
    # KegNet's generators made the fixed set (seed 004's noise size 10); the online generator trained beside it
    assert not syn["online"] and syn["n"] == 64 and syn["stats"]["generators"] == 2 and syn["stats"]["noise_dim"] == 10
    assert (engine["generator"], engine["generator_blank"], engine["student_per_generator"], engine["loss"],
            engine["lr"], engine["one_hot"] > 0, engine["balance"] > 0, engine["bank"], engine["attention"]) == (
                True, True, 6, "kl", 3e-3, True, True, 64, 2500.0)
    with pytest.raises(ValueError, match="needs the engine"):  # the generator in the loop lives in the engine
        runs.DistillConfig("t", "digits", SynthesisConfig(method=DEFAULT_METHOD, n=64))


def test_online_selection_keeps_the_checkpoint_that_agrees_on_every_stage(digits, digits_cnn):
    from vizcore.distill.engine import _best_stage

    teacher = frozen_copy(digits_cnn)
    twin = {k: v.clone() for k, v in digits_cnn.state_dict().items()}  # agrees everywhere
    torch.manual_seed(3)
    stranger = {k: torch.randn_like(v) for k, v in twin.items()}
    images = [torch.rand(40, *digits.input_shape), digits.test_x[:40]]
    stages = {"images": images, "students": [(10, twin), (20, stranger)]}
    score, weights, step = _best_stage(copy.deepcopy(digits_cnn), teacher, stages)
    assert (score, step) == (1.0, 10) and weights is stages["students"][0][1]  # not the last one

    student = build_model("cnn_s", digits.input_shape, 10, seed=0)
    res = distill(teacher, student, EngineConfig(steps=40, batch_size=32, generator=True, checkpoints=4),
                  input_shape=digits.input_shape, num_classes=10)
    assert res.selection["holdout"] == 4 * 32 and res.selection["step"] in [s for s, _ in res.history]


def test_the_default_budget_grows_past_16_by_16_pixels():
    """3,000 steps for digits-sized images and tables, 6,000 for larger images, on the page and from the CLI."""
    from dataclasses import replace

    from vizcore.cli import build_parser, distill_cmd
    from vizcore.distill.methods import DEFAULT_ENGINE, default_engine, default_steps

    assert default_steps((1, 8, 8)) == default_steps((3, 16, 16)) == default_steps((16,)) == DEFAULT_ENGINE.steps == 3000
    assert default_steps((1, 28, 28)) == default_steps((1, 17, 16)) == 6000
    assert default_engine((1, 28, 28)) == replace(DEFAULT_ENGINE, steps=6000)
    cli = build_parser().parse_args(["distill", "--teacher", "zoo:fashion-mnist-cnn"])
    assert distill_cmd._engine(cli, (1, 28, 28)).steps == 6000
    cli = build_parser().parse_args(["distill", "--teacher", "zoo:fashion-mnist-cnn", "--budget", "700"])
    assert distill_cmd._engine(cli, (1, 28, 28)).steps == 700


@pytest.mark.parametrize("keep", [False, True])
def test_the_students_dropout_is_off_while_it_learns_unless_kept(digits, digits_cnn, keep):
    """By default the student learns with its dropout off (the teacher's soft targets regularize it): dropout is
    the identity during training steps, and the other layers still train. ``student_dropout`` keeps it on."""
    student = build_model("cnn_s", digits.input_shape, 10, seed=1)
    modes, identity = [], []

    def look(m, args, out):
        modes.append(m.training)
        identity.append(torch.equal(out, args[0]))

    student.dropout.register_forward_hook(look)
    before = student.fc1.weight.detach().clone()
    res = distill(frozen_copy(digits_cnn), student, EngineConfig(steps=6, batch_size=16, checkpoints=1,
                                                                 student_dropout=keep),
                  input_shape=digits.input_shape, num_classes=10, images=digits.train_x[:64])
    assert modes[:6] == [keep] * 6 and identity[:6] == [not keep] * 6  # the six training steps
    assert not torch.equal(res.model.fc1.weight, before) and not res.model.training


def test_the_student_trains_channels_last_and_comes_back_in_the_usual_layout(digits, digits_cnn, tmp_path):
    """The engine trains image students channels-last (oneDNN's fast layout); the student it returns has the usual
    layout again, and saved and loaded it gives the same outputs."""
    from vizcore.zoo import ModelCard, load_model, save_model

    student = build_model("cnn_s", digits.input_shape, 10, seed=1)
    seen = []
    student.register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    res = distill(frozen_copy(digits_cnn), student, EngineConfig(steps=4, batch_size=16, checkpoints=1),
                  input_shape=digits.input_shape, num_classes=10, images=digits.train_x[:64])
    assert seen and all(seen[:4])  # the training batches
    assert all(p.is_contiguous() for p in res.model.parameters())
    card = ModelCard(name="s", arch="cnn_s", dataset="digits", input_shape=list(digits.input_shape),
                     class_names=list(digits.class_names))
    again = load_model(save_model(res.model, card, tmp_path))
    x = digits.test_x[:32]
    assert torch.allclose(again(x), res.model(x), atol=1e-6)


def test_with_ema_the_checkpoints_keep_the_average_of_the_students_weights(digits, digits_cnn):
    """``ema``: the student kept is the moving average of its weights after each step (the first step's weights,
    then decay * average + (1 - decay) * weights), not the student of the last step."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    student = build_model("cnn_s", digits.input_shape, 10, seed=1)
    after = []
    hook = register_optimizer_step_post_hook(
        lambda opt, args, kwargs: after.append([p.detach().clone() for p in opt.param_groups[0]["params"]]))
    try:
        res = distill(frozen_copy(digits_cnn), student, EngineConfig(steps=3, batch_size=16, checkpoints=1, ema=0.5),
                      input_shape=digits.input_shape, num_classes=10, images=digits.train_x[:64])
    finally:
        hook.remove()
    assert len(after) == 3
    average = after[0]
    for weights in after[1:]:
        average = [0.5 * a + 0.5 * w for a, w in zip(average, weights)]
    kept = list(res.model.parameters())
    assert all(torch.allclose(k, a, atol=1e-6) for k, a in zip(kept, average))
    assert not torch.allclose(kept[0], after[-1][0])
    with pytest.raises(ValueError, match="decay"):
        EngineConfig(ema=1.0)


def test_attention_maps_pair_by_size_and_ignore_width_and_scale(digits):
    """ZSKT's attention transfer: pairs at every resolution both models have; a map is the same for a feature map
    with its channels repeated or scaled, so a narrower student can match a wider teacher."""
    teacher = build_model("cnn", (1, 28, 28), 10, seed=0)
    assert attention_pairs(teacher, build_model("cnn_s", (1, 28, 28), 10, seed=1), (1, 28, 28)) == [
        ("act1", "act1"), ("act2", "act2")]
    assert attention_pairs(teacher, build_model("mlp", (1, 28, 28), 10, seed=1), (1, 28, 28)) == []
    # a compressed student's Tucker-2 conv is one layer: its map is the activation after it, as the teacher's
    from vizcore.distill.compression import compress_model
    small, info = compress_model(teacher, ranks={"conv1": [1, 8], "conv2": [8, 8]})
    assert attention_pairs(teacher, small, (1, 28, 28)) == [("act1", "act1"), ("act2", "act2")]
    # the probe that finds the sizes leaves a training student as it was: its mode, and its BatchNorm statistics
    bn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                             torch.nn.Flatten(), torch.nn.Linear(4 * 28 * 28, 10)).train()
    assert attention_pairs(teacher, bn, (1, 28, 28)) == [("act1", "0")]
    assert bn.training and bn[1].num_batches_tracked == 0 and float(bn[1].running_var.min()) == 1.0
    a = torch.rand(3, 4, 5, 5)
    assert torch.allclose(attention_map(torch.cat([a, a], 1) * 7), attention_map(a), atol=1e-6)
    assert torch.allclose(attention_map(a).norm(dim=1), torch.ones(3))
    assert float(attention_loss([a], [3 * a])) < 1e-10 and float(attention_loss([a], [a.flip(-1)])) > 1e-4


def test_attention_transfer_brings_the_students_maps_to_the_teachers(digits, digits_cnn):
    from vizcore.core.hooks import capture

    teacher = frozen_copy(digits_cnn)
    pairs = attention_pairs(teacher, build_model("cnn_s", digits.input_shape, 10, seed=1), digits.input_shape)
    assert len(pairs) == 2  # 8 x 8 and 4 x 4
    x = digits.test_x[:200]

    def gap(weight):
        student = build_model("cnn_s", digits.input_shape, 10, seed=1)
        distill(teacher, student, EngineConfig(steps=60, batch_size=32, checkpoints=1, attention=weight),
                input_shape=digits.input_shape, num_classes=10, images=digits.train_x[:256])
        with torch.no_grad(), capture(teacher, [t for t, _ in pairs]) as t, capture(student, [s for _, s in pairs]) as s:
            teacher(x), student(x)
            return float(attention_loss([t[n] for n, _ in pairs], [s[n] for _, n in pairs]))

    assert gap(1000.0) < 0.5 * gap(0.0)
    with pytest.raises(ValueError, match="attention"):
        EngineConfig(attention=-1.0)


def test_feature_matching_pairs_the_layers_a_compressed_student_keeps():
    """FitNets' hints for a compressed model: every hidden layer's output (after its activation), matched by name
    and shape; a student of another width shares only the layers of equal shape."""
    from vizcore.distill.compression import compress_model

    teacher = build_model("cnn", (1, 28, 28), 10, seed=0)
    small, _ = compress_model(teacher, ranks={"conv2": [8, 8], "fc1": [4]})
    assert feature_pairs(teacher, small, (1, 28, 28)) == ["act1", "act2", "fc_act1"]
    narrow = build_model("cnn_s", (1, 28, 28), 10, seed=1)
    shared = feature_pairs(teacher, narrow, (1, 28, 28))
    assert "act1" not in shared and "fc_act1" not in shared  # cnn_s has fewer filters and units
    assert feature_pairs(teacher, build_model("mlp", (1, 28, 28), 10, seed=1), (1, 28, 28)) == []
    t = torch.rand(4, 3, 5, 5)
    assert float(feature_loss([t], [t])) == 0.0
    assert abs(float(feature_loss([t], [torch.zeros_like(t)])) - 1.0) < 1e-6  # a silent layer costs 1
    assert abs(float(feature_loss([7 * t], [7 * t.flip(-1)])) - float(feature_loss([t], [t.flip(-1)]))) < 1e-5
    with pytest.raises(ValueError, match="feature"):
        EngineConfig(features=-1.0)


def test_feature_matching_brings_a_compressed_students_layers_to_the_teachers(digits, digits_cnn):
    from vizcore.core.hooks import capture
    from vizcore.distill.compression import compress_model

    teacher = frozen_copy(digits_cnn)
    start, _ = compress_model(teacher, ratio=16)
    names = feature_pairs(teacher, start, digits.input_shape)
    x = digits.test_x[:200]

    def gap(weight):
        student = copy.deepcopy(start).requires_grad_(True)
        distill(teacher, student, EngineConfig(steps=150, batch_size=32, checkpoints=1, features=weight),
                input_shape=digits.input_shape, num_classes=10, images=torch.rand(256, *digits.input_shape))
        with torch.no_grad(), capture(teacher, names) as t, capture(student, names) as s:
            teacher(x), student(x)
            return float(feature_loss([t[n] for n in names], [s[n] for n in names]))

    assert gap(10.0) < 0.8 * gap(0.0)  # 0.82 against 1.14 (noise images, 150 steps)


def test_mixed_pairs_blend_each_input_with_one_other_and_divergence_is_kl():
    x = torch.eye(6)  # one-hot rows: a blend shows which two it came from and at what weight
    out = mixed_pairs(x, seed=3)
    assert torch.equal(out, mixed_pairs(x, seed=3)) and not torch.equal(out, mixed_pairs(x, seed=4))
    assert torch.allclose(out.sum(1), torch.ones(6)) and (out >= 0).all() and ((out > 0).sum(1) <= 2).all()
    assert (out.diagonal() > 0).all()  # each row keeps some of itself
    # KL(p || uniform) = log C - H(p) for a model that answers uniformly; 0 for the teacher's own answers
    probs = torch.softmax(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), 1)
    uniform = torch.nn.Linear(6, 4)
    torch.nn.init.zeros_(uniform.weight)
    torch.nn.init.zeros_(uniform.bias)
    entropy = float(-(probs * probs.log()).sum(1).mean())
    assert divergence(uniform, x, probs.log()) == pytest.approx(float(torch.log(torch.tensor(4.0))) - entropy, abs=1e-5)
    teacher = torch.nn.Linear(6, 4)
    assert divergence(teacher, x, teacher(x).detach()) == pytest.approx(0.0, abs=1e-6)


def test_mixed_selection_keeps_the_checkpoint_closest_to_the_teacher_between_hold_out_images(digits, digits_cnn):
    """``select="mixed"``: the kept checkpoint is the one with the lowest KL divergence from the teacher on the
    hold-out's mixed pairs (not the one of highest agreement); its agreement is still reported as the score."""
    teacher = frozen_copy(digits_cnn)
    student = build_model("cnn", digits.input_shape, 10, seed=0)
    hold = digits.test_x[:200]
    mixed = mixed_pairs(hold, 0)
    logits = teacher(mixed).detach()
    seen = []
    cfg = EngineConfig(steps=120, batch_size=64, generator=True, bank=256, checkpoints=6, select="mixed")
    res = distill(teacher, student, cfg, input_shape=digits.input_shape, num_classes=10, holdout=hold,
                  on_checkpoint=lambda step, score: seen.append((divergence(student, mixed, logits), step, score)))
    best = min(seen)
    assert len(seen) == 6 and res.selection["step"] == best[1] and res.selection["score"] == best[2]
    assert res.selection["divergence"] == pytest.approx(best[0])
    assert divergence(res.model, mixed, logits) == pytest.approx(best[0], rel=1e-4)
    with pytest.raises(ValueError, match="select is one of"):
        EngineConfig(select="accuracy")
