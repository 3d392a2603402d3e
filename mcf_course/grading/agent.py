"""The student's kernel's side of ``mcf-grade``'s test protocol (the grader's side: ``runner``).

Under ``mcf-grade`` test cells never run in the student's kernel: the grader runs them in its
own process. When a test uses a name the notebook defines (an answer function, an answer
variable), the grader asks the kernel for it, over the Jupyter connection it already holds,
with one silent execute request whose only work is a user expression:

    __import__("mcf_course.grading.agent", fromlist=["handle"]).handle('<request as JSON>')

``handle`` answers with JSON text:

    {"op": "lookup", "name": N}                  -> {"function": true} | {"value": PLAIN}
    {"op": "call", "name": N, "args": [PLAIN..],
     "kwargs": {K: PLAIN}}                       -> {"value": PLAIN} | {"raised": [TYPE, MESSAGE, BUILTIN]}
    either                                       -> {"missing": true} | {"unreadable": MESSAGE}

PLAIN is ``mcf_course.checks.plain`` data (lists, strings, numbers, tagged dicts): a function
gets its arguments rebuilt from it and its result goes back as it. An error it raises goes back
as its type's name, its message and the nearest builtin exception it derives from (so that a
test can catch the ``ValueError`` a question asks for). Nothing here is trusted:
the student's code runs in this process and can replace any of it, so the grader reads the
answer as untrusted data, strictly; a wrong answer can only fail the student's own test.
Whatever the student's code prints during a call is thrown away.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

MAX_ANSWER = 8_000_000  # characters of JSON; the grader refuses longer answers too
MAX_MESSAGE = 2_000


def _namespace() -> dict:
    from IPython import get_ipython

    return get_ipython().user_ns


def _close_new_figures(before: set[int]) -> None:
    """Close the figures a call drew and left open (a test reads a returned figure as facts;
    open figures would otherwise be drawn under the next cell of the notebook)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        for number in set(pyplot.get_fignums()) - before:
            pyplot.close(number)


def _figures() -> set[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return set(pyplot.get_fignums()) if pyplot is not None else set()


def _answer(request: dict) -> dict:
    from mcf_course import checks

    name = request["name"]
    namespace = _namespace()
    if not isinstance(name, str) or name not in namespace:
        return {"missing": True}
    value = namespace[name]
    if request["op"] == "lookup":
        if callable(value):
            return {"function": True}
        try:
            return {"value": checks.plain(value, name)}
        except Exception as exc:  # noqa: BLE001 - an answer the test cannot read
            return {"unreadable": str(exc)[:MAX_MESSAGE]}
    if request["op"] != "call":
        raise ValueError(f"unknown request {request['op']!r}")
    args = [checks.rebuild(a) for a in request["args"]]
    kwargs = {k: checks.rebuild(v) for k, v in request["kwargs"].items()}
    before = _figures()
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            result = value(*args, **kwargs)
        try:
            return {"value": checks.plain(result, f"{name}(...)")}
        except Exception as exc:  # noqa: BLE001
            return {"unreadable": str(exc)[:MAX_MESSAGE]}
    except BaseException as exc:  # noqa: BLE001 - the student's error is the test's message
        builtin = next(c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins")
        return {"raised": [type(exc).__name__, str(exc)[:MAX_MESSAGE], builtin]}
    finally:
        _close_new_figures(before)


def handle(request: str) -> str:
    """Answer one request of the grader (JSON text in, JSON text out)."""
    try:
        answer = _answer(json.loads(request))
    except Exception as exc:  # noqa: BLE001 - say what went wrong, in the protocol
        answer = {"unreadable": f"the kernel could not answer: {type(exc).__name__}: {exc}"[:MAX_MESSAGE]}
    text = json.dumps(answer)
    if len(text) > MAX_ANSWER:
        text = json.dumps({"unreadable": f"the answer is too large ({len(text):,} characters of data)"})
    return text
