// Browser test: a visitor on the demo page chats with an agent in the console.
// Usage: node tests/browser/chat.mjs BASE_URL OUT_DIR
// Waits on events (selectors, text) with deadlines; never sleeps.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { steps, CHROMIUM_ARGS, DemoSite, Console, axeCheck, widgetFrame } from "./pages.mjs";

const base = process.argv[2];
const out = process.argv[3] || "tests/out";
mkdirSync(out, { recursive: true });
// playwright gives every launch a fresh, empty --user-data-dir of its own.
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
const { step, failures } = steps();
try {
  const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const visitorCtx = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "de-DE" });
  agentCtx.setDefaultTimeout(15000);
  visitorCtx.setDefaultTimeout(15000);
  // A 1 s heartbeat (the widget's test hook; 20 s in production): a dead socket is found in seconds.
  await visitorCtx.addInitScript(() => { window.__switchboardHeartbeatMs = 1000; });
  // A switch the test flips to cut the console's chat socket in the middle of a send:
  // the frame never reaches the service and the socket closes.
  const cut = { next: false, cuts: 0 };
  // A second switch drops one message frame (text `drop.text`) on its way to the
  // console: the next message then skips a number, and the console must catch up.
  const drop = { text: null, dropped: 0 };
  // The same for one frame on its way to the widget (routed from the reload on).
  const vdrop = { text: null, dropped: 0 };
  await agentCtx.routeWebSocket(/\/agent-ws\?/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (cut.next && String(m).includes('"type":"send"')) {
        cut.next = false;
        cut.cuts += 1;
        server.close();
        ws.close({ code: 4000, reason: "test cut" });
        return;
      }
      server.send(m);
    });
    server.onMessage((m) => {
      const text = String(m);
      if (drop.text && text.includes('"type":"message"') && text.includes(drop.text)) {
        drop.text = null;
        drop.dropped += 1;
        return;
      }
      ws.send(m);
    });
  });
  const agent = new Console(await agentCtx.newPage(), base);
  const site = new DemoSite(await visitorCtx.newPage(), base);

  await step("agent signs in and goes Available", async () => {
    await agent.signIn("ben", "ben-demo-pass");
    await agent.setAvailable();
    await agent.page.locator(".state.available").waitFor();
  });

  await step("visitor opens the widget from the script tag and starts a chat (German UI)", async () => {
    await site.open();
    await site.launcher().click();
    await site.widget().locator('[data-testid="start"]', { hasText: "Chat starten" }).waitFor();
    // The site's usual reply time and its team's avatars in the header.
    await site.widget().locator('[data-testid="reply-time"]', { hasText: "Antwortet meist innerhalb von 5 Minuten" }).waitFor();
    assert.ok((await site.widget().locator('[data-testid="team"] .avatar').count()) >= 1, "team avatars");
    await axeCheck(widgetFrame(site.page), "widget: pre-chat form");
    await axeCheck(site.page, "demo page with the launcher");
    await site.launcher().click(); // close again, startChat reopens
    await site.startChat("Eva Muster", "Hallo, wo ist meine Bestellung <b>1234</b>?");
  });

  await step("the offer popover shows customer, queue and thread; the timer counts", async () => {
    await agent.offer().waitFor();
    assert.equal(await agent.page.locator('[data-testid="offer-customer"]').textContent(), "Eva Muster");
    assert.equal(await agent.page.locator('[data-testid="offer-queue"]').textContent(), "Support");
    await agent.page.locator('[data-testid="offer-thread"]', { hasText: "<b>1234</b>" }).waitFor();
    await agent.page.screenshot({ path: join(out, "agent-offer.png") });
    await axeCheck(agent.page, "console: offer popover");
  });

  await step("agent accepts and sees the customer's text as plain text", async () => {
    await agent.accept();
    await agent.customerMessages().first().waitFor();
    assert.equal(await agent.customerMessages().first().textContent(), "Hallo, wo ist meine Bestellung <b>1234</b>?");
    assert.equal(await agent.page.locator(".bubble b").count(), 0, "no HTML was interpreted");
    await agent.statusLine().filter({ hasText: "Active" }).waitFor();
  });

  await step("the compose box explains reserved characters and counts", async () => {
    await agent.compose().fill("a < b");
    await agent.page.locator('[data-testid="reserved-hint"]').waitFor();
    assert.equal(await agent.page.locator('[data-testid="send"]').isDisabled(), true);
    assert.equal(await agent.page.locator('[data-testid="counter"]').textContent(), "5 / 1000");
  });

  await step("agent replies with Enter; the visitor sees the reply and the agent's name", async () => {
    await agent.reply("Guten Tag Eva, ich schaue sofort nach.");
    await site.agentMessages().filter({ hasText: "ich schaue sofort nach" }).waitFor();
    await site.status().filter({ hasText: "Ben Weber" }).waitFor();
    await site.page.screenshot({ path: join(out, "visitor-chat.png") });
    await axeCheck(widgetFrame(site.page), "widget: chat");
    await axeCheck(agent.page, "console: chat");
  });

  await step("visitor writes back; agent receives it", async () => {
    await site.send("Danke!");
    await agent.customerMessages().filter({ hasText: "Danke!" }).waitFor();
  });

  await step("attachments: the visitor sends an image, the agent a PDF; thumbnails and files on both sides", async () => {
    const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");
    await site.widget().locator('[data-testid="attach"]').setInputFiles({ name: "foto.png", mimeType: "image/png", buffer: png });
    const thumb = agent.page.locator('[data-testid="thread"] [data-testid="thumb"]');
    await thumb.waitFor();
    await agent.page.waitForFunction(() => document.querySelector('[data-testid="thread"] [data-testid="thumb"]').naturalWidth === 1);
    await site.widget().locator('[data-testid="thumb"]').waitFor();
    await agent.page.locator('[data-testid="attach"]').setInputFiles({ name: "Rechnung.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.7\n%test\n") });
    await site.widget().locator('[data-testid="file"]', { hasText: "Rechnung.pdf" }).waitFor();
    // A type the service refuses is named in the widget.
    await site.widget().locator('[data-testid="attach"]').setInputFiles({ name: "x.png", mimeType: "image/png", buffer: Buffer.from("<svg/>") });
    await site.widget().getByText("only PNG, JPEG, GIF, WebP").waitFor();
    // Too large for the 10 MB limit: refused in the widget, before any upload.
    const uploads = [];
    const count = (r) => { if (r.method() === "POST" && r.url().includes("/attachments")) uploads.push(r.url()); };
    site.page.on("request", count);
    await site.widget().locator('[data-testid="attach"]').setInputFiles({ name: "gross.png", mimeType: "image/png", buffer: Buffer.concat([png, Buffer.alloc(10 * 1024 * 1024)]) });
    await site.widget().getByText("Diese Datei ist größer als 10 MB.").waitFor();
    site.page.off("request", count);
    assert.deepEqual(uploads, [], "no upload of a file over the limit");
    await agent.page.screenshot({ path: join(out, "agent-attachments.png") });
  });

  await step("the context panel shows the visitor's page, browser and local time; a page change follows", async () => {
    const ctx = agent.page.locator('[data-testid="context"]');
    await ctx.locator('[data-testid="ctx-page"]', { hasText: "Hand-made coffee gear" }).waitFor();
    await ctx.locator('[data-testid="ctx-browser"]', { hasText: "Chrome" }).waitFor();
    assert.notEqual(await ctx.locator('[data-testid="ctx-time"]').textContent(), "–");
    await site.page.evaluate(() => history.pushState({}, "", "/#grinders"));
    await ctx.locator('[data-testid="ctx-page"] a', { hasText: "/#grinders" }).waitFor();
    assert.equal(await ctx.locator('[data-testid="ctx-pages"] li').count(), 2);
    await ctx.locator('[data-testid="ctx-history"]', { hasText: "None" }).waitFor();
    await agent.page.screenshot({ path: join(out, "agent-context.png") });
    await axeCheck(agent.page, "console: chat with the customer context");
  });

  await step("the typing indicator shows while the agent types and clears when the box is emptied", async () => {
    await agent.compose().fill("Moment");
    await site.widget().locator('[data-testid="typing"]').waitFor();
    await agent.compose().fill("");
    await site.widget().locator('[data-testid="typing"]').waitFor({ state: "detached" });
  });

  await step("offline: the header says the connection is lost; a message written offline arrives once when back", async () => {
    await visitorCtx.setOffline(true);
    await site.status().filter({ hasText: "Verbindung unterbrochen" }).waitFor({ timeout: 20000 });
    await site.send("offline geschrieben");
    await site.widget().locator('[data-testid="pending"]', { hasText: "offline geschrieben" }).waitFor();
    await visitorCtx.setOffline(false);
    await agent.customerMessages().filter({ hasText: "offline geschrieben" }).waitFor({ timeout: 30000 });
    await site.status().filter({ hasText: "Ben Weber" }).waitFor({ timeout: 30000 });
    assert.equal(await agent.customerMessages().filter({ hasText: "offline geschrieben" }).count(), 1, "once");
  });

  await step("the widget is German in <html lang>, and user text is bidi-isolated", async () => {
    const frame = site.page.frames().find((f) => f.url().includes("/widget/"));
    assert.equal(await frame.evaluate(() => document.documentElement.lang), "de");
    await site.send("Rechnung \u202Efdp.exe");
    const bubble = site.widget().locator(".me .bubble bdi", { hasText: "fdp.exe" });
    await bubble.waitFor();
    assert.equal(await bubble.evaluate((b) => getComputedStyle(b).unicodeBidi), "isolate");
    await agent.customerMessages().filter({ hasText: "fdp.exe" }).waitFor();
  });

  await step("Escape closes the chat and gives focus back to the launcher; Enter opens it with focus inside", async () => {
    await site.widget().locator('[data-testid="composer"]').focus();
    await site.page.keyboard.press("Escape");
    await site.page.locator("iframe").waitFor({ state: "hidden" });
    await site.page.waitForFunction(() => {
      const host = document.querySelector("[data-switchboard]");
      return host && host.shadowRoot.activeElement && host.shadowRoot.activeElement.dataset.testid === "launcher";
    });
    await site.page.keyboard.press("Enter");
    const frame = site.page.frames().find((f) => f.url().includes("/widget/"));
    await frame.waitForFunction(() => document.activeElement && document.activeElement.dataset.testid === "composer");
  });

  await step("JS API: open/close events; while closed an agent message counts as unread and fires `message`", async () => {
    await site.page.evaluate(() => {
      window.__events = [];
      Switchboard.on("close", () => __events.push("close"));
      Switchboard.on("open", () => __events.push("open"));
      Switchboard.on("unread", (n) => __events.push("unread " + n));
      Switchboard.on("message", (m) => __events.push("message " + m.from + ": " + m.text));
    });
    await site.page.evaluate(() => Switchboard.close());
    await site.page.locator("iframe").waitFor({ state: "hidden" });
    await agent.reply("Sind Sie noch da?");
    await site.page.locator('[data-testid="unread"]', { hasText: "1" }).waitFor();
    await site.page.screenshot({ path: join(out, "visitor-unread.png") });
    await site.page.evaluate(() => Switchboard("toggle"));
    await site.page.locator('[data-testid="unread"]').waitFor({ state: "hidden" });
    const ev = await site.page.evaluate(() => window.__events);
    assert.deepEqual(ev, ["close", "message Ben Weber: Sind Sie noch da?", "unread 1", "unread 0", "open"]);
  });

  await step("a reply whose chat socket dies mid-send is kept, resent, and arrives once", async () => {
    cut.next = true;
    await agent.reply("Einen Moment bitte.");
    // Not acknowledged yet (reconnecting takes at least half a second): the draft stays.
    assert.equal(await agent.compose().inputValue(), "Einen Moment bitte.");
    await site.agentMessages().filter({ hasText: "Einen Moment bitte." }).waitFor();
    assert.equal(cut.cuts, 1, "the socket was cut during the send");
    // The draft stayed until the resend was acknowledged, then cleared.
    await agent.page.waitForFunction(() => document.querySelector('[data-testid="compose"]').value === "");
    assert.equal(await site.agentMessages().filter({ hasText: "Einen Moment bitte." }).count(), 1);
    assert.equal(await agent.page.locator('li.me', { hasText: "Einen Moment bitte." }).count(), 1);
  });

  await step("a message lost on the way to the console is caught up: both shown, in order, once", async () => {
    drop.text = "Lücke eins";
    await site.send("Lücke eins");
    await site.send("Lücke zwei");
    await agent.customerMessages().filter({ hasText: "Lücke zwei" }).waitFor();
    await agent.customerMessages().filter({ hasText: "Lücke eins" }).waitFor();
    assert.equal(drop.dropped, 1, "the first frame was dropped");
    const texts = await agent.customerMessages().allInnerTexts();
    const one = texts.filter((t) => t.includes("Lücke eins")).length;
    const two = texts.filter((t) => t.includes("Lücke zwei")).length;
    assert.deepEqual([one, two], [1, 1], texts.join(" | "));
    assert.ok(texts.findIndex((t) => t.includes("Lücke eins")) < texts.findIndex((t) => t.includes("Lücke zwei")), "in order");
  });

  await step("transfer dialog: focus in the filter, typing filters, Escape closes", async () => {
    await agent.page.locator('[data-testid="transfer"]').click();
    const d = agent.page.locator('[data-testid="transfer-dialog"]');
    await d.locator('[data-testid="target-queue"]', { hasText: "Sales" }).waitFor();
    await axeCheck(agent.page, "console: transfer dialog");
    await agent.page.keyboard.type("sal");
    await d.locator('[data-testid="target-queue"]', { hasText: "Support" }).waitFor({ state: "detached" });
    assert.equal(await d.locator('[data-testid="target-queue"]').count(), 1);
    await agent.page.keyboard.press("Escape");
    await d.waitFor({ state: "detached" });
  });

  await step("a reload resumes the same chat with no lost and no duplicated messages", async () => {
    // From here on the widget's socket passes a switch that can drop one message frame
    // (text `vdrop.text`) on its way to the visitor (set up now, after the offline
    // step, so that step's socket is the browser's own).
    await visitorCtx.routeWebSocket(/\/ws\?/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => {
        const text = String(m);
        if (vdrop.text && text.includes('"type":"message"') && text.includes(vdrop.text)) {
          vdrop.text = null;
          vdrop.dropped += 1;
          return;
        }
        ws.send(m);
      });
    });
    await site.page.reload();
    await site.agentMessages().filter({ hasText: "ich schaue sofort nach" }).waitFor();
    await site.widget().locator('[data-testid="message"]', { hasText: "Danke!" }).waitFor();
    assert.equal(await site.agentMessages().filter({ hasText: "ich schaue sofort nach" }).count(), 1);
    assert.equal(await site.widget().locator('[data-testid="message"]', { hasText: "Danke!" }).count(), 1);
  });

  await step("a message lost on the way to the widget is caught up: both shown, in order, once", async () => {
    vdrop.text = "Gap one";
    await agent.reply("Gap one");
    // The console keeps a draft until its message is acknowledged: wait for that.
    await agent.page.waitForFunction(() => document.querySelector('[data-testid="compose"]').value === "");
    await agent.reply("Gap two");
    await site.agentMessages().filter({ hasText: "Gap two" }).waitFor();
    await site.agentMessages().filter({ hasText: "Gap one" }).waitFor();
    assert.equal(vdrop.dropped, 1, "the first frame was dropped");
    const texts = await site.agentMessages().allInnerTexts();
    const one = texts.filter((t) => t.includes("Gap one")).length;
    const two = texts.filter((t) => t.includes("Gap two")).length;
    assert.deepEqual([one, two], [1, 1], texts.join(" | "));
    assert.ok(texts.findIndex((t) => t.includes("Gap one")) < texts.findIndex((t) => t.includes("Gap two")), "in order");
  });

  await step("agent ends; wrap-up dialog; visitor sees the end and can download the transcript", async () => {
    await agent.end();
    await agent.page.locator('[data-testid="wrap-up-dialog"]').waitFor();
    await agent.page.screenshot({ path: join(out, "agent-wrap-up.png") });
    await axeCheck(agent.page, "console: wrap-up dialog");
    await agent.wrapUp("solved");
    await site.widget().locator('[data-testid="ended"]').waitFor();
    const [download] = await Promise.all([
      site.page.waitForEvent("download"),
      site.widget().locator('[data-testid="download"]').click(),
    ]);
    assert.equal(download.suggestedFilename(), "chat-transcript.txt");
    await axeCheck(widgetFrame(site.page), "widget: ended");
    await site.widget().locator('[data-testid="star-5"]').click();
    await site.widget().locator('[data-testid="rating-comment"]').fill("Sehr hilfreich");
    await site.page.screenshot({ path: join(out, "visitor-ended.png") });
    await site.widget().locator('[data-testid="send-rating"]').click();
    await site.widget().locator('[data-testid="rated"]').waitFor();
  });
  await step("a new chat after a rated one asks for its own rating; the visitor ends it", async () => {
    const w = site.widget();
    await w.locator('[data-testid="new-chat"]').click();
    await w.locator('[data-testid="name"]').fill("Eva");
    await w.locator('[data-testid="first-message"]').fill("Noch eine Frage");
    await w.locator('[data-testid="start"]').click();
    await agent.offer().waitFor();
    await agent.accept();
    await w.locator('[data-testid="end"]').click();
    await w.locator('[data-testid="end-confirm"]').click();
    await w.locator('[data-testid="rating"]').waitFor();
    assert.equal(await w.locator('[data-testid="rated"]').count(), 0);
    await agent.wrapUp("solved");
  });
  await step("identity verification: a signed-in shop customer arrives verified", async () => {
    const vctx = await browser.newContext({ locale: "en-US" });
    vctx.setDefaultTimeout(15000);
    const shop = new DemoSite(await vctx.newPage(), base);
    await shop.page.goto(base + "/account.html");
    await shop.startChat("Erika", "Question about my last order");
    await agent.offer().waitFor();
    await agent.accept();
    await agent.page.locator('[data-testid="verified"]', { hasText: "customer-4711" }).waitFor();
    await vctx.close();
  });

  await step("phone: the open chat fills the screen and the launcher steps aside", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US", isMobile: true, hasTouch: true });
    phone.setDefaultTimeout(15000);
    const p = await phone.newPage();
    await p.goto(base + "/");
    await p.locator('[data-testid="launcher"]').click();
    await p.frameLocator("iframe").locator('[data-testid="name"]').waitFor();
    const box = await p.locator("iframe").boundingBox();
    assert.deepEqual([box.x, box.y, box.width, box.height].map(Math.round), [0, 0, 390, 844]);
    assert.equal(await p.locator('[data-testid="launcher"]').isVisible(), false);
    await p.screenshot({ path: join(out, "visitor-phone.png") });
    await p.frameLocator("iframe").locator("button.close").click();
    await p.locator('[data-testid="launcher"]').waitFor();
    await phone.close();
  });

  await step("left messages open in a dialog and close with Escape", async () => {
    await agent.page.locator('[data-testid="left-messages"]').click();
    const d = agent.page.locator('[data-testid="left-messages-dialog"]');
    await d.waitFor();
    await agent.page.keyboard.press("Escape");
    await d.waitFor({ state: "detached" });
  });

  await step("sign-out is refused with open chats, then works and shows the sign-in form", async () => {
    await agent.page.locator('[data-testid="sign-out"]').click();
    await agent.page.locator('[data-testid="error"]', { hasText: "still has chats" }).waitFor();
    await agent.end();
    await agent.wrapUp("solved");
    await agent.page.locator('[data-testid="sign-out"]').click();
    await agent.page.locator('[data-testid="signin"]').waitFor();
  });

  await step("an admin signs the agent out: the console says why, in the sign-in form", async () => {
    await agent.signIn("ben", "ben-demo-pass");
    const r = await fetch(`${base}/api/v1/admin/tenants/demo/agents/ben/sign-out`, {
      method: "POST",
      headers: { Authorization: "Bearer dev-admin-token" },
    });
    assert.equal(r.status, 200);
    await agent.page.locator('[data-testid="signin"]').waitFor();
    await agent.page.locator('[data-testid="error"]', { hasText: "administrator signed you out" }).waitFor();
    await agent.page.screenshot({ path: join(out, "console-signed-out-by-admin.png") });
    await axeCheck(agent.page, "console: sign-in form with a notice");
  });

  console.log(`# ${failures.length === 0 ? "all browser steps passed" : failures.length + " failed"}`);
} catch (e) {
  process.exitCode = 1;
} finally {
  await browser.close();
}
