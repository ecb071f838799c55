// The ipywidgets embed manager typesets widget labels with MathJax 2's API
// (MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])); the book loads MathJax 3, where that
// throws "Cannot read properties of undefined (reading 'Queue')". Map the call onto MathJax 3.
// DOMContentLoaded comes after the deferred MathJax script and before the widgets are drawn.
document.addEventListener("DOMContentLoaded", function () {
  if (window.MathJax && !window.MathJax.Hub) {
    window.MathJax.Hub = {
      Queue: function (job) {
        if (window.MathJax.typesetPromise && job && job[2]) window.MathJax.typesetPromise([job[2]]);
      },
    };
  }
});
