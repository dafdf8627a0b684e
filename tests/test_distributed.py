"""Scale-out with torchrun (issue 14): CPU processes over gloo on loopback give the one-process result.

The multi-process tests start real process groups: ``torch.multiprocessing`` workers that join through
torchrun's environment variables, and ``torchrun --standalone`` itself for the CLI (one thread per process).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from vizcore.core import distributed as dist

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shards_are_contiguous_blocks_whose_union_is_the_range():
    for n in (0, 1, 7, 10, 1001):
        for world in (1, 2, 3, 8):
            blocks = [dist.shard(n, r, world) for r in range(world)]
            assert [i for b in blocks for i in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_item_seeds_depend_on_seed_and_index_only():
    assert dist.item_seed(7, 0) == 7  # a one-chunk job is the job it always was
    seeds = {dist.item_seed(7, j) for j in range(1, 200)}
    assert len(seeds) == 199 and dist.item_seed(7, 3) == dist.item_seed(7, 3) != dist.item_seed(8, 3)
    assert dist.world_size() == 1 and dist.rank() == 0 and dist.rank_seed(5) == 5


def _torchrun_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    code = "\n".join(text.split("```")[1::2])  # the fenced blocks only: prose may start a line with the word
    lines = [ln.split("#")[0].strip() for ln in code.splitlines() if ln.strip().startswith("torchrun ")]
    return [shlex.split(ln.replace("\\", "")) for ln in lines]


def test_readme_torchrun_commands_parse_in_torchrun_and_in_vizcore():
    from torch.distributed.run import get_args_parser

    from vizcore.cli import build_parser

    cmds = _torchrun_commands()
    assert len(cmds) >= 3
    for argv in cmds:
        ns = get_args_parser().parse_args(argv[1:])  # argparse exits on "ambiguous option"
        assert ns.module and ns.training_script == "vizcore"
        assert ns.training_script_args == argv[argv.index("vizcore") + 1:]
        args = build_parser().parse_args(ns.training_script_args)
        assert callable(args.func)


def test_every_distill_option_has_a_spelling_torchrun_passes_through():
    from torch.distributed.run import get_args_parser

    from vizcore.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for cmd in ("distill", "distill-preset"):
        for action in sub.choices[cmd]._actions:
            ok = []
            for opt in action.option_strings:
                try:
                    ns = get_args_parser().parse_args(["--nproc_per_node", "2", "-m", "vizcore", cmd, opt, "1"])
                    ok.append(ns.training_script_args == [cmd, opt, "1"])
                except SystemExit:
                    ok.append(False)
            assert not action.option_strings or any(ok), f"{cmd} {action.option_strings} cannot pass torchrun"


def _worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank: sharded synthesis, then a DDP engine student; writes what it got to ``out``-RANK.json."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from vizcore import data, zoo
    from vizcore.distill.engine import EngineConfig
    from vizcore.distill.protocol import engine_student
    from vizcore.distill.sharded import synthesize_sharded, synthetic_sha256
    from vizcore.distill.students import StudentConfig
    from vizcore.distill.synthesis import SynthesisConfig
    from vizcore.metrics import predict_logits

    assert dist.init() == (world > 1)
    try:
        entry = zoo.get_entry("zoo:digits-cnn")
        teacher, shape = zoo.load_model(entry), tuple(entry.card.input_shape)
        syn = SynthesisConfig(method="generator-am", n=256, max_steps=30, shard_images=64)
        synth = synthesize_sharded(teacher, syn, input_shape=shape, class_names=list(entry.card.class_names))
        keg = synthesize_sharded(teacher, SynthesisConfig(method="kegnet", n=90, generators=3, train_steps=4,
                                                          batch_size=16), input_shape=shape,
                                 class_names=list(entry.card.class_names))
        engine = EngineConfig(steps=150, lr=5e-3, batch_size=64, mix="none", shift=0, brightness=False, checkpoints=3)
        student, _ = engine_student(teacher, synth, StudentConfig(arch="cnn_s"), engine, input_shape=shape,
                                    num_classes=10)
        ds = data.load_dataset("digits")
        acc = float((predict_logits(student.model, ds.test_x).argmax(1) == ds.test_y).float().mean())
        # the online generator: one for all ranks, data-parallel like the student
        from vizcore.distill.engine import distill
        from vizcore.models import build_model

        online = distill(teacher, build_model("cnn_s", shape, 10, seed=0),
                         EngineConfig(steps=8, batch_size=32, generator=True, student_per_generator=2, bank=64,
                                      checkpoints=2), input_shape=shape, num_classes=10, parallel=True)
        g_sha = dist.sha256_tensors(*online.generator.parameters())  # (BatchNorm statistics are per rank)
        Path(f"{out}-{rank}.json").write_text(json.dumps({"sha": synthetic_sha256(synth), "n": len(synth),
                                                          "accuracy": acc, "world": dist.world_size(),
                                                          "kegnet_sha": synthetic_sha256(keg),
                                                          "kegnet_shards": keg.stats["trained_by_rank"],
                                                          "generator_sha": g_sha}))
    finally:
        dist.teardown()


def _spawn(world: int, out: Path) -> list[dict]:
    mp.spawn(_worker, args=(world, free_port(), str(out)), nprocs=world, join=True)
    return [json.loads(Path(f"{out}-{r}.json").read_text()) for r in range(world)]


def test_two_processes_make_the_one_process_set_and_as_good_a_student(tmp_path):
    one = _spawn(1, tmp_path / "one")
    two = _spawn(2, tmp_path / "two")
    assert [r["world"] for r in one + two] == [1, 2, 2]
    assert one[0]["n"] == two[0]["n"] == 256
    assert one[0]["sha"] == two[0]["sha"] == two[1]["sha"]  # the union of the shards is the one-process set
    # KegNet's generators shared out (2 + 1) and gathered: the one-process set, bytes and all
    assert [r["kegnet_shards"] for r in one + two] == [[[0, 1, 2]], [[0, 1], [2]], [[0, 1], [2]]]
    assert one[0]["kegnet_sha"] == two[0]["kegnet_sha"] == two[1]["kegnet_sha"]
    assert two[0]["accuracy"] == two[1]["accuracy"]  # DDP keeps the ranks' students in step
    assert two[0]["generator_sha"] == two[1]["generator_sha"]  # and the ranks' generator
    assert one[0]["accuracy"] > 0.3 and two[0]["accuracy"] > 0.3  # well above chance (0.1)
    assert abs(one[0]["accuracy"] - two[0]["accuracy"]) <= 0.12


def _torchrun(home: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "VIZCORE_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "vizcore", "distill", "--teacher", "zoo:digits-cnn",
           "--method", "uniform-noise", "--images", "300", "--shard-images", "100", "--student", "cnn_s",
           "--budget", "200", "--no-baseline", "--json", *extra]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rank_pid(parent: int, rank: int) -> int:
    """The worker of ``rank`` among the descendants of ``parent`` (read from their environment)."""
    for _ in range(600):
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                env = (d / "environ").read_bytes().split(b"\0")
                stat = (d / "stat").read_text().split()
            except OSError:
                continue
            if int(stat[3]) == parent and f"RANK={rank}".encode() in env:
                return int(d.name)
        time.sleep(0.1)
    raise AssertionError(f"no rank {rank} under {parent}")


def test_torchrun_writes_on_rank_0_only_and_a_killed_rank_fails_cleanly_then_resumes(tmp_path):
    from vizcore.core.jobs import get_job

    home = tmp_path / "home"
    proc = _torchrun(home)
    state = None
    for _ in range(3000):  # until rank 0 has written its first engine checkpoint
        found = list((home / "jobs").glob("*/engine-state-0.pt")) if (home / "jobs").exists() else []
        if found or proc.poll() is not None:
            state = found[0] if found else None
            break
        time.sleep(0.1)
    assert state is not None, proc.communicate()[1][-2000:]
    os.kill(_rank_pid(proc.pid, 1), signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    jobs = list((home / "jobs").iterdir())
    assert len(jobs) == 1  # rank 1 made no job of its own
    run = jobs[0]
    os.environ["VIZCORE_HOME"] = str(home)  # the fixture's home is restored after the test
    assert get_job(run.name).state in ("failed", "interrupted")
    assert not (run / "report.json").exists() and not list(run.glob(".*.part"))  # nothing half-written
    assert (run / "synthetic.npz").exists()

    proc = _torchrun(home, "--resume", run.name)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert len(lines) == 1  # one rank prints
    res = json.loads(lines[0])
    assert res["world_size"] == 2 and res["run_id"] != run.name
    rep = json.loads((home / "jobs" / res["run_id"] / "report.json").read_text())
    assert rep["synthesis"]["resumed"] and rep["synthesis"]["synthetic_sha256"] == res["synthetic_sha256"]
    from vizcore.distill.sharded import synthetic_sha256
    from vizcore.distill.synthesis import SyntheticSet

    assert synthetic_sha256(SyntheticSet.from_npz(run / "synthetic.npz")) == res["synthetic_sha256"]
    first_step = rep["live"][0]["points"][0][0]
    assert first_step > 20  # training went on from the checkpoint, not from step 1 (checkpoints every 20 steps)
    assert sorted(p.name for p in (home / "jobs" / res["run_id"]).iterdir() if not p.name.startswith(".")) == [
        "engine-state-0.pt", "job.json", "live.json", "report.json", "student-cnn_s-engine.safetensors", "synthetic.npz"]


@pytest.mark.parametrize("bad", [["--resume", "nope"]])
def test_resume_of_an_unknown_run_is_a_message(capsys, bad):
    from vizcore.cli import main

    code = main(["distill", "--teacher", "zoo:digits-cnn", "--method", "uniform-noise", "--images", "20", *bad])
    assert code == 2 and "no run 'nope' to resume" in capsys.readouterr().err


def _finished(job_id: str, polls: int = 6000):
    from vizcore.core import jobs

    for _ in range(polls):
        job = jobs.get_job(job_id)
        if not job.active:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.state}: {job.message}")


def test_a_process_job_whose_command_dies_fails_with_its_last_words():
    from vizcore.core import jobs

    job = jobs.start_process_job("distill", "doomed", {}, [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    assert jobs.get_job(job.id).pid != os.getpid()  # the command's process, not ours
    done = _finished(job.id)
    assert done.state == "failed" and "exit 3" in done.error and "boom" in done.error


def test_the_app_starts_one_job_on_two_processes_and_cancels_another():
    from vizcore.core import jobs
    from vizcore.distill import protocol
    from vizcore.distill.sharded import synthetic_sha256
    from vizcore.distill.students import StudentConfig
    from vizcore.distill.synthesis import SynthesisConfig, SyntheticSet
    from vizcore.distill.engine import EngineConfig

    def config(steps):
        return protocol.DistillConfig(teacher="zoo:digits-cnn", dataset="digits",
                                      synthesis=SynthesisConfig(method="uniform-noise", n=200, shard_images=50),
                                      students=(StudentConfig(arch="cnn_s"),), baseline=False,
                                      engine=EngineConfig(steps=steps, batch_size=64, checkpoints=2))

    with pytest.raises(ValueError, match="processes"):
        protocol.start_parallel_run(config(60), protocol.local_processes() + 1)
    job = protocol.start_parallel_run(config(60), 2)
    done = _finished(job.id)
    assert done.state == "done", (done.error, (done.dir / "process.log").read_text()[-2000:])
    assert done.result["world_size"] == 2 and "on 2 processes" in done.title
    assert [j.id for j in jobs.list_jobs(protocol.JOB_KIND)] == [job.id]  # one job for both ranks
    assert done.result["synthetic_sha256"] == synthetic_sha256(SyntheticSet.from_npz(done.dir / "synthetic.npz"))

    slow = protocol.start_parallel_run(config(100_000), 2)
    for _ in range(6000):  # until the ranks are in the engine (the students' share of the bar starts at 0.4)
        if jobs.get_job(slow.id).progress > 0.4:
            break
        time.sleep(0.1)
    jobs.cancel_job(slow.id)
    assert _finished(slow.id).state == "cancelled"
    assert not (slow.dir / "report.json").exists()


def _train_and_compress(rank: int, world: int, port: int, out: str) -> None:
    """One rank of ``train`` then ``compress`` (KegNet repair), as the CLI calls them under torchrun."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), VIZCORE_HOME=f"{out}-home")
    torch.set_num_threads(1)
    from vizcore import data
    from vizcore.distill.compression import RepairConfig, start_compression_job
    from vizcore.train import TrainConfig, train_teacher

    assert dist.init() == (world > 1)
    try:
        ds = data.load_dataset("digits")
        entry = train_teacher(ds, "mlp", TrainConfig(epochs=4, lr=0.01, batch_size=64), "t")
        job = start_compression_job("zoo:digits-cnn", ratio=4.0, methods=("kegnet",), wait=True,
                                    config=RepairConfig(n=200, kegnet_n=200, epochs=2, kegnet_steps=3, generators=2),
                                    save_as="small")
        res = {"trained": entry is not None, "compressed": job is not None}
        if entry is not None:
            from vizcore import zoo

            w = zoo.load_model(entry).state_dict()
            res |= {"accuracy": entry.card.metrics["accuracy"], "weights": [float(t.double().sum()) for t in w.values()],
                    "job": job.state, "rows": [r["approach"] for r in job.result["rows"]], "saved": job.result["saved"]}
        Path(f"{out}-{rank}.json").write_text(json.dumps(res))
    finally:
        dist.teardown()


def test_train_and_compress_on_two_processes_save_once_and_train_the_one_process_model(tmp_path):
    res = {}
    for world in (1, 2):
        mp.spawn(_train_and_compress, args=(world, free_port(), str(tmp_path / f"w{world}")), nprocs=world, join=True)
        res[world] = [json.loads((tmp_path / f"w{world}-{r}.json").read_text()) for r in range(world)]
    one, (r0, r1) = res[1][0], res[2]
    assert r1 == {"trained": False, "compressed": False}  # rank 1 worked beside rank 0 and wrote nothing
    assert r0["job"] == one["job"] == "done" and r0["rows"] == one["rows"] == ["Original", "T", "T+KegNet"]
    home = tmp_path / "w2-home"
    assert len(list((home / "jobs").iterdir())) == 1  # one compression job
    assert sorted(p.name for p in (home / "models").iterdir()) == sorted(
        p.name for p in (tmp_path / "w1-home" / "models").iterdir())  # the teacher and the compressed model, once
    # the same batches split between the ranks, gradients all-reduced: the one-process teacher up to float sums
    assert abs(r0["accuracy"] - one["accuracy"]) <= 0.02
    assert all(abs(a - b) <= 1e-4 * (1 + abs(b)) for a, b in zip(r0["weights"], one["weights"]))


def test_a_command_that_is_not_sharded_runs_once_on_rank_0(tmp_path):
    env = {**os.environ, "VIZCORE_HOME": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "vizcore", "zoo", "list", "--json"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = [ln for ln in done.stdout.splitlines() if ln.startswith(("[", "{"))]
    assert len(printed) == 1 and "zoo:digits-cnn" in printed[0]  # one rank answered
    assert done.stderr.count("'zoo' is not sharded: rank 0 runs it alone") == 1


def test_torchrun_runs_the_default_method_past_rank_0s_estimate(tmp_path):
    """Rank 0 times a probe of KegNet before the run: alone, so its generators' gather cannot meet rank 1's."""
    env = {**os.environ, "VIZCORE_HOME": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "vizcore", "distill", "--teacher",
                           "zoo:digits-cnn", "--images", "200", "--train-steps", "3", "--budget", "20", "--student",
                           "cnn_s", "--no-baseline", "--json"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["method"] == "kegnet-online" and out["world_size"] == 2 and len(out["synthetic_sha256"]) == 64
    rep = json.loads((tmp_path / "jobs" / out["run_id"] / "report.json").read_text())
    assert rep["synthesis"]["stats"]["trained_by_rank"] == [[0, 1, 2], [3, 4]]
