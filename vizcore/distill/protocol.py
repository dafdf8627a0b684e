"""Distillation runs: the data-free protocol, the background job that runs it, and the store of finished runs.

Protocol (DESIGN.md "anti-patterns"): the synthetic set is made from the teacher alone; students are trained
and selected on synthetic data; the real-data baseline is trained and selected on the real *training* split;
the real test split comes from a callable that :func:`run_distillation` calls exactly once, after every
model is final, to write the report.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as st_save_bytes
from torch import nn

from vizcore.core import distributed as dist
from vizcore.core.config import Config
from vizcore.core.hooks import frozen_copy, guarded
from vizcore.core.jobs import JobInfo, get_job, jobs_dir, list_jobs, start_job, start_process_job
from vizcore.core.progress import Progress, progress_span
from vizcore.core.workspace import atomic_write, read_json, write_json
from vizcore.distill.engine import EngineConfig, distill
from vizcore.distill.methods import engine_for, is_online, needs_engine
from vizcore.distill.sharded import synthesize_sharded, synthetic_sha256
from vizcore.distill.students import (
    SKLEARN_STUDENTS,
    Student,
    StudentConfig,
    bias_only_student,
    fit_student,
    holdout_split,
    train_student,
)
from vizcore.distill.synthesis import (
    SynthesisConfig,
    SyntheticSet,
    label_with_teacher,
)
from vizcore.metrics import classification_report, predict_logits
from vizcore.models import build_model

JOB_KIND = "distill"
Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DistillConfig(Config):
    """A whole run: teacher, synthesis, students, and whether to train the real-data baseline.

    ``sizes``: also train the first student on the first ``s`` synthetic images (and ``s`` real ones) for
    each size, for accuracy-against-size (seed 000 Table 2). ``preset='bias-only'`` adds seed 003's
    extreme-compression student (section 10); a seed table's name (``table1`` ...) only marks a run made with
    that table's settings (:func:`vizcore.distill.seed_tables.preset_config`), shown beside the seed's figures.
    ``engine``: torch students are trained by the one engine
    (:mod:`vizcore.distill.engine`, the teacher's logits on every batch) instead of on the stored labels;
    a method with a generator in the loop (DFAD, online, kegnet-online) needs it; an online method's synthetic
    set is then the engine's memory bank.
    """

    teacher: str
    dataset: str
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    students: tuple[StudentConfig, ...] = (StudentConfig(),)
    baseline: bool = True
    sizes: tuple[int, ...] = ()
    preset: str = ""
    engine: EngineConfig | None = None

    def __post_init__(self):
        if needs_engine(self.synthesis.method) and self.engine is None:
            raise ValueError(f"{self.synthesis.method} trains a generator against the student: it needs the engine")
        if is_online(self.synthesis.method) and (self.sizes or self.preset):
            raise ValueError("an online method has no fixed set to sweep sizes or take prototypes from")
        if any(v < 1 or v > self.synthesis.n for v in self.sizes):
            raise ValueError(f"sizes must lie between 1 and the synthetic set's {self.synthesis.n} images")

    @classmethod
    def from_dict(cls, d: dict) -> DistillConfig:
        return cls(**{**d, "synthesis": SynthesisConfig(**d["synthesis"]),
                      "students": tuple(StudentConfig(**s) for s in d["students"]), "sizes": tuple(d.get("sizes", ())),
                      "engine": EngineConfig(**d["engine"]) if d.get("engine") else None})


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


def engine_student(teacher: nn.Module, synth: SyntheticSet | None, config: StudentConfig, engine: EngineConfig, *,
                   input_shape, num_classes: int, progress: Progress | None = None,
                   cancelled: Callable[[], bool] | None = None,
                   on_checkpoint: Callable[[int, float], None] | None = None, save_to: Path | None = None,
                   resume_from: Path | None = None) -> tuple[Student, torch.Tensor | None]:
    """A torch student trained by the engine on ``synth`` (its hold-out split selects) and/or an online
    generator; returns the student and the engine's memory bank (the images an online method kept).
    ``save_to`` / ``resume_from``: the engine's training state (see :func:`~vizcore.distill.engine.distill`)."""
    images = hold = None
    if synth is not None:
        tr, ho = holdout_split(len(synth), config.holdout, config.seed)
        images, hold = synth.images[tr], synth.images[ho]
    model = build_model(config.arch, tuple(input_shape), num_classes, seed=config.seed)
    res = distill(teacher, model, replace(engine, seed=config.seed), input_shape=input_shape, num_classes=num_classes,
                  images=images, holdout=hold, progress=progress, cancelled=cancelled, on_checkpoint=on_checkpoint,
                  save_to=save_to, resume_from=resume_from, parallel=True)
    name = f"{config.arch}-engine"
    return Student(name, config, model=res.model.cpu().eval(), selection=res.selection, seconds=res.seconds), res.bank


def _prototypes(synth: SyntheticSet) -> torch.Tensor:
    """One image per class: the synthetic image the teacher is surest belongs to it."""
    return synth.images[synth.probs.argmax(0)]


def run_distillation(teacher: nn.Module, config: DistillConfig, *, class_names: list[str], input_shape,
                     load_test: Callable[[], Split], load_train: Callable[[], Split] | None = None,
                     out_dir: Path | None = None, progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None, resume_dir: Path | None = None) -> dict:
    """Run the data-free protocol; returns the report (and writes artifacts to ``out_dir`` if given).

    ``load_train`` is called only for the real baseline and for methods that need real data (the report
    says so); ``load_test`` is called once, at the end. ``resume_dir``: the folder of an interrupted run of
    the same config, whose synthetic set and last engine checkpoints are taken up.

    Under torchrun (:mod:`vizcore.core.distributed`) every rank calls this: the synthesis is sharded, the
    engine's students train with DistributedDataParallel, and rank 0 alone trains the other students and
    baselines, reads the test split and writes; the other ranks return ``{}`` after the engine students.
    """
    k, t0 = len(class_names), time.perf_counter()
    syn_cfg = config.synthesis
    real_train = load_train() if (load_train and (config.baseline or syn_cfg.needs_real_data)) else None
    if (config.baseline or syn_cfg.needs_real_data) and real_train is None:
        raise ValueError("the real-data baseline and class averages / Loss_2 need the real training split")
    start = time.perf_counter()
    online = is_online(syn_cfg.method)
    kept = resume_dir is not None and not online and dist.broadcast((Path(resume_dir) / "synthetic.npz").exists())
    if kept:  # the interrupted run's set, from rank 0
        synth = dist.broadcast(SyntheticSet.from_npz(Path(resume_dir) / "synthetic.npz") if dist.is_main() else None)
    else:
        synth = None if online else synthesize_sharded(
            teacher, syn_cfg, input_shape=input_shape, class_names=class_names, dataset=config.dataset,
            teacher_id=config.teacher, real=real_train, progress=progress_span(progress, 0, 0.4), cancelled=cancelled)
    synth_seconds = time.perf_counter() - start
    if out_dir and synth is not None:  # written before training, so that a resumed run takes it up
        synth.to_npz(Path(out_dir) / "synthetic.npz")
    twin = frozen_copy(teacher) if config.engine or any(sc.relabel for sc in config.students) else None
    students: list[Student] = []
    n_jobs = len(config.students) + bool(config.preset == "bias-only")
    live: list[dict] = []
    engine = engine_for(syn_cfg.method, config.engine, syn_cfg.n) if config.engine else None
    # torch students first: an online method's scikit-learn students learn the first engine student's bank
    order = sorted(range(len(config.students)), key=lambda i: config.students[i].arch in SKLEARN_STUDENTS)
    trained: dict[int, Student] = {}
    for j, i in enumerate(order):
        sc = config.students[i]
        span = progress_span(progress, 0.4 + 0.4 * j / n_jobs, 0.4 + 0.4 * (j + 1) / n_jobs)
        if engine and sc.arch not in SKLEARN_STUDENTS:
            curve = {"student": f"{sc.arch}-engine", "points": []}
            live.append(curve)

            def checkpoint(step, score, curve=curve):
                curve["points"].append([step, score])
                if out_dir:
                    write_json(Path(out_dir) / "live.json", live)
            state = f"engine-state-{i}.pt"
            trained[i], bank = engine_student(twin, synth if not online else None, sc, engine, input_shape=input_shape,
                                              num_classes=k, progress=span, cancelled=cancelled, on_checkpoint=checkpoint,
                                              save_to=Path(out_dir) / state if out_dir else None,
                                              resume_from=Path(resume_dir) / state if resume_dir else None)
            if synth is None:  # the online method's images: its memory bank, labelled by the teacher
                synth = _labelled(twin, bank, syn_cfg, class_names, config)
                synth_seconds = trained[i].seconds
        elif dist.is_main():  # not data-parallel: rank 0 alone
            if synth is None:
                raise ValueError("an online method trains scikit-learn students on its bank: list a torch student first")
            trained[i] = train_student(synth, sc, teacher=twin, cancelled=cancelled, progress=span)
    if not dist.is_main():
        return {}
    students = [trained[i] for i in range(len(config.students))]
    if out_dir and online:
        synth.to_npz(Path(out_dir) / "synthetic.npz")
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
                      "used_real_data": syn_cfg.needs_real_data, "online": online,
                      "synthetic_sha256": synthetic_sha256(synth), "resumed": bool(resume_dir)},
        "world_size": dist.world_size(),
        "engine": engine.to_dict() if engine else None, "live": live,
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


def _labelled(teacher: nn.Module, images: torch.Tensor, syn_cfg: SynthesisConfig, class_names, config) -> SyntheticSet:
    labels, logits, probs = label_with_teacher(teacher, images)
    return SyntheticSet(images=images, labels=labels, logits=logits, probs=probs, class_names=list(class_names),
                        config={**asdict(syn_cfg), "dataset": config.dataset}, teacher_id=config.teacher,
                        stats={"class_counts": torch.bincount(labels, minlength=len(class_names)).tolist()})


# ------------------------------------------------------------------------------------------ jobs and the store


def start_run(config: DistillConfig, wait: bool = False, resume: str | None = None,
              data_root: str | None = None, job_id: str | None = None) -> JobInfo | None:
    """Run :func:`run_distillation` as a background job on a zoo / workspace teacher; artifacts in the job folder.

    ``resume``: the id of an interrupted run of this config, taken up from its synthetic set and checkpoints.
    ``data_root``: where the dataset's files are (see :func:`vizcore.data.load_dataset`).
    ``job_id``: run as that queued job (:func:`start_parallel_run`'s) instead of a new one.
    Under torchrun, rank 0 runs the job and the other ranks work beside it without one (they return None).
    """
    from vizcore import zoo
    from vizcore.data import load_dataset

    entry = zoo.get_entry(config.teacher)
    cache: dict = {}

    def dataset():
        if "ds" not in cache:
            cache["ds"] = load_dataset(config.dataset, root=data_root)
        return cache["ds"]

    resume_dir = jobs_dir() / resume if resume else None  # read by rank 0 only

    def work(ctx) -> dict:
        teacher = zoo.load_model(entry).to(dist.device())
        rep = run_distillation(
            teacher, config, class_names=list(entry.card.class_names), input_shape=tuple(entry.card.input_shape),
            load_train=lambda: (dataset().train_x, dataset().train_y), load_test=lambda: (dataset().test_x, dataset().test_y),
            out_dir=ctx.dir if ctx else None, progress=ctx.progress if ctx else None,
            cancelled=ctx.cancelled if ctx else None, resume_dir=resume_dir)
        return summary(rep) if ctx else None

    if not dist.is_main():
        return work(None)
    title = _title(config, entry.id, dist.world_size()) + (f" (resumes {resume})" if resume else "")
    return start_job(JOB_KIND, title, work, config.to_dict(), wait=wait, job_id=job_id)


def _title(config: DistillConfig, teacher_id: str, processes: int) -> str:
    """A run's title in the jobs list."""
    return (f"{config.synthesis.method} x{config.synthesis.n} from {teacher_id} -> "
            + ", ".join(s.name for s in config.students) + (f" on {processes} processes" if processes > 1 else ""))


def local_processes() -> int:
    """How many processes a run can use on this machine: one per GPU, else one per CPU core."""
    return torch.cuda.device_count() if torch.cuda.is_available() else os.cpu_count() or 1


def start_parallel_run(config: DistillConfig, processes: int, data_root: str | None = None) -> JobInfo:
    """:func:`start_run` on ``processes`` local processes: ``torchrun --standalone -m vizcore distill --job ID``
    takes up a queued job (one job, one progress bar, the usual Cancel) and runs it sharded (issue 14)."""
    from vizcore.core.workspace import workspace

    if not 2 <= processes <= local_processes():
        raise ValueError(f"this machine runs 2 to {local_processes()} processes, not {processes}")
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "vizcore", "distill"] + (["--data-root", str(data_root)] if data_root else [])
    root = str(Path(__file__).resolve().parents[2])
    env = {"VIZCORE_HOME": str(workspace()), "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
    return start_process_job(JOB_KIND, _title(config, config.teacher, processes), config.to_dict(), argv, env)


def summary(report: dict) -> dict:
    """The figures a runs table shows."""
    best = max(report["students"], key=lambda r: r["accuracy"])
    return {"teacher_accuracy": report["teacher"]["accuracy"], "best_student": best["name"],
            "best_accuracy": best["accuracy"], "best_ratio": best["ratio"],
            "baseline_accuracy": max((b["accuracy"] for b in report["baselines"]), default=None),
            "synthesis_seconds": report["synthesis"]["seconds"], "seconds": report["seconds"],
            "world_size": report.get("world_size", 1), "synthetic_sha256": report["synthesis"].get("synthetic_sha256")}


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
