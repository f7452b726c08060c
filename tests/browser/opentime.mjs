// Benchmark: click on the launcher → the pre-chat form is interactive (shown, its name
// field focused), in headless Chromium on the demo page. Cold: a fresh browser context
// each time (empty cache); warm: the same context again (the hashed assets come from
// the cache). Two kinds of click: once the loader's standby frame is in (a visitor who
// has been on the page for a moment: the frame's document and script came at idle,
// the wasm comes at the click), and at once, as soon as the launcher shows (the frame
// and all it loads come at the click).
//
// Measured in the page: from the click event's time stamp to the first animation frame
// in which the form is shown and its name field has the focus (the demo page and the
// widget's frame share an origin here, so the page can look into the frame). Beside it:
// the same span as Playwright sees it (its click and wait add their own round trips),
// and a floor measured the same way in the same run: a click that opens a frame with a
// static page of the same server (`/embed.html`, one document and one style sheet)
// until its heading shows.
// Usage: node tests/browser/opentime.mjs BASE_URL RUNS
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS } from "./pages.mjs";

const [base, runs = "10"] = process.argv.slice(2);
const n = Math.max(1, Number(runs));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** Records the click's time stamp, then polls each frame until `ready(doc)` holds in
 * the first frame element found by `frame()`; resolves `window.__open` with the span. */
function watch(page, kind) {
  return page.evaluate((kind) => {
    window.__open = null;
    let clicked = null;
    addEventListener("click", (e) => { if (clicked === null) clicked = e.timeStamp; }, true);
    const frame = () => {
      if (kind === "floor") return document.querySelector("iframe[data-floor]");
      for (const el of document.querySelectorAll("*")) {
        const f = el.shadowRoot && el.shadowRoot.querySelector("iframe");
        if (f) return f;
      }
      return null;
    };
    const ready = (d) => {
      if (kind === "floor") { const h = d.querySelector("h1"); return h && h.getBoundingClientRect().height > 0; }
      const start = d.querySelector('[data-testid="start"]');
      const name = d.querySelector('[data-testid="name"]');
      return start && start.getBoundingClientRect().height > 0 && d.activeElement === name;
    };
    const poll = () => {
      const f = frame();
      const d = f && f.contentDocument;
      if (clicked !== null && d && ready(d)) {
        window.__open = performance.now() - clicked;
        // Where the span went, on the page's clock from the click: the frame's
        // document, its script and its wasm (each when its last byte arrived).
        const fp = f.contentWindow.performance;
        const shift = fp.timeOrigin - performance.timeOrigin - clicked;
        const nav = fp.getEntriesByType("navigation")[0];
        const res = (ext) => fp.getEntriesByType("resource").find((r) => r.name.split("?")[0].endsWith(ext));
        const at = (e, k) => (e ? e[k] + shift : null);
        window.__detail = {
          frame: shift,
          document: at(nav, "responseEnd"),
          script: at(res(".js"), "responseEnd"),
          wasm: at(res(".wasm"), "responseEnd"),
          parsed: at(nav, "domInteractive"),
          init: at(fp.getEntriesByName("switchboard-init")[0], "startTime"),
          mounted: at(fp.getEntriesByName("switchboard-mounted")[0], "startTime"),
        };
        return;
      }
      requestAnimationFrame(poll);
    };
    requestAnimationFrame(poll);
  }, kind);
}

/** Waits until the loader's standby frame has run its script (the demo page and the
 * frame share an origin, so the page can look into it). */
function standbyIn(page) {
  return page.waitForFunction(() => {
    const f = document.querySelector("[data-switchboard]").shadowRoot.querySelector("iframe");
    return f && f.contentDocument && f.contentDocument.readyState === "complete" && !!f.contentWindow.__switchboardHello;
  }, null, { polling: 20 });
}

/** The page's browser says Save-Data: the loader makes no standby frame. */
function saveData(page) {
  return page.addInitScript(() => Object.defineProperty(navigator, "connection", { value: { saveData: true } }));
}

async function once(ctx, kind) {
  const page = await ctx.newPage();
  // Clicked at once: as with Save-Data on, so no standby frame can come first.
  if (kind === "at once") await saveData(page);
  await page.goto(base + "/");
  const launcher = page.locator('[data-testid="launcher"]');
  await launcher.waitFor();
  if (kind === "widget") {
    // The standby frame's document has run its script.
    await standbyIn(page);
  }
  let target = launcher;
  if (kind === "floor") {
    await page.evaluate(() => {
      const b = document.createElement("button");
      b.textContent = "floor";
      b.setAttribute("data-testid", "floor");
      b.style.cssText = "position:fixed;left:10px;bottom:10px;z-index:9";
      b.onclick = () => {
        const f = document.createElement("iframe");
        f.setAttribute("data-floor", "");
        f.src = "/embed.html";
        f.style.cssText = "position:fixed;left:10px;bottom:60px;width:380px;height:560px";
        document.body.appendChild(f);
      };
      document.body.appendChild(b);
    });
    target = page.locator('[data-testid="floor"]');
  }
  await watch(page, kind);
  const t0 = performance.now();
  await target.click();
  await page.waitForFunction(() => window.__open !== null, null, { polling: "raf", timeout: 20000 });
  const outside = performance.now() - t0;
  const inside = await page.evaluate(() => window.__open);
  const detail = await page.evaluate(() => window.__detail || null);
  // Close again so the next load starts closed.
  if (kind !== "floor") await launcher.click();
  await page.close();
  return { inside, outside, detail };
}

/** What the demo page's main thread spent (Chromium's TaskDuration and ScriptDuration,
 * ms) and its JS heap, from navigation until the loader is done with it: `bare`, the
 * page with the loader's request refused (the heap after a collection); `saveData`, the loader without a standby
 * frame (done once an idle callback queued after the loader's has run); `standby`, the
 * loader and its standby frame (done once the frame's script has run). The demo page
 * and the frame share an origin, so the frame's work runs on the page's main thread;
 * on another site's page it runs in a process of its own. */
async function hostCost(ctx, kind) {
  const page = await ctx.newPage();
  if (kind === "bare") await page.route("**/widget.js", (r) => r.abort());
  if (kind === "saveData") await saveData(page);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Performance.enable");
  await page.goto(base + "/");
  // The same Playwright helpers in every kind (their scripts take heap of their own).
  await page.locator("body").waitFor();
  await page.waitForFunction(() => true);
  if (kind === "standby") {
    await standbyIn(page);
  } else {
    if (kind === "saveData") await page.locator('[data-testid="launcher"]').waitFor();
    await page.evaluate(() => new Promise((r) => requestIdleCallback(r, { timeout: 3000 })));
  }
  // The heap as it is kept, not with garbage not yet collected.
  await cdp.send("HeapProfiler.collectGarbage");
  const { metrics } = await cdp.send("Performance.getMetrics");
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  await page.close();
  return { task: m.TaskDuration * 1000, script: m.ScriptDuration * 1000, heap: m.JSHeapUsedSize / 1024 };
}

const rows = { "cold": [], "warm": [], "at once cold": [], "at once warm": [], "floor cold": [], "floor warm": [] };
const cost = { bare: [], saveData: [], standby: [] };
try {
  for (let i = 0; i < n; i++) {
    for (const kind of ["widget", "at once", "floor"]) {
      const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "en-US" });
      ctx.setDefaultTimeout(20000);
      const prefix = kind === "widget" ? "" : kind + " ";
      rows[prefix + "cold"].push(await once(ctx, kind));
      rows[prefix + "warm"].push(await once(ctx, kind));
      await ctx.close();
    }
    for (const kind of ["bare", "saveData", "standby"]) {
      const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "en-US" });
      ctx.setDefaultTimeout(20000);
      cost[kind].push(await hostCost(ctx, kind));
      await ctx.close();
    }
  }
} finally {
  await browser.close();
}
const f0 = (x) => x.toFixed(0);
console.log(`| click → pre-chat form interactive | in page, median ms | min | max | as Playwright sees it, median ms | ÷ floor (medians) | runs |`);
console.log(`|---|---:|---:|---:|---:|---:|---:|`);
for (const [what, key, floor] of [
  ["cold (fresh context), standby frame in", "cold", "floor cold"],
  ["warm (cached assets), standby frame in", "warm", "floor warm"],
  ["cold, clicked at once", "at once cold", "floor cold"],
  ["warm, clicked at once", "at once warm", "floor warm"],
  ["floor, cold: a frame with a static page", "floor cold", null],
  ["floor, warm", "floor warm", null],
]) {
  const inside = rows[key].map((r) => r.inside);
  const outside = rows[key].map((r) => r.outside);
  const ratio = floor ? (median(inside) / median(rows[floor].map((r) => r.inside))).toFixed(2) : "";
  console.log(`| ${what} | ${f0(median(inside))} | ${f0(Math.min(...inside))} | ${f0(Math.max(...inside))} | ${f0(median(outside))} | ${ratio} | ${inside.length} |`);
}
// Where the widget's span goes (medians, ms after the click; "—" where the browser
// took the file from its memory cache and kept no timing).
const step = (v) => { const x = v.filter((y) => y !== null && y !== undefined); return x.length ? f0(median(x)) : "—"; };
console.log("");
console.log(`| widget, ms after the click (medians) | frame created | document in | parsed | script in | wasm in | script runs | app drawn | form interactive |`);
console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const [what, key] of [["cold, standby", "cold"], ["warm, standby", "warm"], ["cold, at once", "at once cold"], ["warm, at once", "at once warm"]]) {
  const d = rows[key].map((r) => r.detail).filter(Boolean);
  const col = (k) => step(d.map((x) => x[k]));
  console.log(`| ${what} | ${col("frame")} | ${col("document")} | ${col("parsed")} | ${col("script")} | ${col("wasm")} | ${col("init")} | ${col("mounted")} | ${f0(median(rows[key].map((r) => r.inside)))} |`);
}
// What the host page pays (cold contexts, medians).
console.log("");
console.log(`| demo page until the loader is done (cold, medians) | main thread, ms | of it script, ms | JS heap, KB | runs |`);
console.log(`|---|---:|---:|---:|---:|`);
for (const [what, key] of [["page alone (loader refused)", "bare"], ["with the loader, Save-Data (no standby frame)", "saveData"], ["with the loader and its standby frame", "standby"]]) {
  const c = cost[key];
  console.log(`| ${what} | ${f0(median(c.map((x) => x.task)))} | ${f0(median(c.map((x) => x.script)))} | ${f0(median(c.map((x) => x.heap)))} | ${c.length} |`);
}
