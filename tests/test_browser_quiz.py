"""Real Chromium: a presenter and two people in the room run a classroom quiz end to end."""

from __future__ import annotations

from app_server import CHROMIUM_ARGS, chromium_path, running_app, screenshot, wait_rendered

from vizcore import classroom as C
from vizcore.data import load_digits


def test_two_people_answer_and_the_presenter_sees_the_room(workspace):
    from playwright.sync_api import sync_playwright

    ds = load_digits()
    n = 3
    quiz = C.create_quiz(ds.test_x[:n].numpy(), ds.test_y[:n].tolist(), ds.class_names, kind="test",
                         model_answers=ds.test_y[:n].tolist(), others={"zoo:digits-mlp": [0, 0, 0]},
                         dataset="digits", model_id="zoo:digits-cnn")
    truth = ds.test_y[:n].tolist()
    with running_app(workspace) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            people = [browser.new_context(viewport={"width": 360, "height": 640}).new_page() for _ in range(2)]  # phones
            for page in people:
                page.set_default_timeout(300_000)
                page.goto(f"{url}/?quiz={quiz.code}")
                page.get_by_text(f"Picture 1 of {n}").wait_for(timeout=120_000)
                assert page.locator("[data-testid=stSidebar]").count() == 0  # nothing to choose: just the quiz
                page.locator("[data-testid=stHeader]").wait_for(state="attached", timeout=120_000)
                assert page.locator("[data-testid=stAppDeployButton], [data-testid=stMainMenu]").count() == 0
            screenshot(people[0], "quiz_question")
            for q in range(n):  # Ada names every picture right, Bob says "9" (the last button) each time
                for page, answer in zip(people, (truth[q], 9)):
                    page.locator(f".st-key-quiz_ans_{q}_{answer} button").click()
                for page in people:  # each click is a rerun: the next picture (or the end) before the next click
                    page.get_by_text(f"Picture {q + 2} of {n}" if q + 1 < n else "Done, thank you").wait_for()
                    if q + 1 < n:  # the next picture in sight, although the answer was low on a small screen
                        page.wait_for_function(
                            "() => { const r = document.querySelector('[data-testid=stImage] img')"
                            "?.getBoundingClientRect(); return r && r.top >= 0 && r.bottom <= innerHeight; }")
            for page in people:
                page.get_by_text("Done, thank you").wait_for(timeout=120_000)
            screenshot(people[0], "quiz_participant")

            presenter = browser.new_page(viewport={"width": 1400, "height": 1600})
            presenter.set_default_timeout(300_000)  # a busy machine: patience, not a time limit
            presenter.goto(url)
            wait_rendered(presenter, "Dataset", 600_000)  # the first page evaluates the default model (cold workspace)
            presenter.get_by_label("Dataset").first.click()
            presenter.get_by_role("option", name="digits", exact=True).first.click()
            wait_rendered(presenter, "trained on digits", 600_000)
            presenter.get_by_role("link", name="Classroom quiz").click()
            wait_rendered(presenter, f"code {quiz.code}")
            presenter.get_by_text("Show the answers").click()
            presenter.locator("[data-testid=stDataFrame]").first.wait_for(timeout=120_000)  # the comparison
            metrics = dict(zip(presenter.locator("[data-testid=stMetricLabel]").all_inner_texts(),
                               presenter.locator("[data-testid=stMetricValue]").all_inner_texts()))
            assert metrics["People"].strip() == "2" and metrics["Answers"].strip() == str(2 * n)
            chart = presenter.locator("[data-testid=stPlotlyChart]").first  # every picture and class labelled
            assert sorted(chart.locator(".ytick text").all_text_contents()) == [f"#{q + 1}" for q in range(n)]
            assert sorted(chart.locator(".xtick text").all_text_contents()) == sorted(ds.class_names)
            assert screenshot(presenter, "quiz_presenter").stat().st_size > 20_000
        finally:
            browser.close()
    t = C.tally(quiz)
    person = next(r for r in t["table"] if r["who"] == "a person (mean)")
    assert person["accuracy"] == (1 + sum(c == 9 for c in truth) / n) / 2
