// Starts the chat app. First it learns which page embeds this frame, from the
// browser: the `event.origin` of the loader's `switchboard:hello` message, never a
// URL parameter. The identity pair (user id, user hash) arrives in the same message,
// so it never sits in a URL either. Opened on its own, the frame's page is its own
// embedder.
const hello = new Promise((resolve) => {
  if (window.parent === window) {
    resolve({ origin: location.origin, user_id: null, user_hash: null });
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
    });
  });
  window.parent.postMessage({ type: "switchboard:ready" }, "*");
});
window.__switchboardHello = hello;
import("/widget/pkg/app.js").then((m) => m.default());
