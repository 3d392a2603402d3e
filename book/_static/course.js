// Small accessibility fixes to the book theme (pydata-sphinx-theme), found by the browser
// test's axe-core check (tests/test_browser.py); each is a case the theme's options cannot set.
(function () {
  // The theme reads a colour mode before it has one ("Got invalid theme mode") unless set.
  const root = document.documentElement;
  if (!root.dataset.mode) root.dataset.mode = "auto";

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
  // A region that scrolls must be reachable by keyboard: wide tables and figures on a phone.
  function focusableScrollers(root) {
    for (const el of (root || document).querySelectorAll(".bd-article *")) {
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
  // The explorers' slider handles (noUiSlider) have role="slider" but no name: each is named
  // after its widget's visible label, for example "Decisive evidence".
  function sliderNames() {
    for (const handle of document.querySelectorAll('.noUi-handle[role="slider"]:not([aria-label])')) {
      const label = handle.closest(".widget-slider")?.querySelector(".widget-label");
      if (label && label.textContent.trim()) handle.setAttribute("aria-label", label.textContent.trim());
    }
  }
  // Widgets render after the page has loaded: apply the fixes to what they add, once a frame.
  let queued = false;
  function widgetsChanged() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; sliderNames(); focusableScrollers(); });
  }
  function run() {
    nameFromText(); focusableScrollers(); referenceList(); sliderNames();
    for (const area of document.querySelectorAll(".cell_output:not([data-watched])")) {
      area.dataset.watched = "";
      new MutationObserver(widgetsChanged).observe(area, {childList: true, subtree: true});
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run); else run();
  window.addEventListener("load", run);
  window.addEventListener("resize", () => focusableScrollers());
})();
