// Browser test of the contact centre screens: an admin edits a template in the admin
// console and a signed-in agent uses it at once; the supervisor screen shows a visitor
// queue up, the accept, and reads along; axe on every screen, in English and German.
// Usage: node tests/browser/centre.mjs BASE_URL OUT_DIR TENANT SITE ORIGIN
// Waits on events (selectors, text) with deadlines; never sleeps.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { steps, CHROMIUM_ARGS, Console, Supervisor, Admin, axeCheck } from "./pages.mjs";

const [base, out = "tests/out", tenant, site, origin] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
const { step, failures } = steps();
const PW = "password-123";
try {
  const bossCtx = await browser.newContext({ viewport: { width: 1360, height: 860 }, locale: "en-US" });
  const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  bossCtx.setDefaultTimeout(15000);
  agentCtx.setDefaultTimeout(15000);
  const boss = new Console(await bossCtx.newPage(), base);
  const agent = new Console(await agentCtx.newPage(), base);
  const admin = new Admin(boss.page);
  const sup = new Supervisor(boss.page);

  await step("an admin signs in at /admin/ and gets the configuration as a form", async () => {
    await boss.signIn("boss", PW, tenant, "/admin/");
    await admin.section("templates").locator('[data-testid="template-row"]').first().waitFor();
    assert.equal(await admin.section("queues").locator('[data-testid="queue-row"]').count(), 2);
    assert.equal(await admin.section("agents").locator('[data-testid="agent-row"]').count(), 2);
    // Undelivered updates between the service's parts: none on a healthy tenant.
    await admin.section("parked").locator('.empty', { hasText: "Every update was delivered." }).waitFor();
    await admin.section("parked").screenshot({ path: join(out, "admin-parked.png") });
    await axeCheck(boss.page, "admin console");
    await boss.page.screenshot({ path: join(out, "admin.png"), fullPage: true });
  });

  await step("an agent signs in (before the change)", async () => {
    await agent.signIn("ag", PW, tenant);
  });

  await step("a bad value is named beside its queue and blocks saving", async () => {
    const offer = admin.section("queues").locator('[data-testid="queue-row"]').first().locator('input[type="number"]').first();
    await offer.fill("0");
    const beside = admin.section("queues").locator('[data-testid="queue-row"]').first().locator(".field-error");
    await beside.filter({ hasText: "offer_timeout_secs must be 1 to 600" }).waitFor();
    assert.ok(await boss.page.locator('[data-testid="save"]').isDisabled(), "save is disabled");
    await boss.page.screenshot({ path: join(out, "admin-error.png") });
    await offer.fill("30");
    await beside.waitFor({ state: "detached" });
  });

  await step("the admin edits a template and saves", async () => {
    const text = admin.section("templates").locator('[data-testid="template-text"]').first();
    await text.fill("Hallo <customer_name>, Grüße von <agent_name>!");
    await admin.save();
    await admin.saveState().filter({ hasText: "Saved" }).waitFor();
  });

  await step("a webhook row offers every event, and a removed row leaves nothing to save", async () => {
    const hooks = admin.section("webhooks");
    const before = await hooks.locator('[data-testid="webhook-row"]').count();
    await boss.page.locator('[data-testid="add-webhooks"]').click();
    const row = hooks.locator('[data-testid="webhook-row"]').nth(before);
    for (const ev of ["conversation.closed", "message.left", "delivery.parked"]) {
      const box = row.getByRole("checkbox", { name: ev });
      assert.ok(await box.isChecked(), `${ev} is on for a new webhook (it gets every event)`);
    }
    await row.locator('input[type="url"]').fill("https://ops.example/hooks");
    await row.getByRole("checkbox", { name: "message.left" }).uncheck();
    assert.ok(!(await row.getByRole("checkbox", { name: "message.left" }).isChecked()));
    await row.screenshot({ path: join(out, "admin-webhook.png") });
    await row.getByRole("button", { name: /Remove/ }).click();
    await row.waitFor({ state: "detached" });
  });

  await step("the admin sets business hours and the centre's time zone; a bad value is named beside its field", async () => {
    // The second queue: the site's chats go to the first, which stays always open.
    const row = admin.section("queues").locator('[data-testid="queue-row"]').nth(1);
    await row.locator('[data-testid="hours"] summary').click();
    const monday = row.locator('[data-testid="hours-day"]').first();
    await monday.fill("9-17");
    await row.locator(".field-error", { hasText: "not HH:MM" }).waitFor();
    await monday.fill("09:00-12:00, 13:00-17:00");
    await row.locator(".field-error").waitFor({ state: "detached" });
    const tz = row.locator('[data-testid="hours-tz"]');
    await tz.fill("Mars/Olympus");
    await row.locator(".field-error", { hasText: "Mars/Olympus" }).waitFor();
    await tz.fill("Europe/Berlin");
    await row.locator(".field-error").waitFor({ state: "detached" });
    // The contact centre's own time zone (the supervisors' "today").
    const centreTz = admin.section("centre").locator('[data-testid="centre-tz"]');
    await centreTz.fill("Europe/Berlln");
    await admin.section("centre").locator(".field-error", { hasText: "Europe/Berlln" }).waitFor();
    await centreTz.fill("Europe/Berlin");
    await admin.section("centre").locator(".field-error").waitFor({ state: "detached" });
    await axeCheck(boss.page, "admin console with business hours open");
    await row.screenshot({ path: join(out, "admin-hours.png") });
    await admin.save();
    await admin.saveState().filter({ hasText: "Saved" }).waitFor();
    // Read back from the service.
    await boss.page.reload();
    const again = admin.section("queues").locator('[data-testid="queue-row"]').nth(1);
    await again.locator('[data-testid="hours"] summary').click();
    await again.locator('[data-testid="hours-day"]').first().waitFor();
    assert.equal(await again.locator('[data-testid="hours-day"]').first().inputValue(), "09:00-12:00, 13:00-17:00");
    assert.equal(await again.locator('[data-testid="hours-day"]').nth(1).inputValue(), "");
    assert.equal(await again.locator('[data-testid="hours-tz"]').inputValue(), "Europe/Berlin");
    assert.equal(await admin.section("centre").locator('[data-testid="centre-tz"]').inputValue(), "Europe/Berlin");
  });

  await step("the admin gives an agent a picture; the widget's site info carries it and its header shows it", async () => {
    const row = admin.section("agents").locator('[data-testid="agent-row"]').first();
    const file = row.locator('[data-testid="picture-file"]');
    await file.setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture") });
    await row.locator('[data-testid="picture-error"]', { hasText: "PNG, JPEG, WebP or GIF" }).waitFor();
    // A real 2×2 PNG.
    const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAFElEQVR4nGOQj/v/v8bq7X8GGAMAVgMKO+fyTXoAAAAASUVORK5CYII=", "base64");
    await file.setInputFiles({ name: "face.png", mimeType: "image/png", buffer: png });
    await row.locator('[data-testid="picture-img"]').waitFor();
    assert.equal(await row.locator('[data-testid="picture-error"]').count(), 0);
    // The thumbnail is the served picture (wait for it to load, with a deadline).
    await boss.page.waitForFunction(() => {
      const img = document.querySelector('[data-testid="agent-row"] [data-testid="picture-img"]');
      return img && img.complete && img.naturalWidth > 0;
    });
    assert.ok(await row.locator('[data-testid="picture-img"]').evaluate((img) => img.naturalWidth === 2), "thumbnail is the 2×2 picture");
    await axeCheck(boss.page, "admin console with an agent picture");
    await admin.save();
    await admin.saveState().filter({ hasText: "Saved" }).waitFor();
    const info = await (await fetch(`${base}/api/v1/sites/${site}`, { headers: { Origin: origin } })).json();
    const face = info.team.find((f) => f.picture);
    assert.ok(face, JSON.stringify(info.team));
    const served = await fetch(base + face.picture);
    assert.equal(served.status, 200);
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), png);
    // The widget's header shows it over the agent's initials (the frame's page on its
    // own: its document carries the same site info).
    const visitor = await bossCtx.newPage();
    await visitor.setViewportSize({ width: 380, height: 560 });
    await visitor.goto(`${base}/widget/?site=${site}&lang=en`);
    await visitor.waitForFunction(() => {
      const img = document.querySelector('[data-testid="team"] .avatar img');
      return img && img.complete && img.naturalWidth === 2;
    });
    const faces = visitor.locator('[data-testid="team"] .avatar');
    assert.equal(await faces.count(), info.team.length);
    // The picture fills the face's round inside (so the initials under it do not show).
    const [inner, pic] = await faces.first().evaluate((f) => [[f.clientWidth, f.clientHeight], [f.querySelector("img").offsetWidth, f.querySelector("img").offsetHeight]]);
    assert.deepEqual(pic, inner, "picture fills the face");
    await visitor.screenshot({ path: join(out, "visitor-team-picture.png") });
    await visitor.close();
  });

  await step("the admin lifts an agent's sign-in lockout", async () => {
    const row = admin.section("agents").locator('[data-testid="agent-row"]').first();
    await row.locator('[data-testid="unlock"]').click();
    await row.getByText("Sign-in unlocked").waitFor();
    await row.screenshot({ path: join(out, "admin-agent.png") });
  });

  await step("the supervisor screen shows a visitor queue up", async () => {
    await sup.open();
    await sup.queueCell("q1", "waiting").filter({ hasText: /^0$/ }).waitFor();
    const r = await fetch(base + "/api/v1/conversations", {
      method: "POST",
      headers: { "Content-Type": "application/json", Origin: origin },
      body: JSON.stringify({ site, name: "Vera <VIP> ‮Tester", text: "my parcel never came", client_id: "first" }),
    });
    assert.equal(r.status, 201, await r.text());
    await sup.queueCell("q1", "waiting").filter({ hasText: /^1$/ }).waitFor();
    await sup.liveChats().filter({ hasText: "Queued" }).waitFor();
  });

  await step("the agent accepts; the supervisor sees it at once", async () => {
    await agent.setAvailable();
    await agent.offer().waitFor();
    await agent.accept();
    await sup.queueCell("q1", "waiting").filter({ hasText: /^0$/ }).waitFor();
    await sup.agentCell("ag", "chats").filter({ hasText: "1/3" }).waitFor();
    await sup.liveChats().filter({ hasText: "Active" }).waitFor();
  });

  await step("the agent uses the edited template without signing in again", async () => {
    await agent.page.locator('[data-testid="template"]').selectOption("hi");
    await agent.page.waitForFunction(() => document.querySelector('[data-testid="compose"]').value.includes("Grüße von"));
    const v = await agent.compose().inputValue();
    assert.ok(v.startsWith("Hallo Vera VIP"), v);
    // The name's < and > were removed: the agent is told, not left to guess.
    await agent.page.locator('[data-testid="stripped-note"]', { hasText: "<customer_name>" }).waitFor();
  });

  await step("the supervisor reads along, read-only", async () => {
    await sup.liveChats().first().locator('[data-testid="read-along"]').click();
    await sup.observer().locator('[data-testid="customer-message"]', { hasText: "my parcel never came" }).waitFor();
    assert.equal(await sup.observer().locator("textarea").count(), 0, "no compose box");
    await agent.reply("On its way!");
    await sup.observer().getByText("On its way!").waitFor();
    await axeCheck(boss.page, "supervisor screen with a chat read along");
    await boss.page.screenshot({ path: join(out, "supervisor.png") });
    await boss.page.locator('[data-testid="close-observer"]').click();
  });

  await step("German: the screens follow, with <html lang>", async () => {
    await boss.page.getByRole("button", { name: "Deutsch" }).click();
    await boss.page.locator('html[lang="de"]').waitFor();
    await boss.page.getByRole("columnheader", { name: "Längste Wartezeit" }).waitFor();
    await axeCheck(boss.page, "supervisor screen (German)");
    await boss.page.locator('[data-testid="tab-admin"]').click();
    await admin.section("webhooks").waitFor();
    await axeCheck(boss.page, "admin console (German)");
  });

  await step("the supervisor and admin screens at phone width", async () => {
    await boss.page.setViewportSize({ width: 390, height: 800 });
    await boss.page.locator('[data-testid="tab-supervisor"]').click();
    await sup.queueCell("q1", "waiting").waitFor();
    const wide = await boss.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `no sideways scrolling of the page: ${wide}`);
    await boss.page.screenshot({ path: join(out, "supervisor-phone.png"), fullPage: true });
    await boss.page.locator('[data-testid="tab-admin"]').click();
    await admin.section("sites").waitFor();
    await boss.page.screenshot({ path: join(out, "admin-phone.png") });
    await axeCheck(boss.page, "admin console at phone width");
  });

  await step("a phone-sized console keeps its controls on screen", async () => {
    await agent.page.setViewportSize({ width: 390, height: 800 });
    const box = await agent.page.locator('[data-testid="sign-out"]').boundingBox();
    assert.ok(box && box.x + box.width <= 390, `sign-out at ${JSON.stringify(box)}`);
    await agent.page.screenshot({ path: join(out, "console-phone.png") });
  });
} finally {
  await browser.close();
}
if (failures.length) process.exit(1);
