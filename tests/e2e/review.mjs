// Drives `scalpmap review`'s page in a real headless Chromium (Debian's, never a downloaded one),
// as a practitioner would: at 1280x800 with mouse and keys, then at tablet size with touch.
// Run by tests/review_e2e.rs:  node review.mjs URL TOP_NAME FRONT_NAME
// Prints one JSON line of what it saw; the Rust test checks the files the saves wrote.
import { chromium } from "playwright-core";

const [url, top, front] = process.argv.slice(2);
const executablePath = process.env.SCALPMAP_CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
const seen = { errors: [] };
const fail = (why) => { throw new Error(why); };

async function openPage(context) {
  const page = await context.newPage();
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  // Nothing may be fetched from anywhere but the review server.
  page.on("request", (r) => { const u = new URL(r.url()); if (!["127.0.0.1", "localhost"].includes(u.hostname) && u.protocol.startsWith("http")) seen.errors.push("external request " + r.url()); });
  await page.goto(url);
  await page.waitForSelector("body[data-ready='1']", { timeout: 30000 });
  return page;
}
async function openPhoto(page, name) {
  await page.click(`nav button[data-name="${name}"]`);
  await page.waitForFunction((n) => S.name === n && document.getElementById("photo").complete && document.getElementById("photo").naturalWidth > 0, name);
  await page.waitForTimeout(100);
}
const lossText = (page) => page.evaluate(() => document.querySelector("#shares tr:last-child td:last-child").textContent);
const counts = (page) => page.evaluate(() => { const n = [0, 0, 0, 0, 0]; for (const k of S.map) n[k]++; return n; });
const mapCopy = (page) => page.evaluate(() => Array.from(S.map));

// ---- desktop: mouse, keys, undo/redo, save ----
{
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await openPage(context);
  await openPhoto(page, top);
  seen.loss_before = await lossText(page);
  const before = await counts(page);
  // Keys choose the class, the tool and the size.
  await page.keyboard.press("1");
  await page.keyboard.press("b");
  for (let i = 0; i < 30; i++) await page.keyboard.press("]");
  const state = await page.evaluate(() => ({ cls: S.cls, tool: S.tool, size: S.size }));
  if (state.cls !== 0 || state.tool !== "brush" || state.size !== 60) fail("keys did not set class/tool/size: " + JSON.stringify(state));
  // Paint the front half of the head (the upper half of the top-down photo) as background.
  const box = await page.locator("#map").boundingBox();
  for (let f = 0.02; f <= 0.5; f += 0.05) {
    await page.mouse.move(box.x + 2, box.y + box.height * f);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width - 2, box.y + box.height * f, { steps: 12 });
    await page.mouse.up();
  }
  const painted = await counts(page);
  seen.loss_after = await lossText(page);
  if (!(painted[2] + painted[3] < before[2] + before[3])) fail("painting removed no loss: " + before + " -> " + painted);
  if (seen.loss_after === seen.loss_before) fail("the live loss fraction did not change");
  // Undo and redo with the keyboard.
  const afterPaint = await mapCopy(page);
  await page.keyboard.press("Control+z");
  const undone = await mapCopy(page);
  await page.keyboard.press("Control+y");
  const redone = await mapCopy(page);
  if (JSON.stringify(undone) === JSON.stringify(afterPaint)) fail("undo changed nothing");
  if (JSON.stringify(redone) !== JSON.stringify(afterPaint)) fail("redo did not restore the stroke");
  // Keyboard painting: focus the map, move the brush with arrows, paint with Space.
  await page.focus("#map");
  await page.keyboard.press("4"); // bare
  await page.keyboard.press("[");
  const k0 = await mapCopy(page);
  await page.keyboard.down("Space");
  for (let i = 0; i < 5; i++) await page.keyboard.press("ArrowRight");
  await page.keyboard.up("Space");
  const k1 = await mapCopy(page);
  if (JSON.stringify(k0) === JSON.stringify(k1)) fail("keyboard painting changed nothing");
  await page.keyboard.press("Control+z"); // the keyboard stroke is not part of the correction
  const back = await mapCopy(page);
  if (JSON.stringify(back) !== JSON.stringify(afterPaint)) fail("undo of the keyboard stroke did not restore the map");
  // Save (Ctrl+S) and read what the page says.
  await page.keyboard.press("Control+s");
  await page.waitForSelector("body[data-saved]", { timeout: 60000 });
  seen.saved_map = afterPaint;
  seen.saved_at = await page.evaluate(() => document.body.dataset.saved);
  seen.status = await page.evaluate(() => document.getElementById("status").textContent);
  seen.plan_area = await page.evaluate(() => document.querySelector("#plan tr:nth-child(2) td:last-child").textContent);
  seen.badge = await page.evaluate((n) => document.querySelector(`nav button[data-name="${n}"] .badge`).textContent, top);
  // Zoom: the photo grows, the stage scrolls, and a click still lands on the cell under it.
  const w0 = await page.evaluate(() => document.getElementById("photo").getBoundingClientRect().width);
  await page.keyboard.press("+");
  await page.keyboard.press("+");
  const zoomed = await page.evaluate(() => ({ w: document.getElementById("photo").getBoundingClientRect().width, scrolls: document.getElementById("stage").scrollWidth > document.getElementById("stage").clientWidth }));
  if (!(zoomed.w > w0 * 2 && zoomed.scrolls)) fail("zoom did not enlarge the photo: " + w0 + " -> " + JSON.stringify(zoomed));
  const zb = await page.locator("#map").boundingBox();
  const visible = await page.evaluate(() => { const r = document.getElementById("stage").getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; });
  const expect = { x: Math.floor(((visible.x - zb.x) / zb.width) * 256), y: Math.floor(((visible.y - zb.y) / zb.height) * 256) };
  await page.mouse.move(visible.x, visible.y);
  const at = await page.evaluate(() => S.cursor);
  if (Math.abs(at.x - expect.x) > 1 || Math.abs(at.y - expect.y) > 1) fail("under zoom the pointer maps to " + JSON.stringify(at) + ", not " + JSON.stringify(expect));
  await page.keyboard.press("-");
  await page.keyboard.press("-");
  // Every control is reachable with Tab.
  const reached = new Set();
  await page.focus("#help-btn");
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press("Tab");
    reached.add(await page.evaluate(() => document.activeElement.id || document.activeElement.dataset.tool || document.activeElement.dataset.class || document.activeElement.dataset.name || document.activeElement.tagName));
  }
  for (const need of ["brush", "zone", "eraser", "0", "4", "size", "opacity", "undo", "map", "view", "save", "retake"])
    if (!reached.has(need)) fail("Tab never reaches " + need + ": " + [...reached].join(","));
  await context.close();
}

// ---- tablet: touch, zone tool, retake ----
{
  const context = await browser.newContext({ viewport: { width: 820, height: 1180 }, hasTouch: true, isMobile: true });
  const page = await openPage(context);
  await openPhoto(page, front);
  // A touch on a bare cell with the zone tool makes its whole zone background.
  await page.tap("[data-tool='zone']");
  await page.tap("[data-class='0']");
  const spot = await page.evaluate(() => { const i = S.map.indexOf(3); return i < 0 ? null : { x: (i % S.w) + 0.5, y: Math.floor(i / S.w) + 0.5 }; });
  if (!spot) fail("the front view has no bare cell to reassign");
  const box = await page.locator("#map").boundingBox();
  const w = await page.evaluate(() => S.w), h = await page.evaluate(() => S.h);
  const before = await counts(page);
  await page.touchscreen.tap(box.x + (spot.x / w) * box.width, box.y + (spot.y / h) * box.height);
  const after = await counts(page);
  if (!(after[3] < before[3])) fail("the touch reassigned nothing: " + before + " -> " + after);
  seen.tablet_bare = [before[3], after[3]];
  const fits = await page.evaluate(() => { const r = document.getElementById("map").getBoundingClientRect(); return r.width > 200 && r.right <= innerWidth + 1; });
  if (!fits) fail("the photo does not fit a tablet-sized window");
  await page.tap("#retake");
  await page.waitForSelector("body[data-saved]", { timeout: 60000 });
  seen.tablet_status = await page.evaluate(() => document.getElementById("status").textContent);
  // The page's Stop button ends the server.
  await page.tap("#stop-btn");
  await page.waitForFunction(() => document.getElementById("status").textContent.includes("stopped"));
  await context.close();
}
await browser.close();
if (seen.errors.length) fail("page errors: " + seen.errors.join(" | "));
console.log(JSON.stringify(seen));
