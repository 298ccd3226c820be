// A shopper journey on one store in headless Debian chromium, driven by playwright-core.
// Run by tests/tests/browser.rs; can be run by hand against any running store:
//
//   node tests/browser/journey.mjs --base http://acme.localhost:8000 \
//     --artifacts tests/artifacts/browser/acme --search mugg --product "Red Mug" \
//     --sku MUG-1 [--store "Acme Outfitters"] [--admin-key KEY]
//
// Steps (one screenshot each, NN-step.png in --artifacts):
//   home → search with a typo → product page (stock figure; live update over SSE when
//   --admin-key is given) → add to cart → register → cart → checkout (address, shipping method,
//   discount code; manual payment; shipping, discount and VAT shown) → the
//   order in the account → stock dropped → keyboard-only sign-in → narrow (phone) viewport.
// Also fails on any request to another origin (the pages must work offline), on a page script
// error, and on a 4xx/5xx answer to a page navigation.
//
// Exits 0 when every expectation held; otherwise prints "journey failed at <step>: <why>",
// leaves NN-FAILED-<step>.png, and exits 1 (2 for bad arguments).

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opt } = parseArgs({
  options: {
    base: { type: "string" },
    artifacts: { type: "string" },
    search: { type: "string" },
    product: { type: "string" },
    sku: { type: "string" },
    store: { type: "string" },
    "admin-key": { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM || "/usr/bin/chromium" },
    timeout: { type: "string", default: "20000" },
  },
});
for (const required of ["base", "artifacts", "search", "product", "sku"]) {
  if (!opt[required]) {
    console.error(`journey: --${required} is required (see the comment at the top of journey.mjs)`);
    process.exit(2);
  }
}
const base = opt.base.replace(/\/$/, "");
const origin = new URL(base).origin;
const timeout = Number(opt.timeout);
mkdirSync(opt.artifacts, { recursive: true });

class Failed extends Error {}
/** Fails the journey with `message` unless `condition` holds. */
function expect(condition, message) {
  if (!condition) throw new Failed(message);
}

let stepNo = 0;
let stepName = "launch";
const problems = []; // collected by listeners, checked after every step
const log = (...a) => console.log("[journey]", ...a);

async function shot(page, name) {
  const file = join(opt.artifacts, `${String(stepNo).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Runs one numbered step and screenshots the page after it. */
async function step(page, name, body) {
  stepNo += 1;
  stepName = name;
  await body();
  expect(problems.length === 0, problems.join("; "));
  const file = await shot(page, name);
  log(`ok ${String(stepNo).padStart(2, "0")} ${name} → ${file}`);
}

/** Text of the first element matching `selector`, or "" when there is none. */
async function text(page, selector) {
  const el = page.locator(selector).first();
  return (await el.count()) ? (await el.innerText()).trim() : "";
}

/** Waits for `selector`'s text to contain `wanted`; fails with what it saw instead. */
async function waitForText(page, selector, wanted, what) {
  try {
    await page.locator(selector).filter({ hasText: wanted }).first().waitFor({ timeout });
  } catch {
    throw new Failed(`${what}: expected ${JSON.stringify(wanted)} in ${selector}, saw ${JSON.stringify(await text(page, selector))} on ${page.url()}`);
  }
}

async function expectPath(page, path, what) {
  await page.waitForLoadState("load");
  const url = new URL(page.url());
  expect(url.origin === origin, `${what}: left the store: ${page.url()}`);
  expect(url.pathname === path, `${what}: expected to be on ${path}, on ${url.pathname}${url.search} (h1: ${JSON.stringify(await text(page, "h1"))}, alert: ${JSON.stringify(await text(page, "[role=alert]"))})`);
}

const userDataDir = mkdtempSync(join(tmpdir(), "emporium-chromium-"));
let context;
let page;
let exitCode = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opt.chromium,
    headless: true,
    // The network is closed here: no background fetches, no QUIC, no component updates.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // *.localhost is loopback in Chromium already; this keeps it so whatever the resolver.
      "--host-resolver-rules=MAP *.localhost 127.0.0.1",
    ],
    viewport: { width: 1280, height: 800 },
    locale: "en-US",
    timeout: 60000,
  });
  context.setDefaultTimeout(timeout);
  context.setDefaultNavigationTimeout(timeout);
  page = context.pages()[0] ?? (await context.newPage());

  page.on("pageerror", (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!["data:", "blob:"].includes(u.protocol) && u.origin !== origin) {
      problems.push(`request to another origin (pages must work offline): ${r.url()}`);
    }
  });
  page.on("response", (r) => {
    if (r.request().isNavigationRequest() && r.status() >= 400) {
      problems.push(`${r.request().method()} ${r.url()} answered ${r.status()}`);
    }
  });
  page.on("requestfailed", (r) => {
    // The live stock stream is cut when the page is left; that is not a failure.
    if (!r.url().includes("/api/v1/inventory/events")) {
      problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
    }
  });

  const email = `shopper-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}@example.com`;
  const password = "correct horse battery staple";
  let stockBefore = 0;
  let quantity = 2;
  let orderId = "";

  await step(page, "home", async () => {
    await page.goto(`${base}/`);
    await expectPath(page, "/", "home");
    if (opt.store) {
      await waitForText(page, "header.site .brand", opt.store, "home names the store");
      expect((await page.title()).includes(opt.store), `home: title ${JSON.stringify(await page.title())} lacks the store name`);
    }
    await waitForText(page, "#catalog-heading", "All products", "home heading");
    await waitForText(page, "ul.grid", opt.product, "home lists the product");
  });

  await step(page, "search-typo", async () => {
    // The header's search box, as a shopper would use it.
    await page.getByRole("searchbox", { name: "Search products" }).fill(opt.search);
    await page.getByRole("searchbox", { name: "Search products" }).press("Enter");
    await expectPath(page, "/search", "search");
    await waitForText(page, "main", `for “${opt.search}”`, "search echoes the query");
    await waitForText(page, "ul.grid", opt.product, `search for the typo ${JSON.stringify(opt.search)} finds the product`);
    const facets = await text(page, "aside.facets");
    expect(/\(\d+\)/.test(facets), `search: no facet counts in ${JSON.stringify(facets)}`);
  });

  let streamOpen; // the product page's live stock stream answered (headers received)
  await step(page, "product", async () => {
    streamOpen = page.waitForResponse((r) => r.url().endsWith("/api/v1/inventory/events"), { timeout });
    streamOpen.catch(() => {}); // awaited (and reported) by the live stock step only
    await page.locator("ul.grid a", { hasText: opt.product }).first().click();
    await page.waitForLoadState("load");
    expect(new URL(page.url()).pathname.startsWith("/products/"), `product: on ${page.url()}`);
    await waitForText(page, "h1", opt.product, "product page heading");
    const stock = page.locator(`[data-stock-sku="${opt.sku}"]`);
    expect(await stock.isVisible(), `product: no visible stock figure for ${opt.sku}`);
    const figure = (await stock.innerText()).trim();
    const m = /^(\d+) in stock$/.exec(figure);
    expect(m, `product: stock figure ${JSON.stringify(figure)} is not "N in stock"`);
    stockBefore = Number(m[1]);
    expect(await page.getByRole("button", { name: "Add to cart" }).first().isEnabled(), "product: Add to cart is disabled");
  });

  if (opt["admin-key"]) {
    await step(page, "product-live-stock", async () => {
      // The merchant restocks; the open page's figure follows over the live stream (SSE),
      // without a reload.
      const restocked = stockBefore + 3;
      const stream = await streamOpen.catch(() => null);
      expect(stream && stream.status() === 200, `the product page opened no live stock stream (/api/v1/inventory/events answered ${stream?.status()})`);
      await page.waitForTimeout(300); // the stream's headers are out; let it settle
      const status = await page.evaluate(
        async ({ sku, key, n }) =>
          (await fetch(`/api/v1/admin/inventory/${encodeURIComponent(sku)}`, {
            method: "PUT",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({ available: n }),
          })).status,
        { sku: opt.sku, key: opt["admin-key"], n: restocked },
      );
      expect(status === 200 || status === 204, `restock through the admin API answered ${status}`);
      await waitForText(page, `[data-stock-sku="${opt.sku}"]`, `${restocked} in stock`, "live stock figure after a restock");
      stockBefore = restocked;
    });
  }

  await step(page, "added-to-cart", async () => {
    await page.getByLabel("Quantity").first().fill(String(quantity));
    await page.getByRole("button", { name: "Add to cart" }).first().click();
    await expectPath(page, "/cart", "add to cart");
    await waitForText(page, "main table", opt.product, "the cart lists the product");
    const qty = await page.locator("main table input[name=quantity]").first().inputValue();
    expect(qty === String(quantity), `cart: quantity ${qty}, expected ${quantity}`);
  });

  await step(page, "register", async () => {
    await page.getByRole("navigation", { name: "Account" }).getByRole("link", { name: "Register" }).click();
    await expectPath(page, "/register", "register page");
    await page.getByLabel("Name").fill("Ada Shopper");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await shot(page, "register-form");
    await page.getByRole("button", { name: "Create account" }).click();
    await expectPath(page, "/account", "after registering");
    await waitForText(page, "main", email, "the account shows the email");
    await waitForText(page, "main", "no orders yet", "a new account has no orders");
  });

  await step(page, "cart", async () => {
    await page.getByRole("navigation", { name: "Account" }).getByRole("link", { name: "Cart" }).click();
    await expectPath(page, "/cart", "cart");
    await waitForText(page, "main table", opt.product, "the guest cart came along on registering");
    await waitForText(page, "main .price", "Total", "the cart shows a total");
  });

  await step(page, "checkout", async () => {
    await page.getByRole("link", { name: "Go to checkout" }).click();
    await expectPath(page, "/checkout", "checkout");
    await waitForText(page, "main", opt.product, "checkout summarises the cart");
    await waitForText(page, "main fieldset", "Payment", "checkout shows the payment method");
    await waitForText(page, "main fieldset", "Shipping address", "checkout asks where to ship");
    await page.getByLabel("Full name").fill("Ann Example");
    await page.getByLabel("Street and number").fill("Hauptstraße 1");
    await page.getByLabel("Postal code").fill("10115");
    await page.getByLabel("City").fill("Berlin");
    await page.getByLabel("Country code (e.g. DE)").fill("DE");
    await page.getByLabel("Shipping method").selectOption("standard");
    await page.getByLabel("Discount code (optional)").fill("welcome10");
  });

  await step(page, "order-placed", async () => {
    await page.getByRole("button", { name: "Place order" }).click();
    await page.waitForLoadState("load");
    await waitForText(page, "h1", "your order is placed", "order confirmation");
    await waitForText(page, "[role=status]", "Awaiting payment", "a manual payment awaits payment");
    await waitForText(page, "main", "Shipping (Standard parcel): 4.90 EUR", "the order shows its shipping");
    await waitForText(page, "main", "Discount: −", "the order shows the code's discount");
    await waitForText(page, "main", "Includes MwSt. 19 %", "the order shows the VAT its prices hold");
    await waitForText(page, "main", "Ships to Ann Example", "the order shows where it goes");
    orderId = (await text(page, "[role=status] strong")).trim();
    expect(/^[0-9a-f-]{36}$/.test(orderId), `order confirmation: order id ${JSON.stringify(orderId)}`);
  });

  await step(page, "account-orders", async () => {
    await page.getByRole("navigation", { name: "Account" }).getByRole("link", { name: "Account" }).click();
    await expectPath(page, "/account", "account");
    const row = page.locator(`#order-${orderId}`);
    expect(await row.isVisible(), `account: order ${orderId} is not in the order history (${JSON.stringify(await text(page, "main"))})`);
    const cells = (await row.innerText()).trim();
    expect(cells.includes("Awaiting payment") && cells.includes(opt.product), `account: order row ${JSON.stringify(cells)}`);
  });

  await step(page, "stock-after-order", async () => {
    await page.goto(`${base}/search?q=${encodeURIComponent(opt.product)}`);
    await page.locator("ul.grid a", { hasText: opt.product }).first().click();
    await page.waitForLoadState("load");
    await waitForText(page, `[data-stock-sku="${opt.sku}"]`, `${stockBefore - quantity} in stock`, `stock after ordering ${quantity} of ${stockBefore}`);
  });

  await step(page, "signed-out", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForLoadState("load");
    await page.getByRole("navigation", { name: "Account" }).getByRole("link", { name: "Sign in" }).waitFor();
  });

  // Keyboard only from here: no clicks, no fills.
  await step(page, "keyboard-skip-link", async () => {
    await page.goto(`${base}/signin`);
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return { text: el.textContent.trim(), href: el.getAttribute("href"), visible: r.left >= 0 && r.width > 0 && r.top >= 0, outline: style.outlineStyle };
    });
    expect(focused.href === "#main" && focused.visible, `keyboard: the first Tab should reach a visible "Skip to content" link, reached ${JSON.stringify(focused)}`);
    expect(focused.outline !== "none", `keyboard: the focused skip link has no focus outline`);
  });

  await step(page, "keyboard-signin", async () => {
    const active = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);
    let tabs = 1;
    while ((await active()) !== "email") {
      expect(tabs < 25, `keyboard: 25 Tabs never reached the email field (at ${await active()})`);
      await page.keyboard.press("Tab");
      tabs += 1;
    }
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    expect(ring !== "none", "keyboard: the focused email field shows no focus outline");
    await page.keyboard.type(email);
    await page.keyboard.press("Tab");
    expect((await active()) === "password", `keyboard: Tab from email went to ${await active()}, not the password`);
    await page.keyboard.type(password);
    await shot(page, "keyboard-signin-form");
    log(`keyboard: ${tabs} Tabs from the top of /signin to the email field`);
    await page.keyboard.press("Enter");
    await page.waitForURL((u) => u.pathname !== "/signin", { timeout }).catch(() => {});
    await expectPath(page, "/account", "keyboard sign-in (Enter in the password field)");
    expect(await page.locator(`#order-${orderId}`).isVisible(), "keyboard sign-in: the order is not in the history");
  });

  await step(page, "phone-home", async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(`${base}/`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 1, `phone width: the home page scrolls sideways by ${overflow}px`);
    await waitForText(page, "ul.grid", opt.product, "phone width lists the product");
  });

  log(`passed: ${stepNo} steps; screenshots in ${opt.artifacts}`);
} catch (e) {
  exitCode = 1;
  const why = e instanceof Failed ? e.message : e?.stack || String(e);
  console.error(`journey failed at ${stepName}: ${why}`);
  if (page) {
    await shot(page, `FAILED-${stepName}`).then(
      (f) => console.error(`journey: the page at the failure: ${f} (${page.url()})`),
      () => {},
    );
  }
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
