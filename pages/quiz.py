"""Classroom quiz, the presenter's side: freeze a set of pictures, share the code, watch the room answer, compare
the room with the model and with other classifiers (seed 000 section 4.2, Table 4)."""

from __future__ import annotations

import socket

import pandas as pd
import streamlit as st

from ui import state
from vizcore import classroom as C
from vizcore import zoo
from vizcore.core import jobs
from vizcore.explain.interpretability import difficulty
from vizcore.plots.classroom import tally_figure

st.title("Classroom quiz")
st.caption("Can people name what the model sees? Each person names the class of every picture on their own "
           "device; the room is then compared with the model and with other classifiers, as in seed 000's human "
           "experiment (section 4.2, Table 4).")
ds, entry, model = state.require()


def sources() -> dict[str, str]:
    """Sets of pictures a quiz can ask about: label -> kind[:job id]."""
    out = {"Real test images (control)": "test", "Test images pushed towards another class": "perturbed"}
    for j in jobs.list_jobs("visualize"):
        if j.state == "done" and j.config.get("model") == entry.id:
            out[f"Class visualizations · {j.title} · {j.created[:16]}"] = f"visualizations:{j.id}"
    for j in jobs.list_jobs("distill"):
        if j.state == "done" and j.config.get("teacher") == entry.id:
            out[f"Generated training images · {j.title[:60]} · {j.created[:16]}"] = f"generated:{j.id}"
    return out


def others() -> dict[str, object]:
    """Up to four other zoo models of this dataset: the classifiers the room is compared with."""
    picked = [e for e in zoo.list_models() if zoo.fits(e, ds) and e.card.dataset == ds.name and e.id != entry.id][:4]
    return {e.id: state.get_model(*state.model_key(e)) for e in picked}


def pictures(kind: str):
    """(images, intended classes) of a workspace set, or the test split."""
    if kind.startswith("visualizations:"):
        from vizcore.explain.visualize import NPZ_NAME, Visualizations

        v = Visualizations.from_npz(jobs.get_job(kind.split(":", 1)[1]).dir / NPZ_NAME)
        return v.images, v.labels
    if kind.startswith("generated:"):
        from vizcore.distill.protocol import load_synthetic

        s = load_synthetic(kind.split(":", 1)[1])
        return s.images, s.labels
    return ds.test_x, ds.test_y


def lan_address() -> str:
    """This machine's address on the local network (no packet is sent), or 'localhost'."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "localhost"


def start_form() -> None:
    with st.form("quiz_new"):
        options = sources()
        c = st.columns([3, 1, 1])
        label = c[0].selectbox("Pictures", list(options), key="quiz_source",
                               help="class visualizations and generated training images come from finished runs "
                                    "of *Visualize* and *Student lab* for this model")
        n = c[1].number_input("How many", 2, 60, 20, key="quiz_n")
        eps = c[2].number_input("Push (L2 step)", 0.5, 20.0, 3.0, key="quiz_eps",
                                help="for pushed test images: how far each is moved towards its new class")
        go = st.form_submit_button("Start quiz", type="primary")
    if not go:
        return
    kind = options[label]
    x, y = pictures(kind)
    with st.spinner("Asking the model and the other classifiers…"):
        try:
            qs = C.question_set(kind.split(":")[0], model, x, y, n=int(n), eps=float(eps), others=others())
            quiz = C.create_quiz(qs.pop("images"), qs.pop("labels"), ds.class_names, kind=kind.split(":")[0],
                                 title=label, dataset=ds.name, model_id=entry.id, **qs)
        except (C.QuizError, ValueError) as e:
            st.error(str(e))
            return
    st.session_state["quiz_code"] = quiz.code
    st.rerun()


quizzes = [q for q in C.list_quizzes() if q.dataset == ds.name]
with st.expander("Start a new quiz", expanded=not quizzes):
    start_form()
if not quizzes:
    st.info("No quiz for this dataset yet: start one above.")
    st.stop()
codes = [q.code for q in quizzes]
if st.session_state.get("quiz_code") not in codes:
    st.session_state["quiz_code"] = codes[0]
by_code = {q.code: q for q in quizzes}
code = st.selectbox("Quiz", codes, key="quiz_code",
                    format_func=lambda c: f"{c} · {by_code[c].title} · {by_code[c].n} pictures"
                                          + (" · closed" if by_code[c].closed else ""))
quiz = by_code[code]

host = st.context.headers.get("Host", "localhost:8501")
port = host.rsplit(":", 1)[-1] if ":" in host else "8501"
here = host if not host.startswith(("localhost", "127.")) else f"{lan_address()}:{port}"
st.markdown(f"## Join at `http://{here}/?quiz={quiz.code}` · code **{quiz.code}**")
st.caption("Everyone in the room opens that address on their phone or laptop. The app listens on this computer "
           "only unless it was started with `./vizcore.sh app --server.address 0.0.0.0` (see the README).")
c1, c2 = st.columns([1, 5])
if c1.button("Reopen quiz" if quiz.closed else "Close quiz", key="quiz_close"):
    C.close_quiz(quiz.code, not quiz.closed)
    st.rerun()
reveal = c2.toggle("Show the answers (the model's and the intended class)", key="quiz_reveal")


@state.fragment(run_every=1.0)
def live_tally() -> None:
    """The room's answers so far, re-read from the workspace every second."""
    t = C.tally(quiz)
    m = st.columns(3)
    m[0].metric("People", t["participants"])
    m[1].metric("Answers", t["answers"], help=f"of {t['participants'] * quiz.n} possible")
    m[2].metric("Pictures answered by everyone", sum(a == t["participants"] > 0 for a in t["answered"]))
    st.plotly_chart(tally_figure(quiz, t, reveal=reveal), key="quiz_tally_chart")
    if reveal:
        table = pd.DataFrame(t["table"]).set_index("who")
        st.dataframe(table.style.format("{:.0%}", na_rep="–"), key="quiz_table")
        st.caption(f"accuracy: share of the pictures named as their intended class ({C.KINDS[quiz.kind]}); "
                   "agrees_with_model: share named as the model named them.")
        if t["participants"]:
            seed_metrics(t)


def seed_metrics(t: dict) -> None:
    """Seed 000's Table 4 for this quiz: fooling-example and hidden-message rates for the room (S_2, one
    classifier per person) and for the other classifiers (S_1); h is the model, h_s the first other classifier."""
    names = list(quiz.others)
    h_s = quiz.others[names[0]] if names else None
    rows = {"the room (S_2)": difficulty(quiz.model_answers, t["matrix"], h_s)}
    if len(names) > 1:
        rows["other classifiers (S_1)"] = difficulty(quiz.model_answers, {k: quiz.others[k] for k in names[1:]}, h_s)
    table = pd.DataFrame({k: {"fooling examples": v["fooling_rate"], "hidden messages": v.get("hidden_rate")}
                          for k, v in rows.items()}).T
    if h_s is None:  # a hidden message needs h_s; st.dataframe would draw the empty rate as "None"
        table = table.drop(columns="hidden messages")
    st.dataframe(table.style.format("{:.0%}"), key="quiz_seed_table")
    st.caption("Seed 000 section 4.2: a picture is a *fooling example* when most of S name another class than the "
               + (f"model; a *hidden message* when, besides, {names[0]} agrees with the model." if names else
                  "model. Hidden messages need a second classifier (h_s): this quiz has none (the zoo held no "
                  "other model of this dataset when it started)."))


live_tally()
with st.expander("The pictures"):
    cols = st.columns(10)
    for q in range(quiz.n):
        cols[q % 10].image(str(quiz.image_path(q)), caption=f"#{q + 1}", width="stretch")
