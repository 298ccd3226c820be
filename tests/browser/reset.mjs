// A forgotten password reset in headless Debian chromium, driven by playwright-core, against a
// store whose runtime mails through an SES moto (`--moto`, whose sent-mail API is read here).
// Run by tests/tests/browser.rs:
//
//   node tests/browser/reset.mjs --base http://acme.localhost:8000 --artifacts DIR \
//     --moto http://127.0.0.1:PORT --email ann@example.com --password OLD --new-password NEW
//
// Steps (one screenshot each): sign in → (a new visit, cookies gone) forgot password → the
// link from the mail → new password → the first visit's session is dead → sign in with the
// new password → the used link says it does not work.
// Exits 0 when every expectation held; otherwise prints "reset failed at <step>: <why>" and
// exits 1 (2 for bad arguments).

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opt } = parseArgs({
  options: {
    base: { type: "string" },
    artifacts: { type: "string" },
    moto: { type: "string" },
    email: { type: "string" },
    password: { type: "string" },
    "new-password": { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM || "/usr/bin/chromium" },
    timeout: { type: "string", default: "20000" },
  },
});
for (const required of ["base", "artifacts", "moto", "email", "password", "new-password"]) {
  if (!opt[required]) {
    console.error(`reset: --${required} is required (see the comment at the top of reset.mjs)`);
    process.exit(2);
  }
}
const base = opt.base.replace(/\/$/, "");
const origin = new URL(base).origin;
const timeout = Number(opt.timeout);
mkdirSync(opt.artifacts, { recursive: true });

class Failed extends Error {}
function expect(condition, message) {
  if (!condition) throw new Failed(message);
}

let stepNo = 0;
let stepName = "launch";
const log = (...a) => console.log("[reset]", ...a);

async function step(page, name, body) {
  stepNo += 1;
  stepName = name;
  await body();
  const file = join(opt.artifacts, `${String(stepNo).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`ok ${String(stepNo).padStart(2, "0")} ${name} → ${file}`);
}

async function expectPath(page, path, what) {
  await page.waitForLoadState("load");
  const url = new URL(page.url());
  expect(url.origin === origin && url.pathname === path, `${what}: expected ${path}, on ${page.url()} (h1: ${JSON.stringify(await page.locator("h1").first().innerText().catch(() => ""))})`);
}

/** The reset link of the newest reset mail to `to` in the SES moto, waiting up to `timeout`. */
async function resetLink(to) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const data = await (await fetch(`${opt.moto}/moto-api/data.json`)).json();
    const mails = (data.ses?.Message ?? []).filter((m) => (m.destinations?.ToAddresses ?? []).includes(to));
    for (const m of mails.reverse()) {
      const found = /(http:\/\/[^\s"<>]+\/reset-password\?token=[A-Za-z0-9_-]+)/.exec(m.body ?? "");
      if (found) return found[1];
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Failed(`no reset mail to ${to} in ${opt.moto}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), "emporium-chromium-"));
let context;
let page;
let exitCode = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opt.chromium,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--host-resolver-rules=MAP *.localhost 127.0.0.1",
    ],
    viewport: { width: 1280, height: 800 },
    locale: "en-US",
    timeout: 60000,
  });
  context.setDefaultTimeout(timeout);
  context.setDefaultNavigationTimeout(timeout);
  page = context.pages()[0] ?? (await context.newPage());

  let oldSession;
  await step(page, "sign-in", async () => {
    await page.goto(`${base}/signin`);
    await page.getByLabel("Email").fill(opt.email);
    await page.getByLabel("Password").fill(opt.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expectPath(page, "/account", "after signing in");
    oldSession = (await context.cookies()).find((c) => c.name === "sf_session");
    expect(oldSession, "no session cookie after signing in");
  });

  await step(page, "forgot-password", async () => {
    await context.clearCookies();
    await page.goto(`${base}/signin`);
    await page.getByRole("link", { name: "Forgot your password?" }).click();
    await expectPath(page, "/forgot-password", "the sign-in page's link");
    await page.getByLabel("Email").fill(opt.email);
    await page.getByRole("button", { name: "Mail me a link" }).click();
    await page.getByRole("heading", { name: "Check your mail" }).waitFor();
  });

  await step(page, "new-password", async () => {
    const link = await resetLink(opt.email);
    expect(new URL(link).origin === origin, `the link leaves the store: ${link}`);
    await page.goto(link);
    await expectPath(page, "/reset-password", "the mailed link");
    await page.getByLabel("New password").fill(opt["new-password"]);
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.getByRole("heading", { name: "Your password is changed" }).waitFor();
    opt.usedLink = link;
  });

  await step(page, "old-session-dead", async () => {
    await context.addCookies([oldSession]);
    await page.goto(`${base}/account`);
    await expectPath(page, "/signin", "the session from before the reset");
  });

  await step(page, "sign-in-new-password", async () => {
    await page.getByLabel("Email").fill(opt.email);
    await page.getByLabel("Password").fill(opt["new-password"]);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expectPath(page, "/account", "signing in with the new password");
  });

  await step(page, "used-link", async () => {
    const res = await page.goto(opt.usedLink);
    expect(res.status() === 422, `a used link answered ${res.status()}`);
    await page.getByRole("heading", { name: "This link does not work" }).waitFor();
  });
  log("reset passed");
} catch (e) {
  exitCode = 1;
  console.log(`reset failed at ${stepName}: ${e instanceof Failed ? e.message : e.stack}`);
  if (page) await page.screenshot({ path: join(opt.artifacts, `${String(stepNo + 1).padStart(2, "0")}-FAILED-${stepName}.png`), fullPage: true }).catch(() => {});
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
