// Loaded just before require.js: tells it (through its global configuration object) that the
// Jupyter widgets HTML manager is served beside this file, in the book itself, whatever folder
// the book is served from; the manager then finds its fonts and styles there too.
var require = {
  paths: {
    "@jupyter-widgets/html-manager/dist": new URL("vendor/html-manager/dist", document.currentScript.src).href,
  },
};
