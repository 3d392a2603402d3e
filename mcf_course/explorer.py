"""Explorers: a few controls that switch between views drawn in advance.

A book page is static HTML, with no Python behind it. An explorer therefore draws every view
its controls can select when the page is built (a handful: a few options per control), and
the controls only switch between those views. It takes one of two forms:

- **In a notebook** (Jupyter, Binder, Colab) it is an ipywidgets explorer: toggle buttons,
  drop-down lists or sliders linked in the browser (``jslink``) to ``Stack`` widgets.
- **In the book** it is plain HTML (``StaticExplorer``): a form of radio buttons, sliders or a
  drop-down list, and the views, which the book's own small script (``book/_static/course.js``)
  shows one at a time; their images are separate files that load when shown. The book's build
  asks for this form by setting ``MCF_EXPLORERS=static`` (``book/_ext/course_book.py``).

Each chapter also shows an explorer's default view as an ordinary figure, its *static twin*,
right after it. With JavaScript, the book's script puts the twin in the explorer as its default
view, so that it appears (and is read) once; without JavaScript, the explorer says what it is
and that the figure below is its default view. Every view carries alt text and a one-line
summary, which the book's script announces to screen readers when the view changes.

    explorer = choice_explorer(
        {"Themes": [("MCF only", ("MCF",)), ("all", None)],
         "Colour by": [("theme", "theme"), ("confidence", "confidence")]},
        draw=lambda themes, colour: ...,      # returns a matplotlib Figure (or HTML)
        describe=lambda themes, colour: ...)  # returns one sentence about that view
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt

from mcf_course.plotting import figure_png

Options = Sequence[tuple[str, Any]]  # (label shown on the control, value passed to draw)
#: The environment variable that chooses the explorers' form: "static" (the book) or widgets.
FORM_VARIABLE = "MCF_EXPLORERS"


def figure_html(fig, alt: str, caption: str = "") -> str:
    """A matplotlib figure as an HTML ``<figure>`` with an inline PNG, alt text and caption."""
    data, metadata = figure_png(fig)
    plt.close(fig)
    source = "data:image/png;base64," + base64.b64encode(data).decode()
    caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure class="explorer-view"><img class="explorer-image" src="{source}" '
            f'width="{metadata["width"]}" alt="{html.escape(alt, quote=True)}">{caption_html}</figure>')


def views(controls: dict[str, Options]) -> list[tuple[int, ...]]:
    """Every combination of option positions, in the order the explorer lays them out."""
    return list(itertools.product(*(range(len(options)) for options in controls.values())))


def choice_explorer(controls: dict[str, Options], draw: Callable[..., Any],
                    describe: Callable[..., str], default: dict[str, int] | None = None,
                    alt: Callable[..., str] | None = None, sliders: Sequence[str] = ()):
    """An explorer over every combination of ``controls``' options.

    Parameters
    ----------
    controls : dict
        Control name -> list of (label, value). Up to four options become toggle buttons
        (radio buttons in the book), more a drop-down list.
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
    ipywidgets.VBox or StaticExplorer
        In a notebook, the controls above nested ``Stack`` widgets holding every view, each
        stack's ``selected_index`` linked in the browser to its control's ``index``. When
        ``MCF_EXPLORERS=static`` (the book's build), a ``StaticExplorer``.
    """
    default = default or {}
    names = list(controls)
    chosen = tuple(default.get(name, 0) for name in names)
    drawn = {}
    for positions in views(controls):
        values = [controls[n][i][1] for n, i in zip(names, positions, strict=True)]
        sentence = describe(*values)
        shown = draw(*values)
        body = shown if isinstance(shown, str) else figure_html(shown, alt(*values) if alt else sentence, sentence)
        drawn[positions] = (body, sentence)
    if os.environ.get(FORM_VARIABLE) == "static":
        return StaticExplorer(controls, drawn, chosen, sliders)
    return _widget_explorer(controls, {k: body for k, (body, _) in drawn.items()}, chosen, sliders)


def _widget_explorer(controls, drawn, chosen, sliders):
    import ipywidgets as widgets

    names = list(controls)
    widgets_for = []
    for name, index in zip(names, chosen, strict=True):
        labels = [label for label, _ in controls[name]]
        kind = (widgets.SelectionSlider if name in sliders
                else widgets.ToggleButtons if len(labels) <= 4 else widgets.Dropdown)
        widgets_for.append(kind(options=labels, index=index, description=name,
                                style={"description_width": "initial"}))

    def build(level: int, positions: tuple[int, ...]):
        if level == len(names):
            return widgets.HTML(value=drawn[positions])
        children = [build(level + 1, (*positions, i)) for i in range(len(controls[names[level]]))]
        stack = widgets.Stack(children=children, selected_index=widgets_for[level].index)
        widgets.jslink((widgets_for[level], "index"), (stack, "selected_index"))
        return stack

    return widgets.VBox([widgets.HBox(widgets_for), build(0, ())])


class StaticExplorer:
    """The book's form of an explorer: plain HTML that the book's script brings to life.

    Without JavaScript it shows only a note (the static twin after it is the default view);
    with it, a form of controls and the view they select. View images are ``data-src`` data
    URIs, which the book's build writes out as image files (``book/_ext/course_book.py``) and
    the script loads when their view is first shown.
    """

    def __init__(self, controls: dict[str, Options], drawn: dict[tuple[int, ...], tuple[str, str]],
                 default: tuple[int, ...], sliders: Sequence[str] = ()):
        self.controls, self.drawn, self.default, self.sliders = controls, drawn, default, tuple(sliders)

    @property
    def views(self) -> dict[tuple[int, ...], str]:
        """The HTML of every view, by option positions."""
        return {key: body for key, (body, _) in self.drawn.items()}

    def _control_html(self, number: int, name: str, options: Options, chosen: int) -> str:
        label = html.escape(name)
        labels = [option for option, _ in options]
        if name in self.sliders:
            ticks = "".join(f"<span>{html.escape(t)}</span>" for t in labels)
            return (f'<div class="explorer-control explorer-slider"><label for="{{id}}-c{number}">{label}</label>'
                    f'<input type="range" id="{{id}}-c{number}" name="c{number}" min="0" max="{len(labels) - 1}" '
                    f'step="1" value="{chosen}" aria-valuetext="{html.escape(labels[chosen], quote=True)}" '
                    f"data-labels='{html.escape(json.dumps(labels), quote=True)}'>"
                    f'<div class="explorer-ticks" aria-hidden="true">{ticks}</div></div>')
        if len(labels) > 4:
            items = "".join(f'<option value="{i}"{" selected" * (i == chosen)}>{html.escape(t)}</option>'
                            for i, t in enumerate(labels))
            return (f'<div class="explorer-control explorer-select"><label for="{{id}}-c{number}">{label}</label>'
                    f'<select id="{{id}}-c{number}" name="c{number}">{items}</select></div>')
        items = "".join(f'<label><input type="radio" name="c{number}" value="{i}"{" checked" * (i == chosen)}>'
                        f"<span>{html.escape(t)}</span></label>" for i, t in enumerate(labels))
        return f'<fieldset class="explorer-control explorer-choice"><legend>{label}</legend>{items}</fieldset>'

    def _repr_html_(self) -> str:
        key = ",".join(map(str, self.default))
        ident = "explorer-" + hashlib.sha256(
            "".join(body for body, _ in self.drawn.values()).encode()).hexdigest()[:10]
        controls = "".join(self._control_html(n, name, options, self.default[n])
                           for n, (name, options) in enumerate(self.controls.items())).replace("{id}", ident)
        described = "; ".join(f"{name} ({', '.join(label for label, _ in options)})"
                              for name, options in self.controls.items())
        note = (f'<noscript><p class="explorer-note">An explorer: {len(self.drawn)} views drawn when the book '
                f"was built, chosen by {html.escape(described)}. Its controls need JavaScript; the figure "
                "below shows its default view.</p></noscript>")
        shown = "".join(
            f'<div class="explorer-pane" data-view="{",".join(map(str, positions))}" '
            f'data-summary="{html.escape(sentence, quote=True)}" hidden>{_lazy(body)}</div>'
            for positions, (body, sentence) in self.drawn.items())
        return (f'<div class="course-explorer" id="{ident}" data-default="{key}">{note}'
                f'<form class="explorer-controls" hidden>{controls}</form>'
                f'<p class="explorer-status visually-hidden" aria-live="polite"></p>{shown}</div>')


def _lazy(body: str) -> str:
    """A view's HTML with its images loaded only when shown, each opening full size when tapped."""
    return re.sub(r'<img ([^>]*?)src="([^"]+)"([^>]*)>',
                  r'<a class="explorer-enlarge" href="\2"><img \1data-src="\2" loading="lazy"\3></a>', body)


def stack_views(explorer) -> dict[tuple[int, ...], str]:
    """The HTML of every view of an explorer, by option positions (for tests and checks)."""
    if isinstance(explorer, StaticExplorer):
        return explorer.views
    found = {}

    def walk(node, path):
        if hasattr(node, "selected_index"):
            for i, child in enumerate(node.children):
                walk(child, (*path, i))
        else:
            found[path] = node.value

    walk(explorer.children[1], ())
    return found
