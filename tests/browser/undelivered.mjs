// Browser test of the supervisor screen while an update is parked: the banner names
// the count, leads an admin to the list of undelivered updates, and passes axe in
// English and German, at desktop and phone width.
// Usage: node tests/browser/undelivered.mjs BASE_URL OUT_DIR TENANT AGENT PASSWORD
// (the agent is a supervisor who administers; one update of TENANT is parked).
// Waits on events (selectors, text) with deadlines; never sleeps.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { steps, CHROMIUM_ARGS, Console, Supervisor, Admin, axeCheck } from "./pages.mjs";

const [base, out = "tests/out", tenant, agent, password] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
const { step, failures } = steps();
try {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: "en-US" });
  ctx.setDefaultTimeout(15000);
  const boss = new Console(await ctx.newPage(), base);
  const banner = boss.page.locator('[data-testid="undelivered"]');

  await step("the supervisor screen names the parked updates", async () => {
    await boss.signIn(agent, password, tenant);
    await new Supervisor(boss.page).open();
    await banner.waitFor();
    const text = await banner.innerText();
    assert.match(text, /Undelivered updates: [1-9]/, text);
    await axeCheck(boss.page, "supervisor screen with parked updates");
    await boss.page.screenshot({ path: join(out, "supervisor-undelivered.png") });
  });

  await step("its button leads an admin to the list", async () => {
    await banner.getByRole("button", { name: "Open the list" }).click();
    const parked = new Admin(boss.page).section("parked");
    await parked.locator('[data-testid="parked-row"]').first().waitFor();
    // Scrolled there, its heading focused (keyboard users land in the section).
    await boss.page.waitForFunction(() => document.activeElement && document.activeElement.id === "h-parked");
    assert.ok(await parked.locator("h2").isVisible());
    const box = await parked.boundingBox();
    const view = boss.page.viewportSize();
    assert.ok(box && box.y < view.height && box.y + 40 > 0, `the section is on screen: ${JSON.stringify(box)}`);
    // Sending them all again says how many went (the receiver still refuses here, so
    // they are parked again and stay listed).
    const rows = await parked.locator('[data-testid="parked-row"]').count();
    await parked.getByRole("button", { name: "Send all again" }).click();
    await parked.locator('[data-testid="sent-again"]', { hasText: `Sent again: ${rows}` }).waitFor();
    await parked.locator('[data-testid="parked-row"]').first().waitFor();
    await parked.screenshot({ path: join(out, "admin-undelivered.png") });
  });

  await step("German and phone width", async () => {
    await boss.page.locator('[data-testid="tab-supervisor"]').click();
    await boss.page.getByRole("button", { name: "Deutsch" }).click();
    await boss.page.locator('html[lang="de"]').waitFor();
    await banner.filter({ hasText: "Nicht zugestellte Aktualisierungen" }).waitFor();
    await boss.page.setViewportSize({ width: 390, height: 800 });
    await axeCheck(boss.page, "supervisor screen with parked updates (German, phone)");
    await boss.page.screenshot({ path: join(out, "supervisor-undelivered-phone.png") });
  });
} finally {
  await browser.close();
}
if (failures.length) process.exit(1);
