"""Explorers: a few controls that switch between views drawn in advance.

A book page is static HTML, with no Python behind it. An explorer therefore draws every view
its controls can select when the page is built (a handful: a few options per control), and
the controls switch between those views in the browser, through links between widgets
(ipywidgets' ``jslink``) that need no kernel. The same explorer works unchanged in a live
notebook (Jupyter, Binder, Colab), and offline: the book serves the widget JavaScript itself.

Each chapter also shows an explorer's default view as an ordinary figure, its *static twin*,
for print and for readers without JavaScript. Every view carries alt text and a one-line
summary that a screen reader can read.

    explorer = choice_explorer(
        {"Themes": [("MCF only", ("MCF",)), ("all", None)],
         "Colour by": [("theme", "theme"), ("confidence", "confidence")]},
        draw=lambda themes, colour: ...,      # returns a matplotlib Figure
        describe=lambda themes, colour: ...)  # returns one sentence about that view
"""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt

Options = Sequence[tuple[str, Any]]  # (label shown on the control, value passed to draw)


def figure_html(fig, alt: str, caption: str = "") -> str:
    """A matplotlib figure as an HTML ``<figure>`` with an inline PNG, alt text and caption."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure class="explorer-view"><img class="wide-figure" src="data:image/png;base64,{data}" '
            f'alt="{html.escape(alt, quote=True)}" style="max-width:100%">{caption_html}</figure>')


def views(controls: dict[str, Options]) -> list[tuple[int, ...]]:
    """Every combination of option positions, in the order the explorer lays them out."""
    return list(itertools.product(*(range(len(options)) for options in controls.values())))


def choice_explorer(controls: dict[str, Options], draw: Callable[..., Any],
                    describe: Callable[..., str], default: dict[str, int] | None = None,
                    alt: Callable[..., str] | None = None, sliders: Sequence[str] = ()):
    """An ipywidgets explorer over every combination of ``controls``' options.

    Parameters
    ----------
    controls : dict
        Control name -> list of (label, value). Up to four options become toggle buttons,
        more a drop-down list.
    draw : callable
        Called with the chosen values, positionally in the order of ``controls``; returns a
        matplotlib Figure (or an HTML string).
    describe : callable
        Called like ``draw``; returns one sentence shown under the view (and, unless ``alt``
        is given, used as the image's alt text).
    default : dict, optional
        Control name -> position of the option selected at first (0 by default).
    sliders : sequence of str, optional
        Controls to show as a slider over their options (for ordered values such as weights).

    Returns
    -------
    ipywidgets.VBox
        The controls above nested ``Stack`` widgets holding every view, each stack's
        ``selected_index`` linked in the browser to its control's ``index``.
    """
    import ipywidgets as widgets

    default = default or {}
    names = list(controls)
    widgets_for = []
    for name, options in controls.items():
        labels = [label for label, _ in options]
        kind = (widgets.SelectionSlider if name in sliders
                else widgets.ToggleButtons if len(labels) <= 4 else widgets.Dropdown)
        control = kind(options=labels, index=default.get(name, 0), description=name,
                       style={"description_width": "initial"})
        widgets_for.append(control)

    def build(level: int, chosen: tuple[int, ...]):
        if level == len(names):
            values = [controls[n][i][1] for n, i in zip(names, chosen, strict=True)]
            sentence = describe(*values)
            shown = draw(*values)
            body = shown if isinstance(shown, str) else figure_html(
                shown, alt(*values) if alt else sentence, sentence)
            return widgets.HTML(value=body)
        children = [build(level + 1, (*chosen, i)) for i in range(len(controls[names[level]]))]
        stack = widgets.Stack(children=children, selected_index=widgets_for[level].index)
        widgets.jslink((widgets_for[level], "index"), (stack, "selected_index"))
        return stack

    return widgets.VBox([widgets.HBox(widgets_for), build(0, ())])


def stack_views(explorer) -> dict[tuple[int, ...], str]:
    """The HTML of every view of an explorer, by option positions (for tests and checks)."""
    found = {}

    def walk(node, path):
        if hasattr(node, "selected_index"):
            for i, child in enumerate(node.children):
                walk(child, (*path, i))
        else:
            found[path] = node.value

    walk(explorer.children[1], ())
    return found
