"""The seed papers' tables as presets: the settings that reproduce them, and the seed's own MNIST figures.

Seed 000 (generator-based activation maximization): Table 1 (every kind of student on one synthetic set,
T = 0.99, hard labels, with real-data baselines), Table 2 (accuracy against the set's size beside real
subsets of the same size), Tables 6 and 7 (appendix A: T drawn per generator in 0.90-0.99, hard and soft
labels). Seed 003: ten class visualizations of a linear teacher retrain it (sections 5.2-5.3, 8, 10).
A preset trains its students on the stored labels as the paper does (no engine), so its figures are the
paper's method on the user's teacher; ``seed_figures`` are the paper's MNIST numbers printed beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vizcore.distill.students import SEED003_STUDENT, StudentConfig
from vizcore.distill.synthesis import SEED003_VISUALIZE, SynthesisConfig

TABLE1_STUDENTS = ("mlp3", "rf", "svm", "cnn_s", "cnn_l", "cnn_tiny")
SEED000_ARCH = {"cnn": "CNN_ID", "cnn_s": "CNN_S", "cnn_l": "CNN_L", "cnn_tiny": "CNN_s", "mlp3": "MLP", "rf": "RF",
                "svm": "SVM"}


@dataclass(frozen=True)
class SeedPreset:
    """One table: how its synthetic set is made, how its students learn, which sizes it sweeps."""

    name: str
    title: str
    synthesis: SynthesisConfig
    labels: str = "hard"
    students: tuple[str, ...] = ()  # besides the teacher's own architecture (CNN_ID), which always comes first
    sizes: tuple[int, ...] = ()  # the seed's sizes; those above the run's n are dropped
    n: int = 12_000
    epochs: int = 20
    seed_figures: dict = field(default_factory=dict)


_GEN_AM = SynthesisConfig(method="generator-am", threshold=0.99)
_RANDOM_T = replace(_GEN_AM, threshold=0.90, threshold_max=0.99)

SEED_PRESETS = {p.name: p for p in (
    SeedPreset("table1", "Seed 000 Table 1: every student on one synthetic set (T = 0.99, hard labels)", _GEN_AM,
               students=TABLE1_STUDENTS,
               seed_figures={"size": 60_000, "teacher": 99.3, "columns": ["real data (BASE)", "visualizations"],
                             "rows": {"CNN_ID": [99.30, 95.51], "MLP": [94.80, 48.91], "RF": [92.12, 23.20],
                                      "SVM": [94.04, 39.71], "CNN_S": [99.23, 95.11], "CNN_L": [99.42, 94.53],
                                      "CNN_s": [98.89, 91.80]}}),
    SeedPreset("table2", "Seed 000 Table 2: accuracy against the synthetic set's size, real subsets beside it "
                         "(T = 0.99, hard labels)", _GEN_AM, sizes=(400, 2000, 4000, 12_000, 20_000, 40_000, 60_000),
               seed_figures={"teacher": 99.3, "columns": ["synthetic", "real"],
                             "rows": {400: [63.0, 92.5], 2000: [85.5, 96.8], 4000: [87.5, 98.3], 12_000: [92.7, 98.8],
                                      20_000: [94.0, 99.1], 40_000: [94.8, 99.3], 60_000: [95.5, 99.3],
                                      80_000: [95.7, None]}}),
    SeedPreset("table6", "Seed 000 Table 6: T drawn in 0.90-0.99 per generator, hard labels", _RANDOM_T,
               sizes=(400, 4000, 60_000, 120_000),
               seed_figures={"teacher": 99.3, "columns": ["CNN_ID"],
                             "rows": {60_000: [95.74], 120_000: [96.47], 180_000: [96.65]}}),
    SeedPreset("table7", "Seed 000 Table 7: T drawn in 0.90-0.99 per generator, soft labels", _RANDOM_T, labels="soft",
               sizes=(400, 4000, 45_000, 60_000, 120_000),
               seed_figures={"teacher": 99.3, "columns": ["CNN_ID"],
                             "rows": {400: [82.04], 4000: [94.93], 45_000: [97.18], 60_000: [97.90],
                                      120_000: [98.13]}}),
)}

# Seed 003 sections 5.2-5.3: one visualization per class from a blank image, plain gradient ascent, free pixels;
# the student is the teacher's architecture fitted by batch gradient descent with a large rate.
SEED003_SYNTHESIS = SynthesisConfig(method="pixel-am", n=10, per_class=1, visualize=SEED003_VISUALIZE)
SEED003_FIGURES = {"MNIST linear teacher": 91.76, "student from its 10 visualizations": 91.62,
                   "Fashion-MNIST linear teacher": 82.95, "Fashion-MNIST student": 82.01}


def seed003_student(arch: str) -> StudentConfig:
    return replace(SEED003_STUDENT, arch=arch)


def preset_config(name: str, teacher: str, dataset: str, arch: str, *, n: int | None = None):
    """The run of seed 000 table ``name`` on ``teacher`` (architecture ``arch``) with the paper's settings; ``n``
    lowers the number of synthetic images (the sizes above it are dropped)."""
    from vizcore.distill.protocol import DistillConfig

    p = SEED_PRESETS[name]
    n = n or p.n
    students = tuple(StudentConfig(arch=a, labels=p.labels, epochs=p.epochs)
                     for a in dict.fromkeys((arch,) + p.students))  # the teacher's architecture (CNN_ID) first
    sizes = tuple(s for s in p.sizes if s < n) + (n,) if p.sizes else ()
    return DistillConfig(teacher, dataset, replace(p.synthesis, n=n), students, sizes=sizes, preset=name)


def seed_rows(name: str, report: dict) -> list[dict]:
    """A finished preset run's accuracies (%) beside the seed's MNIST figures, one row per student (Table 1) or per
    size (Tables 2, 6, 7); the seed's teacher was at 99.3 %."""
    fig = SEED_PRESETS[name].seed_figures["rows"]

    def pct(a):
        return None if a is None else round(100 * a, 2)

    def seed(row) -> list:  # the seed's figures of a row, None where it has none
        return fig.get(row, []) + [None, None]

    if name == "table1":
        real = {b["config"]["arch"]: b["accuracy"] for b in report["baselines"]}
        rows = []
        for s in report["students"]:
            arch = s["config"]["arch"]
            base, vis = seed(SEED000_ARCH.get(arch))[:2]
            rows.append({"student": SEED000_ARCH.get(arch, arch), "ours: synthetic": pct(s["accuracy"]),
                         "ours: real": pct(real.get(arch)), "seed: visualizations": vis, "seed: real (BASE)": base})
        return rows
    return [{"images": r["size"], "ours: synthetic": pct(r["synthetic"]), "ours: real": pct(r["real"]),
             "seed: synthetic": seed(r["size"])[0], "seed: real": seed(r["size"])[1]} for r in report["sweep"]]
