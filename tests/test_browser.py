"""Real browser: start `streamlit run`, open the app in Debian's Chromium, compare Overview with the card."""

import re

from app_server import browser_page, running_app, screenshot, wait_rendered

from vizcore import zoo


def test_overview_accuracy_matches_the_model_card(workspace):
    with running_app(workspace) as url, browser_page() as page:
        page.goto(url)
        wait_rendered(page, "Test accuracy")
        page.wait_for_selector("[data-testid=stPlotlyChart]", timeout=90_000)
        values = page.locator("[data-testid=stMetricValue]").all_inner_texts()
        labels = page.locator("[data-testid=stMetricLabel]").all_inner_texts()
        shown = dict(zip([label.strip() for label in labels], [v.strip() for v in values]))
        caption = page.get_by_text("on the test split of").first.inner_text()
        model_id = re.search(r"(zoo|user):[\w.-]+", caption).group(0)
        card = zoo.get_entry(model_id).card
        assert shown["Test accuracy"] == f"{card.metrics['accuracy']:.2%}"
        assert shown["Architecture"] == card.arch
        path = screenshot(page, "overview")
        assert path.stat().st_size > 20_000


def test_hostile_uploads_get_a_one_line_message(workspace, tmp_path):
    """Models & data in a real browser: a TorchScript model that writes files and an npz with a label of 10^9
    are refused with one line each, no traceback, and nothing lands in the workspace."""
    from hostile_corpus import WritesFile, _script, make_victim, npz_label_1e9, snapshot

    victim = make_victim(tmp_path)
    before = snapshot(victim)
    uploads = [("Upload a dataset", "bad.npz", npz_label_1e9(), "Add dataset", "labels run up to 1000000000"),
               ("Upload a model", "evil.pt", _script(WritesFile(str(victim / "created.bin"))), "Add model",
                "uses aten::from_file")]
    with running_app(workspace) as url, browser_page() as page:
        page.goto(url)  # through app.py's navigation: with pages/, the page's own URL would skip the sidebar
        page.get_by_text("Models & data").first.wait_for(timeout=180_000)
        page.get_by_text("Models & data").first.click()
        wait_rendered(page, "Upload a dataset", 180_000)
        for tab, file_name, payload, button, expect in uploads:
            page.get_by_role("tab", name=tab).click()
            panel = page.locator("[role=tabpanel]:visible")
            if tab == "Upload a model":  # drawn once the sidebar's dataset has loaded
                panel.get_by_text("TorchScript model").wait_for(timeout=180_000)
                panel.get_by_text("TorchScript model").click()
            panel.locator("input[type=file]").set_input_files(
                {"name": file_name, "mimeType": "application/octet-stream", "buffer": payload})
            panel.get_by_text(file_name).wait_for(timeout=90_000)  # the upload reached the server
            panel.get_by_role("textbox", name="Name", exact=True).fill("hostile")
            panel.get_by_role("button", name=button).click()
            alert = panel.locator("[data-testid=stAlertContentError]").first
            alert.wait_for(timeout=90_000)
            text = alert.inner_text().strip()
            assert expect in text and "\n" not in text and "Traceback" not in text, text
            assert page.locator("[data-testid=stException]").count() == 0
        screenshot(page, "hostile_upload")
    assert snapshot(victim) == before
    assert not [p for d in ("models", "datasets") for p in (workspace / d).rglob("*") if p.is_file()]  # no upload kept
