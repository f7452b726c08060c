// Starts the chat app. First it learns which page embeds this frame, from the
// browser: the `event.origin` of the loader's `switchboard:hello` message, never a
// URL parameter. The identity pair (user id, user hash) arrives in the same message,
// so it never sits in a URL either. Opened on its own, the frame's page is its own
// embedder. The app's glue is imported statically, so it loads and links with this
// module (the page also preloads it and the wasm) rather than after it ran.
// A frame the loader made in standby (`standby=1`: its document names no wasm) starts
// the app only when the hello comes, that is when the visitor opens the chat, in the
// language the page asks for then.
import init from "/widget/pkg/app.js";
const standby = new URLSearchParams(location.search).has("standby");
const hello = new Promise((resolve) => {
  if (window.parent === window) {
    resolve({ origin: location.origin, user_id: null, user_hash: null, page_url: location.href, page_title: document.title });
    return;
  }
  addEventListener("message", function on(e) {
    if (e.source !== window.parent || !e.data || e.data.type !== "switchboard:hello") return;
    removeEventListener("message", on);
    resolve({
      origin: e.origin,
      user_id: e.data.user_id || null,
      user_hash: e.data.user_hash || null,
      name: e.data.name || null,
      email: e.data.email || null,
      page_url: e.data.page_url || null,
      page_title: e.data.page_title || null,
      lang: typeof e.data.lang === "string" ? e.data.lang : null,
    });
  });
  // Later page changes of the embedding page (the chat app reports them to agents).
  addEventListener("message", (e) => {
    if (e.source !== window.parent || !e.data || e.data.type !== "switchboard:page") return;
    window.__switchboardPage = { url: String(e.data.url || ""), title: String(e.data.title || "") };
    dispatchEvent(new Event("switchboard-page"));
  });
  // The site's accent colour goes with it (the loader paints the launcher with it).
  let accent = null;
  try {
    const block = document.getElementById("switchboard-site");
    if (block) accent = JSON.parse(block.textContent).accent || null;
  } catch (_) {}
  window.parent.postMessage({ type: "switchboard:ready", accent }, "*");
});
window.__switchboardHello = hello;
// Marks for the opening-time bench (`tests/browser/opentime.mjs`): before the wasm is
// compiled and after the app's first render.
function start() {
  performance.mark("switchboard-init");
  init().then(() => performance.mark("switchboard-mounted"));
}
if (standby) {
  hello.then((h) => {
    // The app reads its language from the address, as in a frame made at the open.
    if (typeof h.lang === "string") {
      const url = new URL(location.href);
      url.searchParams.set("lang", h.lang);
      history.replaceState(null, "", url);
    }
    start();
  });
} else {
  start();
}
