"""AppTest of the classroom quiz: the presenter starts a quiz, several participant sessions answer in turns, and
the presenter's tally counts every answer."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from vizcore import classroom as C

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _presenter() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["dataset_name"] = "digits"
    at.session_state["model_id"] = "zoo:digits-cnn"
    at.run()
    return at.switch_page("pages/quiz.py").run()


def _participant(code: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["quiz"] = code
    return at.run()


def test_presenter_and_participants():
    at = _presenter()
    assert not at.exception and "No quiz" in at.info[0].value
    at.number_input(key="quiz_n").set_value(4)
    at.button[0].click().run()  # the form's "Start quiz"
    assert not at.exception, at.exception
    quiz = C.list_quizzes()[0]
    assert quiz.n == 4 and quiz.model_id == "zoo:digits-cnn" and quiz.dataset == "digits"
    assert set(quiz.others) and "zoo:digits-cnn" not in quiz.others  # compared with the other digits models
    assert any(f"?quiz={quiz.code}" in m.value for m in at.markdown)

    people = [_participant(quiz.code) for _ in range(3)]
    assert all(not p.exception for p in people)
    assert all("Picture 1 of 4" in " ".join(m.value for m in p.markdown) for p in people)
    assert not any(p.sidebar.selectbox for p in people)  # no model to choose on a participant's device
    pids = [p.query_params["p"] for p in people]
    assert len(set(pids)) == 3

    # the sessions take turns picture by picture (AppTest shares one runtime per process, so true parallelism
    # is tested on the library with threads and on the real server by bench/classroom.py)
    for q in range(quiz.n):
        for i, p in enumerate(people):
            p.button(key=f"quiz_ans_{q}_{(i + q) % 10}").click().run()
    assert all(not p.exception for p in people)
    assert all(any("Done" in s.value for s in p.success) for p in people)
    got = C.answers(quiz.code)
    assert {pid: {q: a["answer"] for q, a in got[pid].items()} for pid in pids} == \
        {pid: {q: (i + q) % 10 for q in range(quiz.n)} for i, pid in enumerate(pids)}

    # a reload keeps the person (the id is in the URL) and changing an answer replaces it
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params["quiz"], again.query_params["p"] = quiz.code, pids[0]
    again.run()
    assert not again.exception and any("Done" in s.value for s in again.success)
    again.button(key="quiz_back_end").click().run()
    again.button(key=f"quiz_ans_3_{5}").click().run()
    assert C.answers(quiz.code)[pids[0]][3]["answer"] == 5 and len(C.answers(quiz.code)) == 3

    at.toggle(key="quiz_reveal").set_value(True).run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][:2] == ["3", "12"]
    table = at.dataframe[0].value
    t = C.tally(quiz)
    assert table.loc["the room (majority)", "accuracy"] == t["table"][0]["accuracy"]
    # seed 000's rates with the room as S: a picture fools the room when most people name another class
    seed = at.dataframe[1].value
    m, h = t["matrix"], quiz.model_answers
    fooled = [2 * sum(a != -1 and a != h[q] for a in m[q]) > sum(a != -1 for a in m[q]) for q in range(quiz.n)]
    assert seed.loc["the room (S_2)", "fooling examples"] == sum(fooled) / quiz.n
    assert list(seed.columns) == ["fooling examples", "hidden messages"]


def test_a_quiz_with_no_other_classifier_shows_no_hidden_message_rate():
    """Seed 000's hidden messages need a second classifier h_s: without one the page says so instead of an empty
    column (st.dataframe draws a missing number as "None")."""
    from vizcore.data import load_digits

    ds = load_digits()
    quiz = C.create_quiz(ds.test_x[:2].numpy(), ds.test_y[:2].tolist(), ds.class_names, kind="test",
                         model_answers=ds.test_y[:2].tolist(), dataset="digits", model_id="zoo:digits-cnn")
    p = _participant(quiz.code)
    p.button(key=f"quiz_ans_0_{(ds.test_y[0].item() + 1) % 10}").click().run()
    at = _presenter()
    at.selectbox(key="quiz_code").set_value(quiz.code).run()
    at.toggle(key="quiz_reveal").set_value(True).run()
    assert not at.exception, at.exception
    seed = at.dataframe[1].value
    assert list(seed.columns) == ["fooling examples"]
    assert seed.loc["the room (S_2)", "fooling examples"] == 0.5  # the one person named picture 1 otherwise
    assert any("this quiz has none" in c.value for c in at.caption)


def test_unknown_code_gets_a_message():
    at = _participant("ZZZ9")
    assert not at.exception and "no quiz ZZZ9" in at.error[0].value


def test_the_server_hides_deploy_and_the_menu(monkeypatch):
    """The config the app is served with (``./vizcore.sh app`` and the browser tests start it in the repository
    root) hides Streamlit's Deploy button and main menu from everybody, a quiz participant included."""
    from streamlit import config

    monkeypatch.chdir(Path(APP).parent)
    config.get_config_options(force_reparse=True)
    try:
        assert config.get_option("client.toolbarMode") == "minimal"
        assert config.get_option("client.showErrorDetails") in (False, "none")
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)
