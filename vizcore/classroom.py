"""A classroom quiz: seed 000's human experiment (section 4.2, Table 4) made into a lesson.

The presenter freezes a set of pictures (class visualizations, generated training images, perturbed or real
test images) with the class each is meant to show, the model's answer and other classifiers' answers. Each
person in the room then names the class of every picture on their own device; the tally compares the room with
the model and with the other classifiers.

Everything lives in the workspace (``quizzes/CODE/``), never in one session's memory, so any number of app
sessions (or a restarted server) see the same quiz:

* ``quiz.json`` is written once, atomically; closing the quiz rewrites it atomically.
* every answer is its own small file ``answers/PARTICIPANT/QUESTION.json``, written atomically: thirty people
  answering at once never write the same file, so nothing is lost and no lock is needed; answering a question
  again replaces that person's answer (one answer per person and question).

No PyTorch here: images come in as arrays in [0, 1] and are stored as PNGs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vizcore.core.workspace import atomic_write, read_json, workspace, write_json

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed on phones
CODE_LEN = 4
NO_ANSWER = -1
KINDS = {"test": "real test images (control)", "visualizations": "class visualizations",
         "generated": "generated training images", "perturbed": "perturbed test images"}
_PID = re.compile(r"^[0-9a-f]{12}$")


class QuizError(ValueError):
    """A quiz request that cannot be served; the message says why in one line."""


@dataclass(frozen=True)
class Quiz:
    """One frozen set of questions. ``labels[q]``: the class picture q is meant to show (the visualized class,
    the class a perturbation pushed towards, the true class of a test image); ``sources[q]``: the class it
    came from, for perturbed images; ``model_answers`` and ``others``: classifiers' answers (argmax)."""

    code: str
    title: str
    kind: str
    dataset: str
    model_id: str
    class_names: list[str]
    labels: list[int]
    model_answers: list[int]
    others: dict[str, list[int]] = field(default_factory=dict)
    sources: list[int] | None = None
    created: float = 0.0
    closed: bool = False

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def dir(self) -> Path:
        return quizzes_dir() / self.code

    def image_path(self, q: int) -> Path:
        return self.dir / "images" / f"{q:03d}.png"


def quizzes_dir() -> Path:
    return workspace() / "quizzes"


def _check_code(code: str) -> str:
    code = str(code).strip().upper()
    if len(code) != CODE_LEN or any(c not in ALPHABET for c in code):
        raise QuizError(f"'{code}' is not a quiz code ({CODE_LEN} letters and digits, e.g. K7PX)")
    return code


def _png(image: np.ndarray) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes, blown up (nearest neighbour) to at least 224 pixels for phones."""
    import io

    from PIL import Image

    a = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    a = (a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)) * 255
    k = max(1, -(-224 // max(a.shape[:2])))
    img = Image.fromarray(a.round().astype(np.uint8)).resize((a.shape[1] * k, a.shape[0] * k), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def create_quiz(images: np.ndarray, labels: Sequence[int], class_names: Sequence[str], *, model_answers: Sequence[int],
                kind: str = "test", title: str = "", dataset: str = "", model_id: str = "",
                others: Mapping[str, Sequence[int]] | None = None, sources: Sequence[int] | None = None) -> Quiz:
    """Freeze a quiz under a new code: images (N, C, H, W) in [0, 1], one intended class per image."""
    images = np.asarray(images)
    n = len(labels)
    if kind not in KINDS:
        raise QuizError(f"kind must be one of {', '.join(KINDS)}, not '{kind}'")
    if images.ndim != 4 or len(images) != n or n == 0:
        raise QuizError(f"need (N, C, H, W) images and one label each; got {images.shape} and {n} labels")
    k = len(class_names)
    columns = {"labels": labels, "model answers": model_answers,
               **{f"{m}'s answers": v for m, v in (others or {}).items()}}
    if sources is not None:
        columns["sources"] = sources
    for what, v in columns.items():
        if len(v) != n or any(not 0 <= int(c) < k for c in v):
            raise QuizError(f"{what}: need {n} classes in 0..{k - 1}")
    root = quizzes_dir()
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LEN))
        try:
            (root / code).mkdir()  # atomic: two presenters never get the same code
            break
        except FileExistsError:
            continue
    else:
        raise QuizError("no free quiz code left; delete old quizzes from the workspace")
    quiz = Quiz(code=code, title=title or KINDS[kind], kind=kind, dataset=dataset, model_id=model_id,
                class_names=list(class_names), labels=[int(c) for c in labels],
                model_answers=[int(c) for c in model_answers],
                others={m: [int(c) for c in v] for m, v in (others or {}).items()},
                sources=None if sources is None else [int(c) for c in sources], created=time.time())
    for q in range(n):
        atomic_write(quiz.image_path(q), _png(images[q]))
    write_json(quiz.dir / "quiz.json", asdict(quiz))
    return quiz


def get_quiz(code: str) -> Quiz:
    code = _check_code(code)
    path = quizzes_dir() / code / "quiz.json"
    if not path.exists():
        raise QuizError(f"there is no quiz {code}: check the code with your presenter")
    return Quiz(**read_json(path))


def list_quizzes() -> list[Quiz]:
    """Every quiz in the workspace, newest first."""
    out = []
    for p in quizzes_dir().glob("*/quiz.json") if quizzes_dir().exists() else []:
        try:
            out.append(Quiz(**read_json(p)))
        except (OSError, ValueError, TypeError):
            continue  # a folder being created or a foreign file
    return sorted(out, key=lambda q: -q.created)


def close_quiz(code: str, closed: bool = True) -> Quiz:
    """Stop (or reopen) taking answers."""
    quiz = get_quiz(code)
    data = asdict(quiz) | {"closed": closed}
    write_json(quiz.dir / "quiz.json", data)
    return Quiz(**data)


def join(code: str, name: str = "") -> str:
    """A new participant id for quiz ``code`` (its display name is optional)."""
    quiz = get_quiz(code)
    pid = secrets.token_hex(6)
    write_json(quiz.dir / "participants" / f"{pid}.json", {"name": name.strip()[:40], "joined": time.time()})
    return pid


def record_answer(code: str, participant: str, question: int, answer: int) -> None:
    """Store ``participant``'s class for ``question``; answering again replaces the earlier answer."""
    quiz = get_quiz(code)
    if quiz.closed:
        raise QuizError(f"quiz {quiz.code} is closed")
    if not _PID.match(str(participant)) or not (quiz.dir / "participants" / f"{participant}.json").exists():
        raise QuizError("unknown participant: open the quiz link again to join")
    if not 0 <= int(question) < quiz.n:
        raise QuizError(f"question must be in 0..{quiz.n - 1}")
    if not 0 <= int(answer) < len(quiz.class_names):
        raise QuizError(f"answer must be a class in 0..{len(quiz.class_names) - 1}")
    write_json(quiz.dir / "answers" / participant / f"{int(question):03d}.json",
               {"answer": int(answer), "t": time.time()})


def answers(code: str, participant: str | None = None) -> dict[str, dict[int, dict]]:
    """participant -> question -> {"answer", "t"} (time.time() of the answer), read from the workspace;
    only ``participant``'s when given."""
    root = get_quiz(code).dir / "answers"
    out: dict[str, dict[int, dict]] = {}
    if not root.exists():
        return out
    for person in os.scandir(root):
        if not person.is_dir() or (participant is not None and person.name != participant):
            continue
        mine = out.setdefault(person.name, {})
        for f in os.scandir(person.path):
            if f.name.endswith(".json") and not f.name.startswith("."):
                try:
                    mine[int(f.name[:-5])] = json.loads(Path(f.path).read_text())
                except (OSError, ValueError):
                    continue  # cannot happen with atomic writes; never let one file stop the tally
    return out


def participants(code: str) -> dict[str, dict]:
    root = get_quiz(code).dir / "participants"
    return {p.stem: read_json(p) for p in root.glob("*.json")} if root.exists() else {}


def room_matrix(quiz: Quiz, given: Mapping[str, Mapping[int, dict]]) -> np.ndarray:
    """The room as S in seed 000's Definitions 4.1 / 4.2: (questions, people) classes, -1 where unanswered."""
    people = sorted(given)
    m = np.full((quiz.n, len(people)), NO_ANSWER, dtype=np.int64)
    for j, p in enumerate(people):
        for q, a in given[p].items():
            if 0 <= q < quiz.n:
                m[q, j] = a["answer"]
    return m


def _share(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = (a != NO_ANSWER) & (b != NO_ANSWER)
    return float((a[ok] == b[ok]).mean()) if ok.any() else None


def tally(quiz: Quiz, given: Mapping[str, Mapping[int, dict]] | None = None) -> dict:
    """The room against the model and the other classifiers (seed 000 Table 4, with the room as S_2).

    Returns per-question counts, the room's majority answer, and for each "classifier" (the room's majority,
    the average person, the model, each other classifier) its accuracy against the intended classes and its
    agreement with the model.
    """
    given = answers(quiz.code) if given is None else given
    m = room_matrix(quiz, given)
    k = len(quiz.class_names)
    counts = np.zeros((quiz.n, k), dtype=np.int64)
    for q in range(quiz.n):
        row = m[q][m[q] != NO_ANSWER]
        counts[q] = np.bincount(row, minlength=k)
    answered = counts.sum(1)
    majority = np.where(answered > 0, counts.argmax(1), NO_ANSWER)
    labels, model = np.asarray(quiz.labels), np.asarray(quiz.model_answers)
    people = [m[:, j] for j in range(m.shape[1])]
    per_person_acc = [v for v in (_share(p, labels) for p in people) if v is not None]
    per_person_agree = [v for v in (_share(p, model) for p in people) if v is not None]
    rows = [{"who": "the room (majority)", "accuracy": _share(majority, labels),
             "agrees_with_model": _share(majority, model)},
            {"who": "a person (mean)", "accuracy": float(np.mean(per_person_acc)) if per_person_acc else None,
             "agrees_with_model": float(np.mean(per_person_agree)) if per_person_agree else None},
            {"who": f"the model ({quiz.model_id})", "accuracy": _share(model, labels), "agrees_with_model": 1.0}]
    rows += [{"who": name, "accuracy": _share(np.asarray(v), labels), "agrees_with_model": _share(np.asarray(v), model)}
             for name, v in quiz.others.items()]
    return {"participants": m.shape[1], "answers": int(answered.sum()), "answered": answered.tolist(),
            "counts": counts.tolist(), "majority": majority.tolist(), "table": rows, "matrix": m}


def _balanced(labels, n: int, seed: int) -> list[int]:
    """``n`` indices taking the classes in turn (each class's images in a seeded random order)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    out: list[int] = []
    while len(out) < n and any(pools):
        for pool in pools:
            if pool and len(out) < n:
                out.append(int(pool.pop()))
    return [out[i] for i in rng.permutation(len(out))]


def question_set(kind: str, model, x, y, *, n: int = 20, seed: int = 0, eps: float = 3.0,
                 others: Mapping[str, object] | None = None) -> dict:
    """The pictures of a quiz and every classifier's answers, as :func:`create_quiz` takes them.

    ``x``, ``y``: the test split (``test``, ``perturbed``) or a set of class visualizations / generated images
    with their intended classes (``visualizations``, ``generated``); ``n`` pictures are drawn with the classes
    taking turns. ``perturbed`` takes test images the model gets right and pushes each towards another random
    class by an L2 step ``eps`` (seed 002 section 4.4); its label is that class, its source the true one.
    ``others``: {name: model} classifiers the room is compared with (seed 000's S_1).
    """
    import torch

    from vizcore.metrics import predict_logits

    if kind not in KINDS:
        raise QuizError(f"kind must be one of {', '.join(KINDS)}, not '{kind}'")
    k = int(predict_logits(model, x[:1]).shape[1])
    sources = None
    if kind == "perturbed":
        from vizcore.explain.perturb import perturb

        right = (predict_logits(model, x).argmax(1) == y).nonzero().flatten()
        idx = right[_balanced(y[right].numpy(), n, seed)]
        src = y[idx]
        g = torch.Generator().manual_seed(seed)
        target = (src + torch.randint(1, k, (len(idx),), generator=g)) % k
        images, labels, sources = perturb(model, x[idx], target, eps, steps=5), target, src.tolist()
    else:
        idx = torch.as_tensor(_balanced(y.numpy(), n, seed), dtype=torch.long)
        images, labels = x[idx], y[idx]
    if not len(images):
        raise QuizError("no pictures to ask about: the set is empty")
    answers = {name: predict_logits(m, images).argmax(1).tolist() for name, m in (others or {}).items()}
    return {"images": images.clamp(0, 1).numpy(), "labels": labels.tolist(), "sources": sources,
            "model_answers": predict_logits(model, images).argmax(1).tolist(), "others": answers}
