"""The participant's view of a classroom quiz (``/?quiz=CODE``): one picture at a time, one big button per
class. No sidebar and no model: everything comes from the quiz folder in the workspace.

The participant id lives in the URL (``&p=...``), so a reload or a lost connection keeps one's answers.
"""

from __future__ import annotations

import streamlit as st

from vizcore import classroom as C

SCROLL_TO_TOP = ("for (const e of [document.scrollingElement, ...document.querySelectorAll("
                 "'[data-testid=stMain], [data-testid=stAppViewContainer]')]) if (e) e.scrollTo(0, 0);")
ANSWER_PX = 150  # an answer button's width: two side by side on a 360-pixel phone


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
    # a new picture scrolls the page back to its top (a rerun keeps the scroll of the answer just tapped); the
    # question's number makes each picture's snippet new, so the browser runs it once per picture
    st.html(f"<script>/* picture {q} */ {SCROLL_TO_TOP}</script>", unsafe_allow_javascript=True)
    st.image(str(quiz.image_path(q)), width=300)
    if quiz.closed:
        st.warning("The presenter closed this quiz.")
        return
    # buttons of one width that wrap in rows (two on a phone): the picture and every class fit on one phone screen,
    # where columns would stack into one long list and an answer low on it leaves the next picture out of sight
    with st.container(horizontal=True, gap="small"):
        for c, name in enumerate(quiz.class_names):
            st.button(name, key=f"quiz_ans_{q}_{c}", on_click=_answer, args=(quiz.code, pid, q, c),
                      type="primary" if mine.get(q) == c else "secondary", width=ANSWER_PX)
    with st.container(horizontal=True, gap="small"):
        st.button("Previous", on_click=_move, args=(-1,), key="quiz_prev", disabled=q == 0, width=ANSWER_PX,
                  type="tertiary")
        st.button("Skip", on_click=_move, args=(1,), key="quiz_skip", width=ANSWER_PX, type="tertiary")
