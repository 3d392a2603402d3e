"""What every exercise test uses, so that a test trusts only data it has rebuilt itself.

A student's answer can be any object: a subclass whose ``==`` is always true, a table whose
``to_dict`` lies, a figure. Tests therefore never compare the student's objects directly. They
first take a *trusted copy*:

    counts = checks.answer(theme_counts(events), pd.Series, "theme_counts(events)")

which checks the exact type (a subclass fails, with a clear message), turns the value into
plain data with this module's own references to the pandas and matplotlib functions (taken
when the module is imported, in the setup cell, before any student code runs), and rebuilds a
fresh object from that plain data. The test then checks the copy.

The plain form (``plain``/``rebuild``) holds only lists, strings, numbers, True/False and None,
with tagged dicts (``{"$": "DataFrame", ...}``) for everything else. It is JSON, so it is also
how ``mcf-grade`` carries answers from the student's kernel to the separate process that runs
the tests (``mcf_course.grading``), and what ``fingerprint`` hashes.

Also here:

- ``figure(fig)``: the plain facts of a matplotlib figure (titles, labels, legend, bars,
  lines, points, texts, ticks, limits) for a test to check, instead of the figure's methods;
- ``close(a, b)``: compare two numbers without numpy (which student code can patch);
- ``passed(question)``: the short line a test cell prints when its visible checks pass;
- ``self_check(value, fingerprint)``: lets a self-learner check an answer on the real data
  without seeing it, by comparing fingerprints (use it only where the answer space is large: a
  fingerprint of a yes/no or a year can be found by trying every option);
- ``show_warnings_on_stdout()``: the setup cells call it, so that a warning or a debug line on
  stderr never costs an honest student a point (nbgrader counts any stderr output in a test
  cell as a failure).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import sys
import warnings
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

__all__ = ["AxesFacts", "FigureFacts", "answer", "close", "figure", "fingerprint", "passed", "plain",
           "rebuild", "self_check", "show_warnings_on_stdout"]

# Trusted references, taken at import (the setup cell), before a student's code runs.
_FRAME, _SERIES, _TIMESTAMP = pd.DataFrame, pd.Series, pd.Timestamp
_to_dict = pd.DataFrame.to_dict
_series_tolist = pd.Series.tolist
_index_tolist = pd.Index.tolist
_INDEX_TYPES = (pd.Index, pd.RangeIndex, pd.MultiIndex, pd.DatetimeIndex, pd.CategoricalIndex)
_NA, _NAT = pd.NA, pd.NaT
_isinstance, _type, _float, _int, _str, _len = isinstance, type, float, int, str, len
_NP_INT, _NP_FLOAT, _NP_BOOL, _NP_STR = np.integer, np.floating, np.bool_, np.str_
# dtypes a copy keeps; any other dtype is rebuilt as pandas infers it from the values
_DTYPES = {"int64", "int32", "float64", "float32", "bool", "boolean", "Int64", "Float64", "str",
           "string", "object", "datetime64[ns]", "datetime64[us]", "datetime64[s]"}

KIND_NAMES = {pd.Series: "a pandas Series", pd.DataFrame: "a pandas DataFrame", dict: "a dictionary",
              list: "a list", tuple: "a tuple", set: "a set", str: "a string (str)",
              int: "an integer (int)", float: "a number (float)", bool: "True or False"}


class AnswerTypeError(AssertionError):
    """An answer of the wrong type, or holding something a test cannot read as plain data.
    It is an AssertionError, so a test cell fails with its message."""


# --- plain data -------------------------------------------------------------------------------

def _scalar(value, what: str):
    kind = _type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$": "float", "value": repr(value)}
    if kind is _NP_BOOL:
        return bool(value)
    if _isinstance(value, _NP_INT) and kind.__module__ == "numpy":
        return _int(value)
    if _isinstance(value, _NP_FLOAT) and kind.__module__ == "numpy":
        return _scalar(_float(value), what)
    if kind is _NP_STR:
        return _str(value)
    if value is _NA:
        return {"$": "NA"}
    if value is _NAT:
        return {"$": "NaT"}
    if kind is _TIMESTAMP:
        return {"$": "Timestamp", "iso": _TIMESTAMP.isoformat(value)}
    if kind is _dt.date:
        return {"$": "date", "iso": _dt.date.isoformat(value)}
    raise AnswerTypeError(f"{what} holds a value of type {kind.__name__}; an answer may hold only numbers, "
                          "text, True/False, dates and missing values")


def _index(index, what: str) -> dict:
    if _type(index) not in _INDEX_TYPES:
        raise AnswerTypeError(f"{what} has an index of type {_type(index).__name__}, not a pandas Index")
    values = _index_tolist(index)
    if _type(index) is pd.MultiIndex:
        values = [{"$": "tuple", "items": [_scalar(v, what) for v in item]} for item in values]
    else:
        values = [_scalar(v, what) for v in values]
    names = [n if n is None or _type(n) in (str, int) else _str(n) for n in index.names]
    return {"$": "Index", "values": values, "names": names, "dtype": _str(index.dtype)}


def plain(value, what: str = "the answer"):
    """``value`` as plain data (JSON), made without calling any of its own methods.
    Raises AnswerTypeError for anything an answer should not hold (objects, functions)."""
    kind = _type(value)
    if kind is _FRAME:
        split = _to_dict(value, orient="split")
        columns = [list(col) for col in zip(*split["data"], strict=True)] or [[] for _ in split["columns"]]
        return {"$": "DataFrame", "index": _index(value.index, what), "columns": _index(value.columns, what),
                "data": [[_scalar(v, what) for v in col] for col in columns],
                "dtypes": [_str(d) for d in value.dtypes.tolist()]}
    if kind is _SERIES:
        name = value.name
        return {"$": "Series", "name": plain(name, what) if name is not None else None,
                "index": _index(value.index, what), "values": [_scalar(v, what) for v in _series_tolist(value)],
                "dtype": _str(value.dtype)}
    if kind in _INDEX_TYPES:
        return _index(value, what)
    if kind is list:
        return [plain(v, what) for v in value]
    if kind in (tuple, set, frozenset):
        items = [plain(v, what) for v in value]
        if kind is not tuple:
            items.sort(key=lambda item: json.dumps(item, sort_keys=True, default=str))
        return {"$": kind.__name__, "items": items}
    if kind is dict:
        return {"$": "dict", "items": [[plain(k, what), plain(v, what)] for k, v in value.items()]}
    if kind is np.ndarray:
        return {"$": "ndarray", "items": plain(value.tolist(), what)}
    if kind is FigureFacts:
        return {"$": "Figure", "axes": [_facts_plain(ax) for ax in value.axes], "legends": list(value.legends)}
    if _is_matplotlib_figure(value):
        return _figure_plain(value, what)
    return _scalar(value, what)


def rebuild(data):
    """The object ``plain`` describes, built afresh by this module (FigureFacts for a figure)."""
    if _type(data) is list:
        return [rebuild(v) for v in data]
    if _type(data) is not dict:
        if data is None or _type(data) in (bool, int, float, str):
            return data
        raise ValueError(f"not plain data: {_type(data).__name__}")
    tag = data.get("$")
    if tag == "float":
        return float(data["value"])
    if tag == "NA":
        return _NA
    if tag == "NaT":
        return _NAT
    if tag == "Timestamp":
        return _TIMESTAMP(data["iso"])
    if tag == "date":
        return _dt.date.fromisoformat(data["iso"])
    if tag in ("tuple", "set", "frozenset"):
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](rebuild(v) for v in data["items"])
    if tag == "dict":
        return {rebuild(k): rebuild(v) for k, v in data["items"]}
    if tag == "ndarray":
        return np.array(rebuild(data["items"]))
    if tag == "Index":
        return _rebuild_index(data)
    if tag == "Series":
        values = _typed_values(rebuild(data["values"]), data["dtype"])
        name = rebuild(data["name"]) if data["name"] is not None else None
        return pd.Series(values, index=_rebuild_index(data["index"]), name=name)
    if tag == "DataFrame":
        columns = _rebuild_index(data["columns"])
        frame = pd.DataFrame({i: _typed_values(rebuild(col), dtype)
                              for i, (col, dtype) in enumerate(zip(data["data"], data["dtypes"], strict=True))},
                             index=_rebuild_index(data["index"]))
        frame.columns = columns
        return frame
    if tag == "Figure":
        return FigureFacts(axes=tuple(AxesFacts(**_facts_fields(ax)) for ax in data["axes"]),
                           legends=tuple(str(t) for t in data["legends"]))
    raise ValueError(f"not plain data: unknown tag {tag!r}")


def _typed_values(values: list, dtype: str):
    if dtype in _DTYPES:
        try:
            return pd.array(values, dtype=dtype)
        except (TypeError, ValueError):
            pass
    return values


def _rebuild_index(data: dict) -> pd.Index:
    values = rebuild(data["values"])
    if values and all(_type(v) is tuple for v in values):
        return pd.MultiIndex.from_tuples(values, names=data["names"])
    if data["dtype"] == "int64" and values == list(range(len(values))):
        return pd.RangeIndex(len(values), name=data["names"][0])
    return pd.Index(_typed_values(values, data["dtype"]), name=data["names"][0])


# --- answers ------------------------------------------------------------------------------------

def answer(value, kind, what: str = "your answer"):
    """A trusted copy of ``value`` if it is exactly of ``kind`` (numbers: any int or float type
    for ``float``, any integer type but bool for ``int``); otherwise the test fails saying so."""
    actual = _type(value)
    if kind is float and actual is not bool and (actual in (int, float) or _isinstance(value, (_NP_INT, _NP_FLOAT))):
        return _float(plain(value, what) if actual is not float else value)
    if kind is int and actual is not bool and (actual is int or _isinstance(value, _NP_INT)):
        return _int(plain(value, what))
    if kind is bool and actual in (bool, _NP_BOOL):
        return bool(plain(value, what))
    if kind is str and actual in (str, _NP_STR):
        return _str(plain(value, what))
    if actual is kind and kind not in (int, float, bool, str):
        return rebuild(plain(value, what))
    expected = KIND_NAMES.get(kind, kind.__name__)
    found = "None" if value is None else f"a {actual.__name__}"
    subclass = " (exactly that type, not a subclass of it)" if kind in KIND_NAMES and _isinstance(value, kind) else ""
    raise AnswerTypeError(f"{what} should be {expected}{subclass}, not {found}")


def close(a, b, rel: float = 1e-9, tol: float = 1e-9) -> bool:
    """True if two numbers are equal up to rounding (as ``math.isclose``; NaN equals NaN)."""
    a, b = _float(a), _float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=tol)


def passed(question: str) -> None:
    """The line a test cell prints when its visible checks pass."""
    print(f"\u2713 {question}: the visible tests pass. (When you are graded, hidden tests also run.)")


# --- figures ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AxesFacts:
    """What a test can check about one set of axes, as plain values."""

    title: str
    xlabel: str
    ylabel: str
    xscale: str
    yscale: str
    xlim: tuple
    ylim: tuple
    x_inverted: bool
    y_inverted: bool
    legend: tuple | None  # the legend's texts, or None without a legend
    bars: tuple  # (x, y, width, height) of each rectangle
    lines: tuple  # ((x values), (y values), label) of each line
    points: tuple  # (x, y) of each point of scatter plots and other collections
    texts: tuple  # each text drawn on the axes (annotations, labels)
    xticklabels: tuple
    yticklabels: tuple
    data_limits: tuple  # (x0, y0, width, height) of everything drawn

    @property
    def bar_total(self) -> float:
        return sum(height for _, _, _, height in self.bars)

    @property
    def line_values(self) -> list[float]:
        return [y for _, ys, _ in self.lines for y in ys]


@dataclass(frozen=True)
class FigureFacts:
    """What a test can check about a figure: its axes, and legends placed on the figure."""

    axes: tuple
    legends: tuple = ()


def _is_matplotlib_figure(value) -> bool:
    from matplotlib.figure import Figure

    return _type(value) is Figure


def _numbers(values) -> tuple:
    return tuple(_float(v) for v in np.asarray(values, dtype=float).ravel())


def _figure_plain(fig, what: str) -> dict:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig.canvas.draw()  # tick labels exist only once the figure is drawn
    axes = []
    for ax in Figure.get_axes(fig):
        if not _isinstance(ax, Axes):
            raise AnswerTypeError(f"{what} has axes of type {_type(ax).__name__}")
        legend = Axes.get_legend(ax)
        axes.append({
            "title": _str(Axes.get_title(ax)), "xlabel": _str(Axes.get_xlabel(ax)),
            "ylabel": _str(Axes.get_ylabel(ax)), "xscale": _str(Axes.get_xscale(ax)),
            "yscale": _str(Axes.get_yscale(ax)), "xlim": list(_numbers(Axes.get_xlim(ax))),
            "ylim": list(_numbers(Axes.get_ylim(ax))), "x_inverted": bool(Axes.xaxis_inverted(ax)),
            "y_inverted": bool(Axes.yaxis_inverted(ax)),
            "legend": None if legend is None else [_str(t.get_text()) for t in legend.get_texts()],
            "bars": [list(_numbers([p.get_x(), p.get_y(), p.get_width(), p.get_height()]))
                     for p in ax.patches if _isinstance(p, Rectangle)],
            "lines": [[list(_numbers(line.get_xdata(orig=False))), list(_numbers(line.get_ydata(orig=False))),
                       _str(line.get_label())] for line in Axes.get_lines(ax)],
            "points": [list(point) for c in ax.collections for point in
                       np.asarray(c.get_offsets(), dtype=float).reshape(-1, 2).tolist()],
            "texts": [_str(t.get_text()) for t in ax.texts],
            "xticklabels": [_str(t.get_text()) for t in Axes.get_xticklabels(ax)],
            "yticklabels": [_str(t.get_text()) for t in Axes.get_yticklabels(ax)],
            "data_limits": list(_numbers(ax.dataLim.bounds)),
        })
    legends = [_str(t.get_text()) for legend in fig.legends for t in legend.get_texts()]
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"$": "Figure", "axes": axes, "legends": legends}


def _facts_plain(ax: AxesFacts) -> dict:
    return {f.name: getattr(ax, f.name) for f in fields(AxesFacts)}


def _facts_fields(data: dict) -> dict:
    """AxesFacts fields from plain data, every list made a tuple (so the facts are immutable)."""
    def frozen(value):
        return tuple(frozen(v) for v in value) if _type(value) in (list, tuple) else value

    return {f.name: frozen(data[f.name]) for f in fields(AxesFacts)}


def figure(value, what: str = "your figure") -> FigureFacts:
    """The facts of a matplotlib Figure (exactly a Figure, not Axes or None), then closes it."""
    if _type(value) is FigureFacts:
        return value
    if not _is_matplotlib_figure(value):
        found = "None" if value is None else f"a {_type(value).__name__}"
        hint = " (return fig, not ax)" if _type(value).__name__.endswith("Axes") else ""
        raise AnswerTypeError(f"{what} should be a matplotlib Figure{hint}, not {found}")
    return rebuild(plain(value, what))


# --- fingerprints for self-checks -----------------------------------------------------------------

def _canonical(data, digits: int):
    """Plain data with numbers rounded and dtypes left out, so the same answer computed on
    another numpy or pandas version (the in-browser site's) has the same fingerprint."""
    if _type(data) is float:
        return float(f"{data:.{digits}g}")
    if _type(data) is list:
        return [_canonical(v, digits) for v in data]
    if _type(data) is dict:
        return {k: _canonical(v, digits) for k, v in data.items() if k not in ("dtype", "dtypes")}
    return data


def fingerprint(value, digits: int = 6) -> str:
    """A short SHA-256 fingerprint of a value's canonical plain form."""
    text = json.dumps(_canonical(plain(value), digits), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def self_check(value, expected: str, what: str = "your answer on the course's data", hint: str = "") -> None:
    """Pass if ``value`` has the fingerprint ``expected``; fail with a message that cannot say
    what the answer is, only whether it matches."""
    actual = fingerprint(value)
    if actual != expected:
        raise AssertionError(f"{what} does not match the course's answer yet. This check compares "
                             "fingerprints, so it cannot say what differs" + (f": {hint}" if hint else ".")
                             + f" (fingerprint of your answer: {actual})")
    print(f"\u2713 {what[0].upper() + what[1:]} matches the course's answer.")


# --- honest output -----------------------------------------------------------------------------

def _show_on_stdout(message, category, filename, lineno, file=None, line=None):
    print(f"{category.__name__}: {message}", file=sys.stdout)


def show_warnings_on_stdout() -> None:
    """Show warnings, and whatever code writes to ``sys.stderr``, on stdout from now on.

    nbgrader (and its Validate button) fails a test cell that wrote anything to stderr, so a
    correct function that warns (a pandas deprecation, ``warnings.warn``) or prints a debug
    line to stderr would lose its points. Errors still fail: an exception is an error output,
    not stderr."""
    warnings.showwarning = _show_on_stdout
    sys.stderr = sys.stdout
