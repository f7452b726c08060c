// Browser test: the chat tag works only on the origins its site allows.
// Usage: node tests/browser/origins.mjs BASE_URL OUT_DIR ALLOWED_SITE UNLISTED_SITE LATE_SITE
// LATE_SITE lists the host page's origin too; its one agent, `late` (password
// `password-123`, tenant = LATE_SITE without "-site"), is signed out at the start.
// The host page is served from http://localhost:PORT (another origin than the
// service at http://127.0.0.1:PORT). ALLOWED_SITE lists that origin; UNLISTED_SITE
// does not. Waits on events with deadlines; never sleeps.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { CHROMIUM_ARGS, Console } from "./pages.mjs";

const [base, out = "tests/out", allowed, unlisted, late] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const host = base.replace("127.0.0.1", "localhost");
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
let failed = false;
async function step(name, fn) {
  try { await fn(); console.log(`ok - ${name}`); }
  catch (e) { failed = true; console.log(`not ok - ${name}\n  ${String(e.stack || e).split("\n").slice(0, 6).join("\n  ")}`); }
}
function embed(site) {
  return `${host}/embed.html?service=${encodeURIComponent(base)}&site=${encodeURIComponent(site)}`;
}
try {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "en-US" });
  ctx.setDefaultTimeout(15000);

  await step("the tag on a listed origin opens a working chat", async () => {
    const page = await ctx.newPage();
    await page.goto(embed(allowed));
    await page.locator('[data-testid="launcher"]').click();
    const w = page.frameLocator("iframe");
    // The site's accent colour: on the chat's buttons and on the launcher.
    const green = "rgb(15, 123, 108)";
    await page.waitForFunction(() => getComputedStyle(document.querySelector("[data-switchboard]").shadowRoot.querySelector("button")).backgroundColor === "rgb(15, 123, 108)");
    assert.equal(await w.locator('[data-testid="start"]').evaluate((b) => getComputedStyle(b).backgroundColor), green);
    await w.locator('[data-testid="name"]').fill("Lena");
    await w.locator('[data-testid="first-message"]').fill("Hello from another origin");
    await w.locator('[data-testid="start"]').click();
    await w.locator('[data-testid="composer"]').waitFor();
    await page.screenshot({ path: join(out, "embed-allowed.png") });
    await page.close();
  });

  await step("JS API: calls queued before the loader ran are played in order", async () => {
    const page = await ctx.newPage();
    await page.addInitScript(() => {
      window.Switchboard = window.Switchboard || function () { (Switchboard.q = Switchboard.q || []).push(arguments); };
      window.__opened = 0;
      Switchboard("on", "open", () => { window.__opened += 1; });
      Switchboard("identify", { name: "Queued Quinn", email: "quinn@example.com" });
      Switchboard("open");
    });
    await page.goto(embed(allowed));
    const w = page.frameLocator("iframe");
    await w.locator('[data-testid="name"]').waitFor();
    assert.equal(await w.locator('[data-testid="name"]').inputValue(), "Queued Quinn");
    assert.equal(await w.locator('[data-testid="email"]').inputValue(), "quinn@example.com");
    assert.equal(await page.evaluate(() => window.__opened), 1);
    assert.equal(await page.evaluate(() => typeof window.Switchboard.toggle), "function");
    // Closed again, so the next page of this browser context starts closed.
    await page.evaluate(() => Switchboard.close());
    await page.close();
  });

  await step("before any open the standby frame loads no wasm; the open starts the app with the page's latest identity and language", async () => {
    const fresh = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "en-US" });
    fresh.setDefaultTimeout(15000);
    const page = await fresh.newPage();
    const wasm = [];
    page.on("request", (r) => { if (r.url().split("?")[0].endsWith(".wasm")) wasm.push(r.url()); });
    await page.goto(embed(allowed));
    // The standby frame said it runs: the launcher took the site's accent from it.
    await page.waitForFunction(() => {
      const root = document.querySelector("[data-switchboard]").shadowRoot;
      const f = root.querySelector("iframe");
      return f && f.src.includes("standby=1") && getComputedStyle(root.querySelector("button")).backgroundColor === "rgb(15, 123, 108)";
    });
    assert.deepEqual(wasm, [], "no wasm before the open");
    const w = page.frameLocator("iframe");
    assert.equal(await w.locator('[data-testid="name"]').count(), 0, "no app before the open");
    // Set after the frame was made: the open still uses them.
    await page.evaluate(() => { Switchboard.setLanguage("de"); Switchboard.identify({ name: "Late Lena" }); });
    await page.locator('[data-testid="launcher"]').click();
    await w.locator('[data-testid="start"]', { hasText: "Chat starten" }).waitFor();
    assert.equal(await w.locator('[data-testid="name"]').inputValue(), "Late Lena");
    const frame = page.frames().find((f) => f.url().includes("/widget/"));
    await frame.waitForFunction(() => document.activeElement && document.activeElement.getAttribute("data-testid") === "name");
    assert.equal(await frame.evaluate(() => document.documentElement.lang), "de");
    assert.equal(wasm.length, 1, `the wasm once, at the open: ${wasm}`);
    await fresh.close();
  });

  await step("a standby frame made while nobody was signed in offers the chat once an agent is available", async () => {
    const fresh = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "en-US" });
    fresh.setDefaultTimeout(15000);
    const page = await fresh.newPage();
    const made = page.waitForEvent("framenavigated", { predicate: (f) => f.url().includes("standby=1") });
    await page.goto(embed(late));
    // The standby frame's script runs; its document says nobody is there.
    const frame = await made;
    // Polled by timer: a hidden frame gets no animation frames, Playwright's default.
    await frame.waitForFunction(() => !!window.__switchboardHello, null, { polling: 50 });
    const carried = await frame.evaluate(() => JSON.parse(document.getElementById("switchboard-site").textContent).availability);
    assert.equal(carried.availability, "no_agents", JSON.stringify(carried));
    const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
    agentCtx.setDefaultTimeout(15000);
    const agent = new Console(await agentCtx.newPage(), base);
    await agent.signIn("late", "password-123", late.replace(/-site$/, ""));
    await agent.setAvailable();
    await agent.page.locator(".state.available").waitFor();
    // Opened now: the form follows what the site says now, not at the page's load.
    await page.locator('[data-testid="launcher"]').click();
    await page.frameLocator("iframe").locator('[data-testid="start"]', { hasText: "Start chat" }).waitFor();
    await agentCtx.close();
    await fresh.close();
  });

  await step("loader options: left corner, a label on the launcher, a greeting teaser that opens the chat", async () => {
    const page = await ctx.newPage();
    await page.goto(embed(allowed) + "&position=left&label=" + encodeURIComponent("Questions?") + "&greeting=" + encodeURIComponent("Hi! Need help with your order?"));
    const launcher = page.locator('[data-testid="launcher"]');
    const teaser = page.locator('[data-testid="teaser"]');
    await teaser.filter({ hasText: "Hi! Need help with your order?" }).waitFor();
    assert.equal((await launcher.textContent()).trim(), "Questions?");
    const box = await launcher.boundingBox();
    assert.ok(box.x < 100, `launcher on the left: ${JSON.stringify(box)}`);
    await page.screenshot({ path: join(out, "embed-options.png") });
    await teaser.click();
    await page.frameLocator("iframe").locator('[data-testid="name"]').waitFor();
    await teaser.waitFor({ state: "hidden" });
    assert.equal(await launcher.getAttribute("aria-label"), "Close chat");
    assert.equal(await launcher.getAttribute("aria-expanded"), "true");
    await launcher.click();
    assert.equal(await launcher.getAttribute("aria-label"), "Open chat");
    // Dismissed for this tab: a reload shows no teaser.
    await page.reload();
    await launcher.waitFor();
    assert.equal(await teaser.isVisible(), false);
    await page.close();
  });

  await step("a hostile host stylesheet cannot move the launcher", async () => {
    const page = await ctx.newPage();
    await page.goto(embed(allowed));
    await page.addStyleTag({ content: "* { all: unset !important; } div { position: static !important; transform: translateX(-500px) !important; }" });
    const l = page.locator('[data-testid="launcher"]');
    await l.waitFor();
    const box = await l.boundingBox();
    const vp = page.viewportSize();
    assert.equal(Math.round(box.x + box.width), vp.width - 20, "20 px from the right edge");
    assert.equal(Math.round(box.y + box.height), vp.height - 20, "20 px from the bottom");
    await l.click();
    await page.frameLocator("iframe").locator('[data-testid="name"]').waitFor();
    await page.close();
  });

  await step("the same tag on an unlisted origin gets no chat", async () => {
    const page = await ctx.newPage();
    await page.goto(embed(unlisted));
    await page.locator('[data-testid="launcher"]').click();
    // The loader asks first and is refused: a plain notice, no frame, no chat.
    await page.locator('[data-testid="chat-unavailable"]').waitFor();
    assert.equal(await page.locator("iframe").count(), 0, "no chat frame");
    await page.screenshot({ path: join(out, "embed-unlisted.png") });
    await page.close();
  });

  await step("even framed by hand on an unlisted origin, the chat document refuses to load", async () => {
    const page = await ctx.newPage();
    await page.goto(embed(unlisted));
    // Named, so it is not taken for the loader's standby frame (refused the same way).
    const blocked = page.waitForEvent("framenavigated", (f) => f.name() === "by-hand" && f.url().startsWith("chrome-error:"));
    await page.evaluate(([b, s]) => {
      const f = document.createElement("iframe");
      f.name = "by-hand";
      f.src = `${b}/widget/?site=${encodeURIComponent(s)}`;
      document.body.appendChild(f);
    }, [base, unlisted]);
    const frame = await blocked;
    assert.equal(await frame.locator('[data-testid="name"]').count(), 0, "no chat form in the frame");
    await page.close();
  });

} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
