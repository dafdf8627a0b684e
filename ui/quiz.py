"""The participant's view of a classroom quiz (``/?quiz=CODE``): one picture at a time, one big button per
class. No sidebar and no model: everything comes from the quiz folder in the workspace.

The participant id lives in the URL (``&p=...``), so a reload or a lost connection keeps one's answers.
"""

from __future__ import annotations

import streamlit as st

from vizcore import classroom as C


def _answer(code: str, pid: str, q: int, c: int) -> None:
    try:
        C.record_answer(code, pid, q, c)
    except C.QuizError as e:
        st.session_state["_quiz_error"] = str(e)
        return
    st.session_state["quiz_q"] = q + 1


def _move(step: int) -> None:
    st.session_state["quiz_q"] = max(0, st.session_state.get("quiz_q", 0) + step)


def participant_page() -> None:
    """Join the quiz in the URL and answer its questions."""
    code = str(st.query_params.get("quiz", "")).strip().upper()
    try:
        quiz = C.get_quiz(code)
    except C.QuizError as e:
        st.error(str(e))
        typed = st.text_input("Quiz code", key="quiz_code_typed", max_chars=C.CODE_LEN)
        if typed:
            st.query_params["quiz"] = typed.strip().upper()
            st.rerun()
        return
    pid = str(st.query_params.get("p", ""))
    if not C._PID.match(pid) or not (quiz.dir / "participants" / f"{pid}.json").exists():
        pid = C.join(quiz.code)
        st.query_params["p"] = pid
    mine = {q: a["answer"] for q, a in C.answers(quiz.code, pid).get(pid, {}).items()}
    if "quiz_q" not in st.session_state:  # first visit or reload: the first picture not answered yet
        st.session_state["quiz_q"] = next((q for q in range(quiz.n) if q not in mine), quiz.n)
    q = min(st.session_state["quiz_q"], quiz.n)
    st.markdown(f"### Quiz {quiz.code}")
    if err := st.session_state.pop("_quiz_error", None):
        st.error(err)
    st.progress(len(mine) / quiz.n, text=f"{len(mine)} of {quiz.n} answered")
    if q >= quiz.n:
        st.success("Done, thank you! Look at the presenter's screen for how the room did. "
                   "You can go back and change an answer while the quiz is open.")
        st.button("Back", on_click=_move, args=(-1,), key="quiz_back_end")
        return
    st.markdown(f"**Picture {q + 1} of {quiz.n}: which class is it?**")
    st.image(str(quiz.image_path(q)), width=300)
    if quiz.closed:
        st.warning("The presenter closed this quiz.")
        return
    cols = st.columns(2)
    for c, name in enumerate(quiz.class_names):
        cols[c % 2].button(name, key=f"quiz_ans_{q}_{c}", on_click=_answer, args=(quiz.code, pid, q, c),
                           type="primary" if mine.get(q) == c else "secondary", width="stretch")
    b1, b2 = st.columns(2)
    b1.button("Previous", on_click=_move, args=(-1,), key="quiz_prev", disabled=q == 0, width="stretch")
    b2.button("Skip", on_click=_move, args=(1,), key="quiz_skip", width="stretch")
