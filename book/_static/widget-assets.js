// Loaded just before require.js: tells it (through its global configuration object) that the
// Jupyter widgets HTML manager is served beside this file, in the book itself, whatever folder
// the book is served from. embed-amd.js defines several named modules; each finds its fonts and
// styles next to the address require.js gives it, so every one of them is mapped into dist/
// (otherwise, for example, ToggleButtons ask for their icon font under the page's folder).
var require = (function () {
  var dist = new URL("vendor/html-manager/dist", document.currentScript.src).href;
  var paths = {"@jupyter-widgets/html-manager/dist": dist};
  ["base", "base7", "controls", "controls7", "html-manager"].forEach(function (name) {
    paths["@jupyter-widgets/" + name] = dist + "/" + name;
  });
  return {paths: paths};
})();
