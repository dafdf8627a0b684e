"""Start the app and save a screenshot of every page (README images and a look at what users see).

Run: python scripts/screenshots.py [OUT_DIR] [PAGE ...]   (default docs/screenshots, every page; the Visualize
page is shot after one press of Generate with its defaults; the quiz with a room of 14 that has answered 20
Fashion-MNIST test pictures, answers shown, and one participant's phone)
"""

import asyncio
import os
import random
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]  # tests/app_server.py, bench/classroom.py

from app_server import browser_page, running_app, wait_rendered  # noqa: E402

ROOM, CONFUSED = 14, {0: 6, 6: 0, 2: 4, 4: 2, 3: 0, 9: 7, 7: 5, 5: 7, 8: 2, 1: 3}  # people; what a slip names

# url path -> text that shows the page has rendered
PAGES = {
    "": "Test accuracy",
    "models_data": "Train a teacher",
    "visualize": "Visualize",
    "gradients": "PG maps on one scale",  # the last thing the page draws
    "looks_like": "Looks like",
    "perturb": "Perturb",
    "knockout": "Overall accuracy",  # the live numbers, drawn once the evaluation set is cached
    "student_lab": "Student lab",
    "quiz": "Classroom quiz",
}


def room(url: str, home: Path) -> str:
    """A quiz of 20 Fashion-MNIST test pictures that a room of websocket participants (bench/classroom.py) has
    answered, each right four times in five; returns its code."""
    os.environ["VIZCORE_HOME"] = str(home)
    import classroom as bench
    import torch

    from vizcore import classroom as C
    from vizcore import zoo
    from vizcore.data import load_dataset

    ds = load_dataset("fashion-mnist")
    x, truth = ds.test_x[:20], ds.test_y[:20].tolist()
    with torch.no_grad():
        said = {e.id: zoo.load_model(e)(x).argmax(1).tolist() for e in zoo.list_models() if e.card.dataset == ds.name}
    model = "zoo:fashion-mnist-cnn"
    quiz = C.create_quiz(x.numpy(), truth, ds.class_names, kind="test", model_answers=said.pop(model),
                         others=dict(list(said.items())[:4]), dataset=ds.name, model_id=model)

    def choose(i: int, q: int, k: int) -> int:
        return truth[q] if random.Random(100 * i + q).random() < 0.8 else CONFUSED.get(truth[q], (truth[q] + 1) % k)
    with ThreadPoolExecutor(1) as pool:  # a thread of its own: Playwright's sync API holds this one's event loop
        pool.submit(asyncio.run, bench.ws_people(url, quiz, ROOM, choose)).result()
    return quiz.code


def quiz_shots(page, url: str, code: str, out: Path) -> None:
    """The presenter's screen with the answers shown, then a phone (one more person) at its fourth picture."""
    page.set_viewport_size({"width": 1400, "height": 1900})  # down to seed 000's rates
    page.get_by_text("Show the answers").click()
    wait_rendered(page, "fooling example")
    page.wait_for_timeout(2500)
    page.screenshot(path=str(out / "quiz.png"))
    print(out / "quiz.png")
    phone = page.context.browser.new_context(viewport={"width": 412, "height": 860}).new_page()
    phone.goto(f"{url}/?quiz={code}")
    for q in range(3):
        phone.get_by_text(f"Picture {q + 1} of").wait_for(timeout=120_000)
        phone.locator(f".st-key-quiz_ans_{q}_9 button").click()
    phone.get_by_text("Picture 4 of").wait_for(timeout=120_000)
    phone.mouse.move(5, 5)
    phone.wait_for_timeout(1000)
    phone.screenshot(path=str(out / "quiz_phone.png"))
    print(out / "quiz_phone.png")


def main(out: Path, only: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="vizcore-shots-"))
    with running_app(home) as url, browser_page(1400, 1500) as page:
        for path, marker in PAGES.items():
            if only and (path or "overview") not in only:
                continue
            code = room(url, home) if path == "quiz" else None
            page.goto(f"{url}/{path}")
            # the marker in the page itself, not the sidebar's link of the same name
            page.locator("[data-testid=stMain]").get_by_text(marker).first.wait_for(timeout=300_000)
            wait_rendered(page, marker)
            if path == "visualize":  # show what a teacher gets from one press of Generate with the defaults
                page.get_by_role("button", name="Generate").click()
                wait_rendered(page, "Recognized by other models", timeout_ms=1_800_000)
            if code:
                quiz_shots(page, url, code, out)
                continue
            page.wait_for_timeout(1500)
            name = path or "overview"
            page.screenshot(path=str(out / f"{name}.png"), full_page=path == "visualize")
            print(out / f"{name}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots", sys.argv[2:])
