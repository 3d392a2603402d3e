"""The exercises' shared test helper: trusted copies, figure facts, fingerprints, honest output."""

from __future__ import annotations

import json
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mcf_course import checks


class Liar(pd.Series):
    """A Series whose comparisons always say yes."""

    def __eq__(self, other):
        return True

    def to_dict(self, *args, **kwargs):
        return {"both": 3}


def test_a_subclass_that_lies_is_refused_with_a_clear_message():
    with pytest.raises(AssertionError, match=r"should be a pandas Series \(exactly that type"):
        checks.answer(Liar([1, 2]), pd.Series, "theme_counts(events)")
    with pytest.raises(AssertionError, match="should be a pandas DataFrame, not None"):
        checks.answer(None, pd.DataFrame, "f(x)")
    with pytest.raises(AssertionError, match="should be an integer"):
        checks.answer(True, int)


def test_a_frame_that_shadows_its_methods_is_read_through_the_class():
    frame = pd.DataFrame({"a": [1, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        object.__setattr__(frame, "to_dict", lambda *a, **k: {"index": [], "columns": [], "data": []})
    copy = checks.answer(frame, pd.DataFrame)
    assert copy["a"].tolist() == [1, 2]


def test_objects_inside_a_table_are_refused():
    class Always:
        def __eq__(self, other):
            return True

    with pytest.raises(AssertionError, match="holds a value of type Always"):
        checks.answer(pd.DataFrame({"x": [Always()]}), pd.DataFrame, "f(x)")
    with pytest.raises(AssertionError, match="holds a value of type builtin_function_or_method"):
        checks.answer({"A": print}, dict)


@pytest.mark.parametrize("value", [
    pd.DataFrame({"term": ["甲", "乙"], "year": [2007, 2015], "share": [0.5, np.nan],
                  "flag": pd.array([True, pd.NA], dtype="boolean")}),
    pd.DataFrame({"n": [3, 1]}, index=pd.Index(["both", "MCF"], name="theme")),
    pd.DataFrame({"n": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "i"])),
    pd.DataFrame(columns=["a", "b"]),
    pd.DataFrame({"d": pd.to_datetime(["2017-11-27", None])}),
    pd.Series([3, 1], index=[2019, 2021], name="count"),
    pd.Series(["x", None], dtype="str"),
])
def test_tables_survive_the_round_trip_through_json(value):
    copy = checks.rebuild(json.loads(json.dumps(checks.plain(value))))
    assert type(copy) is type(value)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(copy, value, check_dtype=False, check_index_type=False)
        assert list(copy.dtypes.map(str)) == list(value.dtypes.map(str))
    else:
        pd.testing.assert_series_equal(copy, value, check_index_type=False)


def test_plain_values_and_containers_round_trip():
    value = {"A": ("x", 1), 2: {3, 4}, "f": float("inf"), "n": np.int64(7), "b": np.bool_(True),
             "t": pd.Timestamp("2021-06-03"), "na": pd.NA, "l": [1.5, None]}
    copy = checks.rebuild(json.loads(json.dumps(checks.plain(value))))
    assert copy == {"A": ("x", 1), 2: {3, 4}, "f": float("inf"), "n": 7, "b": True,
                    "t": pd.Timestamp("2021-06-03"), "na": pd.NA, "l": [1.5, None]}
    assert type(copy["n"]) is int and type(copy["b"]) is bool


def test_numbers_are_accepted_in_any_numeric_type_and_returned_plain():
    assert type(checks.answer(np.float64(0.25), float)) is float
    assert checks.answer(np.int64(2021), int) == 2021 and type(checks.answer(np.int64(2021), int)) is int
    assert checks.answer(3, float) == 3.0
    assert checks.close(0.1 + 0.2, 0.3) and not checks.close(0.3, 0.31) and checks.close(np.nan, float("nan"))


def test_figure_facts_describe_what_was_drawn_and_the_figure_is_closed():
    fig, ax = plt.subplots()
    ax.bar(["2019", "2020"], [2, 3], label="counts")
    ax.plot([0, 1], [10, 30], label="target")
    ax.scatter([0.5], [20])
    ax.text(0, 1, "note")
    ax.set(xlabel="Year", ylabel="Events", title="Events per year", yscale="log")
    ax.invert_yaxis()
    ax.legend()
    facts = checks.figure(fig, "plot(events)")
    assert plt.fignum_exists(fig.number) is False
    first = facts.axes[0]
    assert (first.title, first.xlabel, first.ylabel, first.yscale) == ("Events per year", "Year", "Events", "log")
    assert first.y_inverted and not first.x_inverted
    assert set(first.legend) == {"counts", "target"}
    assert first.bar_total == 5 and sorted(first.line_values) == [10, 30] and first.points == ((0.5, 20.0),)
    assert first.texts == ("note",) and "2019" in first.xticklabels
    assert checks.figure(facts) is facts  # already plain facts (as mcf-grade's test process receives them)
    assert checks.rebuild(json.loads(json.dumps(checks.plain(facts)))) == facts


def test_figure_refuses_axes_and_none_with_a_hint():
    fig, ax = plt.subplots()
    with pytest.raises(AssertionError, match=r"should be a matplotlib Figure \(return fig, not ax\), not a Axes"):
        checks.figure(ax, "plot(events)")
    with pytest.raises(AssertionError, match="not None"):
        checks.figure(None)


def test_fingerprints_ignore_dtypes_and_float_noise_but_not_values(capsys):
    frame = pd.DataFrame({"year": [2019, 2020], "share": [0.1 + 0.2, 0.5]})
    same = pd.DataFrame({"year": pd.array([2019, 2020], dtype="Int64"), "share": [0.3, 0.5]})
    other = pd.DataFrame({"year": [2019, 2020], "share": [0.3, 0.6]})
    assert checks.fingerprint(frame) == checks.fingerprint(same) != checks.fingerprint(other)
    checks.self_check(same, checks.fingerprint(frame))
    assert "matches the course's answer" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="cannot say what differs: check the shares") as failure:
        checks.self_check(other, checks.fingerprint(frame), hint="check the shares")
    assert "0.6" not in str(failure.value).split("fingerprint")[0]


def test_passed_says_so_briefly(capsys):
    checks.passed("Question 1")
    assert capsys.readouterr().out.startswith("\u2713 Question 1: the visible tests pass.")


def test_in_a_kernel_warnings_and_stderr_become_stdout_but_errors_stay_errors():
    """What nbgrader sees: no stderr output from an honest cell, an error output from a real error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in (
        "from mcf_course import checks\nchecks.show_warnings_on_stdout()",
        "import sys, warnings\nwarnings.warn('deprecated thing', FutureWarning)\nprint('debug', file=sys.stderr)",
        "raise ValueError('real error')")])
    NotebookClient(nb, kernel_name="python3", allow_errors=True, timeout=60).execute()
    honest = nb.cells[1].outputs
    assert honest and {o.get("name") for o in honest} == {"stdout"}, honest
    assert "FutureWarning: deprecated thing" in "".join(o["text"] for o in honest)
    assert [o.output_type for o in nb.cells[2].outputs] == ["error"]
