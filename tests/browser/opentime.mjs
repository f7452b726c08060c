// Benchmark: click on the launcher → the pre-chat form is interactive, in headless
// Chromium on the demo page. Cold: a fresh browser context each time (empty cache);
// warm: the same context again (the hashed assets come from the cache).
// Usage: node tests/browser/opentime.mjs BASE_URL RUNS
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS } from "./pages.mjs";

const [base, runs = "10"] = process.argv.slice(2);
const n = Math.max(1, Number(runs));
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
async function once(ctx) {
  const page = await ctx.newPage();
  await page.goto(base + "/");
  const launcher = page.locator('[data-testid="launcher"]');
  await launcher.waitFor();
  const t0 = performance.now();
  await launcher.click();
  const start = page.frameLocator("iframe").locator('[data-testid="start"]');
  await start.waitFor({ state: "visible" });
  await page.frameLocator("iframe").locator('[data-testid="name"]').focus();
  const dt = performance.now() - t0;
  // Close again so the next load starts closed.
  await launcher.click();
  await page.close();
  return dt;
}
const cold = [], warm = [];
try {
  for (let i = 0; i < n; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "en-US" });
    ctx.setDefaultTimeout(20000);
    cold.push(await once(ctx));
    warm.push(await once(ctx));
    await ctx.close();
  }
} finally {
  await browser.close();
}
console.log(`| click → pre-chat form interactive | median ms | min | max | runs |`);
console.log(`|---|---:|---:|---:|---:|`);
for (const [what, v] of [["cold (fresh context)", cold], ["warm (cached assets)", warm]]) {
  console.log(`| ${what} | ${median(v).toFixed(0)} | ${Math.min(...v).toFixed(0)} | ${Math.max(...v).toFixed(0)} | ${v.length} |`);
}
