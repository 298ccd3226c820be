// The merchant web app (/admin/) in headless Debian chromium, driven by playwright-core.
// Run by tests/tests/browser_admin.rs; by hand against any running store:
//
//   node tests/browser/admin.mjs --base http://acme.localhost:8000 \
//     --artifacts tests/artifacts/browser-admin/acme --owner-link '<url from owner-invitation>' \
//     --sku MUG-1 --product "Red Mug" --order <paid order id>
//
// Steps (one screenshot each): the owner accepts their invitation → dashboard → finds the
// product by SKU and changes its price → the shop's product page shows the new price → invites
// a clerk with `orders` only → the clerk (another browser profile) accepts → sees the order,
// with no refund form, and is refused the refund page action → keyboard: the skip link comes
// first → phone width (390 px): no sideways scrolling.
// Fails on any request to another origin, any page script error (there are no scripts), and a
// 5xx page. Exits 0 when every expectation held, else prints "admin journey failed at ...".

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opt } = parseArgs({
  options: {
    base: { type: "string" },
    artifacts: { type: "string" },
    "owner-link": { type: "string" },
    sku: { type: "string" },
    product: { type: "string" },
    order: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM || "/usr/bin/chromium" },
    timeout: { type: "string", default: "20000" },
  },
});
for (const required of ["base", "artifacts", "owner-link", "sku", "product", "order"]) {
  if (!opt[required]) {
    console.error(`admin journey: --${required} is required (see the top of admin.mjs)`);
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
const problems = [];
const log = (...a) => console.log("[admin]", ...a);

async function shot(page, name) {
  const file = join(opt.artifacts, `${String(stepNo).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

async function step(page, name, body) {
  stepNo += 1;
  stepName = name;
  await body();
  expect(problems.length === 0, problems.join("; "));
  const file = await shot(page, name);
  log(`ok ${String(stepNo).padStart(2, "0")} ${name} → ${file}`);
}

async function text(page, selector) {
  const el = page.locator(selector).first();
  return (await el.count()) ? (await el.innerText()).trim() : "";
}

async function expectPath(page, path, what) {
  await page.waitForLoadState("load");
  const url = new URL(page.url());
  expect(url.origin === origin, `${what}: left the store: ${page.url()}`);
  expect(url.pathname === path, `${what}: expected ${path}, on ${url.pathname} (h1 ${JSON.stringify(await text(page, "h1"))}, alert ${JSON.stringify(await text(page, "[role=alert]"))})`);
}

const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--host-resolver-rules=MAP *.localhost 127.0.0.1",
];

/** One browser profile (its own cookies): the owner's or the clerk's. */
async function profile(dirs) {
  const dir = mkdtempSync(join(tmpdir(), "emporium-admin-chromium-"));
  dirs.push(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: opt.chromium, headless: true, args,
    viewport: { width: 1280, height: 800 }, locale: "en-US", timeout: 60000,
  });
  context.setDefaultTimeout(timeout);
  context.setDefaultNavigationTimeout(timeout);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!["data:", "blob:"].includes(u.protocol) && u.origin !== origin) {
      problems.push(`request to another origin: ${r.url()}`);
    }
  });
  page.on("response", (r) => {
    if (r.request().isNavigationRequest() && r.status() >= 500) {
      problems.push(`${r.request().method()} ${r.url()} answered ${r.status()}`);
    }
  });
  return { context, page };
}

const dirs = [];
const contexts = [];
let page;
let exitCode = 0;
try {
  const owner = await profile(dirs);
  contexts.push(owner.context);
  page = owner.page;
  const ownerLink = opt["owner-link"];
  let clerkLink = "";
  let productPath = "";

  await step(page, "owner-accepts", async () => {
    await page.goto(ownerLink);
    await expectPath(page, "/admin/accept", "the owner's invitation link");
    await page.getByLabel("Your name").fill("Olive Owner");
    await page.getByLabel("Password").fill("owner password 1");
    await page.getByRole("button", { name: "Accept the invitation" }).click();
    await expectPath(page, "/admin/", "accepting signs the owner in");
    expect((await text(page, "h1")) === "Dashboard", "no dashboard heading");
    expect((await text(page, "main")).includes("Olive Owner"), "the dashboard does not greet the owner");
  });

  await step(page, "owner-link-used", async () => {
    const res = await page.goto(ownerLink);
    expect(res.status() === 410, `a used invitation link answered ${res.status()}, not 410`);
    await page.goto(`${base}/admin/`);
  });

  await step(page, "edit-price", async () => {
    await page.getByRole("link", { name: "Products" }).click();
    await expectPath(page, "/admin/products", "products");
    await page.getByLabel("Search products").fill(opt.sku);
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: opt.product }).click();
    productPath = new URL(page.url()).pathname;
    expect(productPath.startsWith("/admin/products/"), `not on a product: ${page.url()}`);
    await page.getByLabel(/^Price/).first().fill("31.75");
    await page.getByRole("button", { name: "Save product" }).click();
    await expectPath(page, "/admin/products", "saving goes back to the list");
    expect((await text(page, "[role=status]")).includes("saved"), "no saved notice");
  });

  await step(page, "shop-shows-price", async () => {
    const id = productPath.split("/").pop();
    await page.goto(`${base}/products/${id}`);
    await page.locator("main", { hasText: "31.75" }).first().waitFor({ timeout });
  });

  await step(page, "import-csv", async () => {
    // A Shopify CSV with one good product and one bad row, uploaded through the plain form.
    const csv = [
      "Handle,Title,Vendor,Variant SKU,Variant Price,Variant Currency,Variant Inventory Qty",
      `imported-vase,Imported Vase,Acme,VASE-${Date.now().toString(36)},19.90,EUR,4`,
      "broken-row,Broken,Acme,BROKEN-1,not-a-price,EUR,",
    ].join("\n") + "\n";
    await page.goto(`${base}/admin/`);
    await page.getByRole("link", { name: "Import", exact: true }).click();
    await expectPath(page, "/admin/imports", "the import page");
    await page.getByLabel(/^Product file/).setInputFiles({ name: "products.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
    await page.getByRole("button", { name: "Import", exact: true }).click();
    // The job's page reloads itself (Refresh header) until the import has finished.
    await page.locator("[role=status]", { hasText: "succeeded" }).waitFor({ timeout });
    const main = await text(page, "main");
    expect(main.includes("1 failed") && main.includes("Variant Price"), `no row error shown: ${main}`);
    expect(main.includes("Vendor"), `ignored columns not listed: ${main}`);
    await page.goto(`${base}/admin/products`);
    await page.getByRole("link", { name: "Imported Vase" }).waitFor({ timeout });
  });

  await step(page, "invite-clerk", async () => {
    await page.goto(`${base}/admin/staff`);
    await page.getByLabel("Email").fill(`clerk-${Date.now().toString(36)}@example.com`);
    const invite = page.locator("form[action='/admin/staff']");
    await invite.getByLabel(/^orders/).check();
    await page.getByRole("button", { name: "Create invitation link" }).click();
    clerkLink = await page.getByLabel("Invitation link").inputValue();
    expect(clerkLink.includes("/admin/accept?token="), `no invitation link shown: ${clerkLink}`);
  });

  const clerk = await profile(dirs);
  contexts.push(clerk.context);
  page = clerk.page;
  await step(page, "clerk-accepts", async () => {
    await page.goto(clerkLink);
    await page.getByLabel("Your name").fill("Clem Clerk");
    await page.getByLabel("Password").fill("clerk password 1");
    await page.getByRole("button", { name: "Accept the invitation" }).click();
    await expectPath(page, "/admin/", "the clerk is signed in");
    const nav = await text(page, "nav[aria-label=Admin]");
    expect(nav.includes("Orders") && !nav.includes("Products") && !nav.includes("Staff"), `the clerk's menu: ${nav}`);
  });

  await step(page, "clerk-cannot-refund", async () => {
    await page.goto(`${base}/admin/orders`);
    await page.getByLabel("Status").selectOption("paid");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.locator(`a[href="/admin/orders/${opt.order}"]`).click();
    await expectPath(page, `/admin/orders/${opt.order}`, "order detail");
    expect(await page.getByRole("button", { name: "Refund" }).count() === 0, "the clerk is offered a refund button");
    expect((await text(page, "main")).includes("Refunds need the `refunds` permission"), "no word on why there is no refund");
    const res = await page.goto(`${base}/admin/staff`);
    expect(res.status() === 403, `the clerk's staff page answered ${res.status()}, not 403`);
  });

  await step(page, "keyboard-skip-link", async () => {
    await page.goto(`${base}/admin/`);
    await page.keyboard.press("Tab");
    const first = await page.evaluate(() => document.activeElement?.textContent?.trim());
    expect(first === "Skip to content", `the first Tab lands on ${JSON.stringify(first)}`);
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    expect(ring !== "none", "the focused skip link shows no outline");
  });

  await step(page, "phone-order", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of ["/admin/", "/admin/orders", `/admin/orders/${opt.order}`]) {
      await page.goto(`${base}${path}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow <= 1, `390 px: ${path} scrolls sideways by ${overflow}px`);
    }
  });

  page = owner.page;
  await step(page, "phone-product", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of [productPath, "/admin/staff", "/admin/audit"]) {
      await page.goto(`${base}${path}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow <= 1, `390 px: ${path} scrolls sideways by ${overflow}px`);
    }
    expect((await text(page, "main")).includes("product.update"), "the audit log lacks the price change");
  });

  log(`passed: ${stepNo} steps; screenshots in ${opt.artifacts}`);
} catch (e) {
  exitCode = 1;
  const why = e instanceof Failed ? e.message : e?.stack || String(e);
  console.error(`admin journey failed at ${stepName}: ${why}`);
  if (page) {
    await shot(page, `FAILED-${stepName}`).catch(() => {});
  }
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(exitCode);
