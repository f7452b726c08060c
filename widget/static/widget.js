/* Switchboard chat loader. Paste:
 *  <script src="https://HOST/widget.js" data-site="SITE_KEY" async></script>
 * Optional: data-lang="de", data-color="#0f7b6c" (launcher colour before the site's
 * accent is known), data-position="left" (default right), data-label="Questions?"
 * (text on the launcher), data-greeting="Hi! Can we help?" (a teaser bubble above the
 * launcher until the visitor opens the chat or dismisses it), and for identity verification data-user-id="…" with
 * data-user-hash="TIMESTAMP.hex(HMAC-SHA256(site secret, user id + ':' + TIMESTAMP))"
 * computed by the site's server (valid 24 hours).
 * The frame learns this page's origin from the browser (postMessage event.origin) and
 * gets the identity pair in that message, never in its URL.
 * It draws a launcher button (in a shadow root, so the page's styles cannot reach it).
 * Once the page has loaded and the browser is idle, it puts the chat's frame behind the
 * launcher in standby (its document, style sheet and script: no wasm, and nothing runs
 * but a listener); the chat app itself starts only when the visitor opens it, and then
 * loads only its wasm. With Save-Data on there is no standby frame: the first open
 * loads it all.
 *
 * JS API on one global, callable before the loader ran with this stub:
 *   window.Switchboard = window.Switchboard || function () { (Switchboard.q = Switchboard.q || []).push(arguments) };
 *   Switchboard("open") / Switchboard.open(), "close", "toggle",
 *   "identify", {name, email, userId, userHash}   (before the chat opens),
 *   "setLanguage", "de"                           (before the chat opens),
 *   "on" / "off", "open" | "close" | "message" | "unread", fn
 * "message" gets {from, text} for each agent message; "unread" the count while closed. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__switchboard) return;
  window.__switchboard = true;
  var site = script.getAttribute("data-site") || "";
  var base = new URL(script.src, location.href).origin;
  var lang = script.getAttribute("data-lang") || "";
  var KEY = "switchboard:open:" + site;
  var de = /^de\b/i.test(lang || navigator.language || "");
  var label = de ? "Chat öffnen" : "Open chat";
  var closeLabel = de ? "Chat schließen" : "Close chat";
  var left = script.getAttribute("data-position") === "left";
  var text = (script.getAttribute("data-label") || "").slice(0, 40);
  var greeting = (script.getAttribute("data-greeting") || "").slice(0, 200);
  var TEASER = "switchboard:teaser:" + site;
  var identity = {
    user_id: script.getAttribute("data-user-id") || null,
    user_hash: script.getAttribute("data-user-hash") || null,
    name: null,
    email: null
  };
  var listeners = { open: [], close: [], message: [], unread: [] };
  var unread = 0;
  function emit(ev, data) {
    (listeners[ev] || []).slice().forEach(function (f) { try { f(data); } catch (e) {} });
  }
  var host = document.createElement("div");
  host.setAttribute("data-switchboard", "");
  // Inline and !important: no stylesheet of the host page can move the launcher.
  var place = { position: "fixed", right: left ? "auto" : "20px", bottom: "20px", left: left ? "20px" : "auto", top: "auto",
    "z-index": "2147483000", display: "block", width: "auto", height: "auto", margin: "0",
    padding: "0", border: "0", transform: "none", visibility: "visible", opacity: "1" };
  for (var k in place) host.style.setProperty(k, place[k], "important");
  var root = host.attachShadow({ mode: "open" });
  // Styles as a constructed sheet: pages with a strict CSP (no inline styles) allow it.
  var css =
    ":host{all:initial}" +
    "button{all:unset;position:relative;box-sizing:border-box;width:60px;height:60px;border-radius:50%;background:#1f5eff;color:#fff;display:grid;place-items:center;cursor:pointer;box-shadow:0 6px 24px rgba(16,24,64,.28);transition:transform .15s}" +
    "button:hover{transform:scale(1.06)}button:focus-visible{outline:3px solid #9db8ff;outline-offset:3px}" +
    ".panel{position:absolute;right:0;bottom:76px;width:min(380px,calc(100vw - 40px));height:min(600px,calc(100vh - 120px));border-radius:16px;overflow:hidden;box-shadow:0 12px 48px rgba(16,24,64,.3);background:#fff}" +
    ".panel[hidden]{display:none}iframe{border:0;width:100%;height:100%;display:block}" +
    ".badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;box-sizing:border-box;border-radius:10px;background:#d92d20;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center;box-shadow:0 0 0 2px #fff}.badge[hidden]{display:none}" +
    ".panel.small{height:auto}.refused{margin:0;padding:20px 24px;font:15px/1.5 system-ui,sans-serif;color:#334}" +
    ":host([data-left]) .panel,:host([data-left]) .teaser{right:auto;left:0}" +
    "button.wide{width:auto;border-radius:30px;padding:0 22px 0 18px;display:flex;gap:10px;align-items:center;font:600 15px/1 system-ui,sans-serif}" +
    ".x{display:none}:host([data-open]) .x{display:block}:host([data-open]) .icon{display:none}" +
    ":host([data-open]) button.wide{width:60px;padding:0;justify-content:center}:host([data-open]) .wide>span:last-child{display:none}" +
    ".teaser{position:absolute;right:0;bottom:74px;width:max-content;max-width:min(280px,calc(100vw - 40px));background:#fff;color:#101828;border-radius:14px;padding:12px 34px 12px 14px;font:14px/1.45 system-ui,sans-serif;box-shadow:0 8px 30px rgba(16,24,64,.22);cursor:pointer;unicode-bidi:isolate}" +
    ".teaser[hidden],:host([data-open]) .teaser{display:none}" +
    ".teaser .dismiss{all:unset;position:absolute;top:6px;right:8px;width:22px;height:22px;border-radius:50%;display:grid;place-items:center;color:#475467;cursor:pointer;font:16px/1 system-ui}" +
    ".teaser .dismiss:focus-visible{outline:2px solid #9db8ff}" +
    // Phones: the open chat takes the whole screen; its own header closes it.
    "@media (max-width:480px){.panel{position:fixed;inset:0;width:100%;height:100%;border-radius:0;box-shadow:none}" +
    ".panel.small{inset:auto 0 0 0;height:auto}:host([data-open]) button{display:none}}";
  root.innerHTML =
    '<div class="panel" hidden></div>' +
    '<button type="button" aria-expanded="false" data-testid="launcher">' +
    '<span class="badge" hidden data-testid="unread"></span>' +
    '<svg class="icon" width="28" height="28" viewBox="0 0 24 24" fill="none" aria-hidden="true"><path d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16A2.5 2.5 0 0 1 4 13.5z" fill="currentColor"/></svg>' +
    '<svg class="x" width="24" height="24" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" aria-hidden="true"><path d="M6 6l12 12M18 6 6 18"/></svg>' +
    "</button>" +
    '<div class="teaser" hidden role="status" data-testid="teaser"><span class="t"></span><button type="button" class="dismiss" data-testid="teaser-dismiss">×</button></div>';
  if (left) host.setAttribute("data-left", "");
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    var st = document.createElement("style");
    st.textContent = css;
    root.appendChild(st);
  }
  var button = root.querySelector("button[data-testid=launcher]");
  button.setAttribute("aria-label", label);
  if (text) {
    var span = document.createElement("span");
    span.textContent = text;
    button.className = "wide";
    button.appendChild(span);
  }
  // The greeting teaser: until the visitor opens the chat or dismisses it (this tab).
  var teaser = root.querySelector(".teaser");
  var dismissed = false;
  try { dismissed = sessionStorage.getItem(TEASER) === "1"; } catch (e) {}
  if (greeting && !dismissed) {
    teaser.querySelector(".t").textContent = greeting;
    teaser.querySelector(".dismiss").setAttribute("aria-label", de ? "Hinweis schließen" : "Dismiss");
    teaser.hidden = false;
  }
  function hideTeaser() {
    teaser.hidden = true;
    try { sessionStorage.setItem(TEASER, "1"); } catch (e) {}
  }
  teaser.addEventListener("click", function (e) {
    hideTeaser();
    if (!e.target.classList.contains("dismiss")) open(true);
  });
  // The site's accent colour: `data-color` at once, the site's config once asked.
  function paint(c) {
    if (/^#[0-9a-fA-F]{6}$/.test(c || "")) button.style.setProperty("background", c);
  }
  paint(script.getAttribute("data-color"));
  var badge = root.querySelector(".badge");
  function setUnread(n) {
    unread = n;
    badge.hidden = n === 0;
    badge.textContent = n > 9 ? "9+" : String(n);
    if (panel.hidden) button.setAttribute("aria-label", n ? label + " (" + n + ")" : label);
    emit("unread", n);
  }
  var panel = root.querySelector(".panel");
  var frame = null;
  var checked = null;
  // Whether the frame said it is running (its document was allowed to load here),
  // whether it was made in standby (it waits for the hello before the app starts),
  // whether it got its hello, and whether a refusal check is planned.
  var ready = false;
  var standby = false;
  var greeted = false;
  var checking = false;
  // Asks the service once whether this page may have the chat (the answer is readable
  // only by allowed origins): only when the frame has not said it is running soon
  // after the first open, so an allowed page's open makes one request, not two.
  function allowed() {
    if (!checked) {
      // On the service's own origin the page names itself, as the chat frame does.
      var headers = base === location.origin ? { "X-Switchboard-Embedder": location.origin } : {};
      checked = fetch(base + "/api/v1/sites/" + encodeURIComponent(site), { mode: "cors", credentials: "omit", headers: headers })
        .then(function (r) {
          if (!r.ok) return false;
          return r.json().then(function (info) {
            if (info && info.accent) paint(info.accent);
            return true;
          }, function () { return true; });
        }, function () { return false; });
    }
    return checked;
  }
  function refuse() {
    var p = document.createElement("p");
    p.className = "refused";
    p.setAttribute("role", "status");
    p.setAttribute("data-testid", "chat-unavailable");
    p.textContent = de ? "Der Chat ist auf dieser Seite nicht verfügbar." : "Chat is not available on this page.";
    panel.classList.add("small");
    panel.appendChild(p);
    if (window.console) console.warn("Switchboard: site \"" + site + "\" does not allow " + location.origin + " (add it to the site's allowed origins)");
  }
  // `focus`: opened by the visitor (focus goes into the chat), not restored at load.
  function open(focus) {
    // The frame loads at once unless it waits in standby (its document is refused by
    // the browser anyway on a page the site does not list); a frame still silent 1.5 s
    // after the open makes the loader ask the service, and explain a refusal.
    if (!frame && !panel.firstChild) openFrame(focus, false);
    if (frame && !ready && !checking) {
      checking = true;
      setTimeout(function () {
        checking = false;
        if (ready) return;
        allowed().then(function (ok) {
          if (ok || ready) return;
          if (frame) { panel.removeChild(frame); frame = null; }
          if (!panel.querySelector(".refused")) refuse();
        });
      }, 1500);
    }
    var was = panel.hidden;
    panel.hidden = false;
    host.setAttribute("data-open", "");
    if (unread) setUnread(0);
    if (was) emit("open");
    if (!teaser.hidden) hideTeaser();
    button.setAttribute("aria-expanded", "true");
    button.setAttribute("aria-label", closeLabel);
    if (frame && focus) frame.focus();
    if (frame && ready && !greeted) greet();
    try { localStorage.setItem(KEY, "1"); } catch (e) {}
  }
  // `wait`: the frame is made in standby, before any open (see the top).
  function openFrame(focus, wait) {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.title = "Chat";
      frame.src = base + "/widget/?site=" + encodeURIComponent(site) + "&lang=" + encodeURIComponent(lang) + (wait ? "&standby=1" : "");
      frame.allow = "clipboard-write";
      standby = wait;
      ready = false;
      greeted = false;
      panel.appendChild(frame);
      if (focus) frame.focus();
    }
  }
  // The frame's start signal: this page's identity, page and language as they are now.
  function greet() {
    greeted = true;
    frame.contentWindow.postMessage({
      type: "switchboard:hello",
      user_id: identity.user_id,
      user_hash: identity.user_hash,
      name: identity.name,
      email: identity.email,
      page_url: location.href,
      page_title: document.title,
      lang: lang
    }, base);
  }
  function preload() {
    var c = navigator.connection;
    if (frame || panel.firstChild || (c && c.saveData)) return;
    openFrame(false, true);
  }
  function close() {
    var was = !panel.hidden;
    panel.hidden = true;
    host.removeAttribute("data-open");
    if (was) emit("close");
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-label", label);
    try { localStorage.removeItem(KEY); } catch (e) {}
    button.focus();
  }
  button.addEventListener("click", function () { panel.hidden ? open(true) : close(); });
  // The page the visitor is on goes to the agent's context panel (single-page apps too).
  var lastPage = location.href;
  function pageChanged() {
    if (location.href === lastPage) return;
    lastPage = location.href;
    if (frame) frame.contentWindow.postMessage({ type: "switchboard:page", url: location.href, title: document.title }, base);
  }
  window.addEventListener("popstate", pageChanged);
  window.addEventListener("hashchange", pageChanged);
  ["pushState", "replaceState"].forEach(function (k) {
    var orig = history[k];
    history[k] = function () { var r = orig.apply(this, arguments); pageChanged(); return r; };
  });
  window.addEventListener("message", function (e) {
    if (e.origin !== base || !frame || e.source !== frame.contentWindow || !e.data) return;
    if (e.data.type === "switchboard:close") close();
    if (e.data.type === "switchboard:ready") {
      ready = true;
      if (typeof e.data.accent === "string") paint(e.data.accent);
      // A standby frame waits for the open; any other starts at once.
      if (!standby || !panel.hidden) greet();
    }
    if (e.data.type === "switchboard:message") {
      emit("message", { from: String(e.data.from || ""), text: String(e.data.text || "") });
      if (panel.hidden) setUnread(unread + 1);
    }
  });
  var api = {
    open: function () { open(true); },
    close: close,
    toggle: function () { panel.hidden ? open(true) : close(); },
    identify: function (o) {
      o = o || {};
      if (o.userId !== undefined) identity.user_id = o.userId ? String(o.userId) : null;
      if (o.userHash !== undefined) identity.user_hash = o.userHash ? String(o.userHash) : null;
      if (o.name !== undefined) identity.name = o.name ? String(o.name) : null;
      if (o.email !== undefined) identity.email = o.email ? String(o.email) : null;
    },
    setLanguage: function (l) { lang = String(l || ""); de = /^de\b/i.test(lang); },
    on: function (ev, fn) { if (listeners[ev] && typeof fn === "function") listeners[ev].push(fn); },
    off: function (ev, fn) { if (listeners[ev]) listeners[ev] = listeners[ev].filter(function (f) { return f !== fn; }); }
  };
  var queued = (window.Switchboard && window.Switchboard.q) || [];
  var Switchboard = function (method) {
    if (api.hasOwnProperty(method)) return api[method].apply(null, [].slice.call(arguments, 1));
  };
  for (var m in api) Switchboard[m] = api[m];
  window.Switchboard = Switchboard;
  function mount() {
    document.body.appendChild(host);
    // Calls made before the loader ran, in order.
    for (var i = 0; i < queued.length; i++) Switchboard.apply(null, queued[i]);
    try { if (localStorage.getItem(KEY) === "1" && panel.hidden) open(false); } catch (e) {}
    // The standby frame, once the page has loaded and the browser is idle.
    var idle = function () {
      if (window.requestIdleCallback) requestIdleCallback(preload, { timeout: 3000 });
      else setTimeout(preload, 1000);
    };
    if (document.readyState === "complete") idle(); else window.addEventListener("load", idle);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
