"""Start the app and save a screenshot of every page (README images and a look at what users see).

Run: python scripts/screenshots.py [OUT_DIR]   (default docs/screenshots)
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
    "gradients": "Prediction gradients",
    "looks_like": "Looks like",
    "perturb": "Perturb",
    "knockout": "Knockout",
    "student_lab": "Student lab",
}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with running_app(Path(tempfile.mkdtemp(prefix="vizcore-shots-"))) as url, browser_page(1400, 1500) as page:
        for path, marker in PAGES.items():
            page.goto(f"{url}/{path}")
            wait_rendered(page, marker)
            page.wait_for_timeout(1500)
            name = path or "overview"
            page.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
