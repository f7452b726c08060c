// Pastes the chat tag with the service and site named in this page's query
// (`?service=ORIGIN&site=KEY`), as a site on another origin would.
(function () {
  "use strict";
  var q = new URLSearchParams(location.search);
  var s = document.createElement("script");
  s.src = (q.get("service") || "") + "/widget.js";
  s.setAttribute("data-site", q.get("site") || "");
  s.async = true;
  document.body.appendChild(s);
})();
