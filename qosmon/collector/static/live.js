// The live show page keeps itself current: the collector sends the page's
// body as a server-sent event whenever it changes, and once more when the
// show ends. Served from the collector's own origin (the page's CSP allows
// nothing else); the body is HTML the collector rendered and escaped.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-events");
  var target = document.getElementById("live");
  if (!url || !target || !window.EventSource) {
    return;
  }
  var source = new EventSource(url);
  source.addEventListener("view", function (event) {
    target.innerHTML = event.data;
  });
  source.addEventListener("ended", function (event) {
    target.innerHTML = event.data;
    source.close();
  });
})();
