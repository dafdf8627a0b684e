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
