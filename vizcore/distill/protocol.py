"""Distillation runs: the data-free protocol, the background job that runs it, and the store of finished runs.

Protocol (DESIGN.md "anti-patterns"): the synthetic set is made from the teacher alone; students are trained
and selected on synthetic data; the real-data baseline is trained and selected on the real *training* split;
the real test split comes from a callable that :func:`run_distillation` calls exactly once, after every
model is final, to write the report.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as st_save_bytes
from torch import nn

from vizcore.core.hooks import frozen_copy, guarded
from vizcore.core.jobs import JobInfo, get_job, list_jobs, start_job
from vizcore.metrics import classification_report, predict_logits
from vizcore.distill.students import (Student, StudentConfig, bias_only_student, fit_student,
                              holdout_split, train_student)
from vizcore.distill.synthesis import SynthesisConfig, SyntheticSet, synthesize
from vizcore.core.config import Config
from vizcore.core.progress import Progress, progress_span
from vizcore.core.workspace import atomic_write, read_json, write_json

JOB_KIND = "distill"
Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DistillConfig(Config):
    """A whole run: teacher, synthesis, students, and whether to train the real-data baseline.

    ``sizes``: also train the first student on the first ``s`` synthetic images (and ``s`` real ones) for
    each size, for accuracy-against-size (seed 000 Table 2). ``preset='bias-only'`` adds seed 003's
    extreme-compression student (section 10).
    """

    teacher: str
    dataset: str
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    students: tuple[StudentConfig, ...] = (StudentConfig(),)
    baseline: bool = True
    sizes: tuple[int, ...] = ()
    preset: str = ""

    def __post_init__(self):
        if any(v < 1 or v > self.synthesis.n for v in self.sizes):
            raise ValueError(f"sizes must lie between 1 and the synthetic set's {self.synthesis.n} images")

    @classmethod
    def from_dict(cls, d: dict) -> DistillConfig:
        return cls(**{**d, "synthesis": SynthesisConfig(**d["synthesis"]),
                      "students": tuple(StudentConfig(**s) for s in d["students"]), "sizes": tuple(d.get("sizes", ()))})


def parse_sizes(text: str) -> tuple[int, ...]:
    """Sizes for accuracy-against-size from ``"200, 500, 1000"`` (commas or spaces)."""
    parts = text.replace(",", " ").split()
    if not all(v.isdigit() for v in parts):
        raise ValueError("sizes must be whole numbers separated by commas, e.g. 200, 500, 1000")
    return tuple(int(v) for v in parts)


def real_subset(split: Split, n: int, seed: int) -> Split:
    """``n`` random images of a real split (the baseline's training set of the synthetic set's size)."""
    idx = torch.from_numpy(np.random.default_rng(seed).permutation(len(split[0]))[:n])
    return split[0][idx], split[1][idx]


def train_baseline(config: StudentConfig, train: Split, num_classes: int, **kw) -> Student:
    """The same student on real images with their true labels, selected on a split of those real images."""
    tr, va = holdout_split(len(train[0]), config.holdout, config.seed)
    cfg = replace(config, labels="hard")
    student = fit_student(cfg, train[0][tr], train[1][tr], select=(train[0][va], train[1][va]),
                          num_classes=num_classes, **kw)
    student.name = f"{config.arch} (real data)"
    return student


def _prototypes(synth: SyntheticSet) -> torch.Tensor:
    """One image per class: the synthetic image the teacher is surest belongs to it."""
    return synth.images[synth.probs.argmax(0)]


def run_distillation(teacher: nn.Module, config: DistillConfig, *, class_names: list[str], input_shape,
                     load_test: Callable[[], Split], load_train: Callable[[], Split] | None = None,
                     out_dir: Path | None = None, progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None) -> dict:
    """Run the data-free protocol; returns the report (and writes artifacts to ``out_dir`` if given).

    ``load_train`` is called only for the real baseline and for methods that need real data (the report
    says so); ``load_test`` is called once, at the end.
    """
    k, t0 = len(class_names), time.perf_counter()
    syn_cfg = config.synthesis
    real_train = load_train() if (load_train and (config.baseline or syn_cfg.needs_real_data)) else None
    if (config.baseline or syn_cfg.needs_real_data) and real_train is None:
        raise ValueError("the real-data baseline and class averages / Loss_2 need the real training split")
    start = time.perf_counter()
    synth = synthesize(teacher, syn_cfg, input_shape=input_shape, class_names=class_names, dataset=config.dataset,
                       teacher_id=config.teacher, real=real_train, progress=progress_span(progress, 0, 0.5), cancelled=cancelled)
    synth_seconds = time.perf_counter() - start
    if out_dir:
        synth.to_npz(Path(out_dir) / "synthetic.npz")
    twin = frozen_copy(teacher) if any(sc.relabel for sc in config.students) else None
    students: list[Student] = []
    n_jobs = len(config.students) + bool(config.preset == "bias-only")
    for i, sc in enumerate(config.students):
        students.append(train_student(synth, sc, teacher=twin, cancelled=cancelled,
                                      progress=progress_span(progress, 0.5 + 0.3 * i / n_jobs, 0.5 + 0.3 * (i + 1) / n_jobs)))
    if config.preset == "bias-only":
        students.append(bias_only_student(_prototypes(synth), synth, config.students[0], cancelled=cancelled,
                                          progress=progress_span(progress, 0.8 - 0.3 / n_jobs, 0.8)))
    per_arch: dict[str, StudentConfig] = {}  # one baseline per architecture, with its first student's settings
    for sc in config.students:
        per_arch.setdefault(sc.arch, sc)
    baselines = [train_baseline(sc, real_subset(real_train, len(synth), sc.seed), k, cancelled=cancelled,
                                progress=progress_span(progress, 0.8, 0.9)) for sc in per_arch.values()] if config.baseline else []
    sweep_models = []
    for s in config.sizes:
        sc = config.students[0]
        syn = train_student(synth.subset(range(min(s, len(synth)))), sc, teacher=twin, cancelled=cancelled)
        real = train_baseline(sc, real_subset(real_train, s, sc.seed), k, cancelled=cancelled) if real_train else None
        sweep_models.append((s, syn, real))
        if progress:
            progress(0.9 + 0.08 * len(sweep_models) / len(config.sizes), f"size sweep: {s} images")
    if progress:
        progress(0.98, "evaluating on the real test split (read once, now)")
    x_test, y_test = load_test()  # the only read of the real test split

    def report(pred) -> dict:
        return classification_report(y_test.numpy(), np.asarray(pred), class_names)

    with guarded(teacher):
        teacher_rep = report(predict_logits(teacher, x_test).argmax(1).numpy())

    def row(s: Student) -> dict:
        r = report(s.predict(x_test))
        return {"name": s.name, "config": asdict(s.config), "selection": s.selection, "seconds": round(s.seconds, 2),
                "accuracy": r["accuracy"], "ratio": r["accuracy"] / max(teacher_rep["accuracy"], 1e-12), "report": r}

    result = {
        "config": config.to_dict(), "class_names": list(class_names),
        "teacher": {"id": config.teacher, "accuracy": teacher_rep["accuracy"], "report": teacher_rep},
        "synthesis": {"n": len(synth), "seconds": round(synth_seconds, 2), "stats": synth.stats,
                      "used_real_data": syn_cfg.needs_real_data},
        "students": [row(s) for s in students], "baselines": [row(b) for b in baselines],
        "sweep": [{"size": s, "synthetic": report(a.predict(x_test))["accuracy"],
                   "real": report(b.predict(x_test))["accuracy"] if b else None} for s, a, b in sweep_models],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if out_dir:
        for s in students:
            if s.model is not None:
                atomic_write(Path(out_dir) / f"student-{s.name}.safetensors",
                             st_save_bytes({k_: v.contiguous() for k_, v in s.model.state_dict().items()}))
        write_json(Path(out_dir) / "report.json", result)
    return result


# ------------------------------------------------------------------------------------------ jobs and the store


def start_run(config: DistillConfig, wait: bool = False, data_root: str | None = None) -> JobInfo:
    """Run :func:`run_distillation` as a background job on a zoo / workspace teacher; artifacts in the job folder.
    ``data_root``: where the dataset's files are (see :func:`vizcore.data.load_dataset`)."""
    from vizcore import zoo
    from vizcore.data import load_dataset

    entry = zoo.get_entry(config.teacher)
    cache: dict = {}

    def dataset():
        if "ds" not in cache:
            cache["ds"] = load_dataset(config.dataset, root=data_root)
        return cache["ds"]

    def work(ctx) -> dict:
        teacher = zoo.load_model(entry)
        rep = run_distillation(
            teacher, config, class_names=list(entry.card.class_names), input_shape=tuple(entry.card.input_shape),
            load_train=lambda: (dataset().train_x, dataset().train_y), load_test=lambda: (dataset().test_x, dataset().test_y),
            out_dir=ctx.dir, progress=ctx.progress, cancelled=ctx.cancelled)
        return summary(rep)

    title = f"{config.synthesis.method} x{config.synthesis.n} from {entry.id} -> " + ", ".join(s.name for s in config.students)
    return start_job(JOB_KIND, title, work, config.to_dict(), wait=wait)


def summary(report: dict) -> dict:
    """The figures a runs table shows."""
    best = max(report["students"], key=lambda r: r["accuracy"])
    return {"teacher_accuracy": report["teacher"]["accuracy"], "best_student": best["name"],
            "best_accuracy": best["accuracy"], "best_ratio": best["ratio"],
            "baseline_accuracy": max((b["accuracy"] for b in report["baselines"]), default=None),
            "synthesis_seconds": report["synthesis"]["seconds"], "seconds": report["seconds"]}


def list_runs() -> list[dict]:
    """Every distillation job in the workspace, newest first, with its summary when finished."""
    rows = []
    for job in list_jobs(JOB_KIND):
        cfg = job.config
        rows.append({"id": job.id, "state": job.state, "created": job.created, "teacher": cfg.get("teacher"),
                     "method": cfg.get("synthesis", {}).get("method"), "n": cfg.get("synthesis", {}).get("n"),
                     "students": ", ".join(StudentConfig(**s).name for s in cfg.get("students", [])),
                     **(job.result if job.state == "done" else {})})
    return rows


def run_dir(run_id: str) -> Path:
    return get_job(run_id).dir


def load_report(run_id: str) -> dict:
    path = run_dir(run_id) / "report.json"
    if not path.exists():
        raise ValueError(f"run {run_id} has no report (state: {get_job(run_id).state})")
    return read_json(path)


def load_synthetic(run_id: str) -> SyntheticSet:
    return SyntheticSet.from_npz(run_dir(run_id) / "synthetic.npz")


def report_rows(report: dict) -> list[dict]:
    """Flat rows (model, role, class, precision, recall, f1, support) for tables and CSV export."""
    rows = []
    models = [("teacher", report["teacher"]["id"], report["teacher"]["report"])]
    models += [("student", s["name"], s["report"]) for s in report["students"]]
    models += [("baseline", b["name"], b["report"]) for b in report["baselines"]]
    for role, name, rep in models:
        for r in rep["per_class"]:
            rows.append({"role": role, "model": name, **r})
    return rows


def compare_reports(reports: dict[str, dict]) -> tuple[list[tuple[str, str, list[dict]]], list[dict]]:
    """Finished runs side by side: per-class F1 series ``(label, role, per_class)`` (each teacher once) and one
    accuracy row per model and run."""
    series, rows = [], []
    for rid, rep in reports.items():
        tag = f"{rep['config']['synthesis']['method']} x{rep['synthesis']['n']}" if len(reports) > 1 else ""
        if not any(s[1] == "teacher" and s[0].startswith(rep["teacher"]["id"]) for s in series):
            series.append((f"{rep['teacher']['id']} (teacher)", "teacher", rep["teacher"]["report"]["per_class"]))
        rows.append({"run": rid, "model": rep["teacher"]["id"], "role": "teacher", "accuracy": rep["teacher"]["accuracy"]})
        for role, key in (("student", "students"), ("baseline", "baselines")):
            for s in rep[key]:
                series.append((f"{s['name']} {tag}".strip(), role, s["report"]["per_class"]))
                rows.append({"run": rid, "model": s["name"], "role": role, "accuracy": s["accuracy"],
                             "of teacher": s["ratio"], "selection score (synthetic)": s["selection"].get("score"),
                             "train s": s["seconds"]})
    return series, rows


def report_csv(report: dict) -> str:
    buf = io.StringIO()
    rows = report_rows(report)
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
