// Pastes the chat tag with the service and site named in this page's query
// (`?service=ORIGIN&site=KEY`), as a site on another origin would; `position`,
// `label` and `greeting` become the tag's data- options.
(function () {
  "use strict";
  var q = new URLSearchParams(location.search);
  var s = document.createElement("script");
  s.src = (q.get("service") || "") + "/widget.js";
  s.setAttribute("data-site", q.get("site") || "");
  ["position", "label", "greeting"].forEach(function (k) {
    if (q.get(k)) s.setAttribute("data-" + k, q.get(k));
  });
  s.async = true;
  document.body.appendChild(s);
})();
