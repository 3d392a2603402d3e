// The course's script (loaded deferred on every page): the explorers, and small fixes to the book
// theme (pydata-sphinx-theme), each a case the theme's options cannot set; tests/test_browser.py
// checks each of them in a real browser.
(function () {
  // The theme reads a colour mode before it has one ("Got invalid theme mode") unless set.
  const root = document.documentElement;
  if (!root.dataset.mode) root.dataset.mode = "auto";

  // The navigation drawers. pydata-sphinx-theme 0.17.1 (pinned in requirements.txt) opens them only
  // from the first ".primary-toggle" / ".secondary-toggle" on the page, a hidden one; the visible
  // buttons did nothing (pydata-sphinx-theme #2451, sphinx-book-theme #988). Each visible toggle
  // passes its click (tap, Enter, Space) to the first, which opens the drawer on a phone and, through
  // sphinx-book-theme's own handler, hides the sidebar on a wide screen. Drop this once the themes
  // are upgraded to a release that fixes #2451.
  function drawerToggles() {
    for (const side of ["primary", "secondary"]) {
      const [first, ...others] = document.querySelectorAll(`.${side}-toggle`);
      for (const toggle of others) {
        if (toggle.dataset.forwarded) continue;
        toggle.dataset.forwarded = "";
        toggle.addEventListener("click", (event) => {
          event.preventDefault();
          event.stopPropagation();
          first.click();
        });
      }
    }
  }

  // A control's accessible name must contain its visible text (WCAG 2.5.3, label in name):
  // the theme's search button shows "Search Ctrl+K" but is named "Search", and its colour-mode
  // button shows an icon titled "Light", "Dark" or "System Settings" but is named "Color mode".
  function nameFromText() {
    for (const el of document.querySelectorAll("button[aria-label], a[aria-label]")) {
      const titles = [...el.querySelectorAll("[title], svg title")]
        .map((t) => t.getAttribute("title") || t.textContent).filter(Boolean);
      const text = ((el.innerText || "").replace(/\s+/g, " ").trim() || [...new Set(titles)].join(", "));
      const label = el.getAttribute("aria-label");
      if (!text || label.toLowerCase().includes(text.toLowerCase())) continue;
      el.setAttribute("aria-label", text.toLowerCase().includes(label.toLowerCase()) ? text : `${label}: ${text}`);
    }
  }
  // A region that scrolls must be reachable by keyboard: wide tables on a phone.
  function focusableScrollers() {
    for (const el of document.querySelectorAll(".bd-article *")) {
      const style = getComputedStyle(el);
      const scrolls = ["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
      if (scrolls && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        if (!el.hasAttribute("role")) el.setAttribute("role", "region");
        if (!el.hasAttribute("aria-label")) el.setAttribute("aria-label", "scrollable content");
      }
    }
  }
  // Docutils marks the reference list role="list" but its entries "doc-biblioentry", a role
  // ARIA does not allow inside a list: the entries are list items.
  function referenceList() {
    for (const entry of document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]')) {
      entry.setAttribute("role", "listitem");
    }
  }

  // Explorers (mcf_course.explorer.StaticExplorer): a form of controls over views drawn when the
  // book was built. The explorer's static twin, the figure after it, becomes its default view, so
  // that the chart appears (and is read) once. A view's images load when it is first shown; a
  // change of view is announced to screen readers by its one-line summary.
  function explorers() {
    for (const box of document.querySelectorAll(".course-explorer:not([data-ready])")) {
      box.dataset.ready = "";
      const form = box.querySelector(".explorer-controls");
      const status = box.querySelector(".explorer-status");
      const panes = [...box.querySelectorAll(":scope > .explorer-pane")];
      const twin = box.dataset.twin && document.getElementById(box.dataset.twin);
      const first = panes.find((pane) => pane.dataset.view === box.dataset.default);
      if (twin && first) {
        const own = first.querySelector(":scope > figure, :scope > a > figure");
        if (own) own.replaceWith(twin); else first.prepend(twin);
      }
      const controls = [...form.querySelectorAll("fieldset, input[type=range], select")];
      const key = () => controls.map((c) => (c.matches("fieldset") ? c.querySelector("input:checked").value : c.value)).join(",");
      const show = (announce) => {
        const wanted = key();
        for (const pane of panes) {
          pane.hidden = pane.dataset.view !== wanted;
          if (pane.hidden) continue;
          for (const img of pane.querySelectorAll("img[data-src]")) {
            img.src = img.dataset.src;
            img.removeAttribute("data-src");
          }
          if (announce) status.textContent = pane.dataset.summary;
        }
        for (const range of form.querySelectorAll("input[type=range]")) {
          const labels = JSON.parse(range.dataset.labels);
          range.setAttribute("aria-valuetext", labels[range.value]);
          [...range.parentElement.querySelectorAll(".explorer-ticks span")]
            .forEach((tick, i) => tick.classList.toggle("current", String(i) === range.value));
        }
      };
      form.hidden = false;
      form.addEventListener("input", () => show(true));
      form.addEventListener("submit", (event) => event.preventDefault());
      show(false);
    }
  }

  function run() {
    explorers(); drawerToggles(); nameFromText(); focusableScrollers(); referenceList();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run); else run();
  window.addEventListener("load", () => { nameFromText(); focusableScrollers(); });
  window.addEventListener("resize", () => focusableScrollers());
})();
