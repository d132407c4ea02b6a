// Opens a generated dashboard page in headless Chromium (Debian's, driven by
// playwright-core) and checks it: no console error or page error, every chart
// drew on its canvas, and the KPI cards show the expected values.
//
// usage: node check.mjs PAGE.html EXPECTED_KPIS.json [SCREENSHOT.png] [LANG]
// Prints a JSON summary; exits 1 on any failure.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [page_path, expected_path, screenshot, lang] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(expected_path, "utf8"));
const failures = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  const requests = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("request", (r) => {
    if (!r.url().startsWith("file:")) requests.push(r.url());
  });
  const url = pathToFileURL(page_path).href + (lang ? `?lang=${lang}` : "");
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-rendered=true]", { timeout: 15000 });
  const charts = await page.evaluate(() =>
    Array.from(document.querySelectorAll(".chart")).map((box) => {
      const canvas = box.querySelector("canvas");
      if (!canvas) return { id: box.id, painted: 0 };
      const ctx = canvas.getContext("2d");
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
      return { id: box.id, painted };
    }),
  );
  for (const c of charts) if (c.painted === 0) failures.push(`chart ${c.id} drew nothing`);
  if (charts.length === 0) failures.push("no charts on the page");
  const kpis = await page.evaluate(() =>
    Object.fromEntries(
      Array.from(document.querySelectorAll("[data-kpi]")).map((e) => [
        e.getAttribute("data-kpi"),
        { value: Number(e.getAttribute("data-value")), text: e.textContent },
      ]),
    ),
  );
  for (const [key, want] of Object.entries(expected)) {
    const shown = kpis[key];
    if (!shown) {
      failures.push(`KPI ${key} is not shown`);
      continue;
    }
    if (Math.abs(shown.value - want) > 1e-9 * Math.max(1, Math.abs(want))) {
      failures.push(`KPI ${key}: page has ${shown.value}, SQL says ${want}`);
    }
    // The text as shown, back to a number: money and counts as printed, percentages / 100.
    let text = Number(shown.text.replace(/[^0-9.\-]/g, ""));
    if (shown.text.endsWith("%")) text /= 100;
    const decimals = shown.text.endsWith("%") ? 4 : 2;
    if (Math.abs(text - want) > 0.5 * 10 ** -decimals + 1e-12) {
      failures.push(`KPI ${key}: page shows "${shown.text}", SQL says ${want}`);
    }
  }
  for (const e of errors) failures.push(`console: ${e}`);
  for (const r of requests) failures.push(`network request: ${r}`);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ charts, kpis, failures }));
} finally {
  await browser.close();
}
process.exit(failures.length ? 1 : 0);
