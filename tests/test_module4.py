"""Module 4's tables, figures and explorer: counts match the rows, measures stay apart, every view is there."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from mcf_course.explorer import stack_views
from mcf_course.modules.module4 import (
    EVIDENCE_KINDS,
    LEVELS,
    NO_LEVEL,
    comparable_rows,
    ecosystem_explorer,
    evidence_table,
    plot_ecosystem,
    plot_identifier_growth,
    plot_identifier_tiers,
)
from mcf_course.plotting import latin_text


@pytest.fixture(scope="module")
def ties(course_dataset):
    return course_dataset("shipbuilding_ecosystem")


@pytest.fixture(scope="module")
def stats(course_dataset):
    return course_dataset("identifier_stats")


@pytest.fixture(scope="module")
def nodes(course_dataset):
    return course_dataset("identifier_nodes")


def fictional_ties() -> pd.DataFrame:
    """Four made-up ties (fictional), one of them planned and one without a level."""
    return pd.DataFrame({
        "tie_id": ["X1", "X2", "X3", "X4"], "actor": ["Yard", "Yard", "Firm", "Firm"],
        "counterpart": ["Alliance", "Node", "Yard", "Plan"], "level": ["national", "sector", None, "national"],
        "evidence_kind": ["institutional overlap", "data flow", "institutional overlap", "data flow"],
        "planned": [False, False, False, True], "confidence": ["high", "medium", "low", "medium"]})


def test_evidence_table_counts_every_tie_once(ties):
    table = evidence_table(ties).set_index("evidence")
    assert list(table.index) == list(EVIDENCE_KINDS)
    assert list(table.columns) == [*LEVELS, "total"]
    assert table[list(LEVELS)].to_numpy().sum() == len(ties)
    for kind in EVIDENCE_KINDS:
        rows = ties[ties["evidence_kind"] == kind]
        planned = int(rows["planned"].sum())
        assert table.loc[kind, "total"] == (f"{len(rows)}, {planned} planned" if planned else str(len(rows)))
        assert table.loc[kind, list(LEVELS)].sum() == len(rows)
        assert table.loc[kind, NO_LEVEL] == int(rows["level"].isna().sum())


def test_evidence_table_keeps_empty_kinds_and_levels():
    table = evidence_table(fictional_ties()).set_index("evidence")
    assert table.loc["operational use", list(LEVELS)].sum() == 0, "a kind with no tie stays as a row of zeros"
    assert table.loc["operational use", "total"] == "0"
    assert table.loc["institutional overlap", "national"] == 1
    assert table.loc["institutional overlap", NO_LEVEL] == 1
    assert table.loc["data flow", "total"].endswith(", 1 planned")
    assert table["provincial"].sum() == 0 and table["district"].sum() == 0


def test_comparable_rows_keep_one_measure(stats):
    rows = comparable_rows(stats, "secondary nodes")
    assert set(rows["scope"]) == {"China"} and set(rows["counting"]) == {"cumulative"}
    assert "I09" not in set(rows["stat_id"]), "Jiangsu's 39 nodes are not a national count"
    assert "I26" not in set(rows["stat_id"]), "a target for new nodes within 2020 is not a cumulative figure"
    assert list(rows["as_of"]) == sorted(rows["as_of"])
    with pytest.raises(ValueError, match="registered identifiers"):
        comparable_rows(stats, "registered identifier")  # a typo names the real metrics


@pytest.mark.parametrize("metric", ["registered identifiers", "secondary nodes"])
def test_growth_plot_draws_each_comparable_row_once(stats, metric):
    fig = plot_identifier_growth(stats, metric)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    points = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert len(points) == len(comparable_rows(stats, metric))
    labels = {text.get_text() for text in ax.texts}
    assert any("target for" in label for label in labels), "targets are labelled as targets"
    assert ax.get_ylabel() == comparable_rows(stats, metric)["unit"].iloc[0]


def test_tiers_show_every_named_node_and_mark_disputes(nodes):
    fig = plot_identifier_tiers(nodes)
    texts = " ".join(text.get_text() for text in fig.axes[0].texts)
    for city in nodes.loc[nodes["entry"] == "node", "city"].dropna():
        assert city in texts
    assert texts.count("disputed") == int(nodes["disputed"].sum())


def test_labels_carry_no_chinese():
    assert latin_text("Guangzhou node (工业互联网标识解析国家顶级节点(广州))", 80) == "Guangzhou node"
    assert latin_text("CSSC (CSSC) (中国船舶集团有限公司)", 80) == "CSSC (CSSC)"


def test_network_draws_only_the_chosen_ties(ties):
    def drawn(**choice):
        fig = plot_ecosystem(ties, **choice)
        return [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 2]

    assert len(drawn()) == len(ties)
    assert len(drawn(evidence="data flow")) == int((ties["evidence_kind"] == "data flow").sum())
    assert len(drawn(planned=False)) == int((~ties["planned"]).sum())
    fig = plot_ecosystem(ties, evidence="operational use")
    assert "No tie of this kind" in " ".join(t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="evidence must be"):
        plot_ecosystem(ties, evidence="rumour")


def test_explorer_has_a_view_for_every_choice(ties):
    explorer = ecosystem_explorer(ties)
    views = stack_views(explorer)
    assert len(views) == (len(EVIDENCE_KINDS) + 1) * 2
    first = views[(0, 0)]
    assert f"{len(ties)} of {len(ties)} ties" in first and "<img" in first and 'alt="' in first
    hidden = views[(0, 1)]
    assert f"{int((~ties['planned']).sum())} of {len(ties)} ties" in hidden
    assert "0 of" in views[(3, 0)], "the operational-use view counts no tie"
