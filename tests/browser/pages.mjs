// Page objects for the browser tests: every selector is a data-testid.
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/** Named test steps that stop at the first failure; `failures` names the failed one. */
export function steps() {
  const failures = [];
  async function step(name, fn) {
    try { await fn(); console.log(`ok - ${name}`); }
    catch (e) { failures.push(name); console.log(`not ok - ${name}\n  ${String(e.stack || e).split("\n").slice(0, 6).join("\n  ")}`); throw e; }
  }
  return { step, failures };
}

export class DemoSite {
  constructor(page, base) { this.page = page; this.base = base; }
  async open() { await this.page.goto(this.base + "/"); }
  launcher() { return this.page.locator('[data-testid="launcher"]'); }
  widget() { return this.page.frameLocator("iframe"); }
  async startChat(name, text) {
    await this.launcher().click();
    const w = this.widget();
    await w.locator('[data-testid="name"]').fill(name);
    await w.locator('[data-testid="first-message"]').fill(text);
    await w.locator('[data-testid="start"]').click();
    await w.locator('[data-testid="composer"]').waitFor();
  }
  async send(text) {
    const c = this.widget().locator('[data-testid="composer"]');
    await c.fill(text);
    await c.press("Enter");
  }
  agentMessages() { return this.widget().locator('[data-testid="agent-message"]'); }
  status() { return this.widget().locator('[data-testid="status-line"]'); }
}

export class Console {
  constructor(page, base) { this.page = page; this.base = base; }
  async signIn(agent, password, tenant = "demo", path = "/agent/") {
    await this.page.goto(this.base + path);
    await this.page.locator('[data-testid="tenant"]').fill(tenant);
    await this.page.locator('[data-testid="agent"]').fill(agent);
    await this.page.locator('[data-testid="password"]').fill(password);
    await this.page.locator('[data-testid="sign-in"]').click();
    await this.page.locator('[data-testid="state"]').waitFor();
    // Signed in once the control socket is open (the "reconnecting" note goes away):
    // what the test does next then reaches a live console.
    await this.page.locator('.topbar .offline').waitFor({ state: "detached" });
  }
  async setAvailable() { await this.page.locator('[data-testid="state"]').selectOption("available"); }
  offer() { return this.page.locator('[data-testid="offer"]'); }
  async accept() { await this.page.locator('[data-testid="accept"]').click(); }
  compose() { return this.page.locator('[data-testid="compose"]'); }
  customerMessages() { return this.page.locator('[data-testid="customer-message"]'); }
  statusLine() { return this.page.locator('[data-testid="status-line"]'); }
  async reply(text) { await this.compose().fill(text); await this.compose().press("Enter"); }
  async end() { await this.page.locator('[data-testid="end"]').click(); }
  async wrapUp(reason) {
    const d = this.page.locator('[data-testid="wrap-up-dialog"]');
    await d.waitFor();
    await d.locator('[data-testid="wrap-up-why"]').waitFor();
    await d.locator(`[data-testid="reason-${reason}"]`).click();
    await d.locator('[data-testid="submit-wrap-up"]').click();
    await d.waitFor({ state: "detached" });
  }
}

export class Supervisor {
  constructor(page) { this.page = page; }
  async open() { await this.page.locator('[data-testid="tab-supervisor"]').click(); await this.page.locator('[data-testid="queue-table"]').waitFor(); }
  queueCell(queue, cell) { return this.page.locator(`[data-testid="queue-${queue}"] [data-testid="${cell}"]`); }
  agentCell(agent, cell) { return this.page.locator(`[data-testid="agent-${agent}"] [data-testid="${cell}"]`); }
  liveChats() { return this.page.locator('[data-testid="live-chat"]'); }
  observer() { return this.page.locator('[data-testid="observer"]'); }
}

export class Admin {
  constructor(page) { this.page = page; }
  section(name) { return this.page.locator(`[data-testid="${name}"]`); }
  problem() { return this.page.locator('[data-testid="problem"]'); }
  async save() { await this.page.locator('[data-testid="save"]').click(); }
  saveState() { return this.page.locator('[data-testid="save-state"]'); }
}

// axe-core, evaluated in a frame over the DevTools protocol (the pages' CSP forbids
// injected scripts, and stays on).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Runs axe in `frame` (a Page or Frame); throws on any serious or critical violation. */
export async function axeCheck(frame, label) {
  await frame.evaluate(axeSource);
  const violations = await frame.evaluate(async () => {
    // Judge the screen as it settles: an entrance animation (e.g. the offer popover
    // fading in) would otherwise be measured half transparent. Finite animations only.
    const running = document.getAnimations().filter((a) => {
      const t = a.effect && a.effect.getComputedTiming();
      return t && Number.isFinite(t.endTime);
    });
    await Promise.all(running.map((a) => a.finished.catch(() => {})));
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  });
  if (violations.length) throw new Error(`axe on ${label}:\n  ${violations.join("\n  ")}`);
}

/** The widget's frame of a page. */
export function widgetFrame(page) {
  return page.frames().find((f) => f.url().includes("/widget/"));
}
