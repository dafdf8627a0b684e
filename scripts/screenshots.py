"""Start the app and save a screenshot of every page (README images and a look at what users see).

Run: python scripts/screenshots.py [OUT_DIR] [PAGE ...]   (default docs/screenshots, every page; the Visualize
page is shot after one press of Generate with its defaults)
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/app_server.py

from app_server import browser_page, running_app, wait_rendered  # noqa: E402

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


def main(out: Path, only: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with running_app(Path(tempfile.mkdtemp(prefix="vizcore-shots-"))) as url, browser_page(1400, 1500) as page:
        for path, marker in PAGES.items():
            if only and (path or "overview") not in only:
                continue
            page.goto(f"{url}/{path}")
            # the marker in the page itself, not the sidebar's link of the same name
            page.locator("[data-testid=stMain]").get_by_text(marker).first.wait_for(timeout=300_000)
            wait_rendered(page, marker)
            if path == "visualize":  # show what a teacher gets from one press of Generate with the defaults
                page.get_by_role("button", name="Generate").click()
                wait_rendered(page, "Recognized by other models", timeout_ms=1_800_000)
            page.wait_for_timeout(1500)
            name = path or "overview"
            page.screenshot(path=str(out / f"{name}.png"), full_page=path == "visualize")
            print(out / f"{name}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots", sys.argv[2:])
