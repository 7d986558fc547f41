#!/usr/bin/env node
// What a person sees on archie's status page, read in a real browser: Debian's headless
// Chromium (/usr/bin/chromium) driven by puppeteer-core, both installed by scripts/install-deps.
//
//   node tests/browser/status_page.mjs URL SCREENSHOT.png
//
// Opens URL (the admin server's /status), waits for #archie-status (the server may first answer
// a placeholder that reloads itself after 1 s through its <meta http-equiv="refresh">), reads the
// rendered text of the page (innerText, not the HTML), saves a full-page PNG screenshot and
// prints one JSON object on stdout:
//   {title, state, data_state, problems, backlog: {pending, ack_pending, oldest_seconds},
//    workers_count, workers: [{id, version, transfers, messages}],
//    stores: {NAME: {bytes, bytes_text, requests, failed}}, outcomes: {"state/code": N},
//    dead_letters: {total, by_code: {CODE: N}}, refresh_seconds,
//    external_requests: [every URL the page requested other than its own (and the browser's
//    own /favicon.ico probe)]}
// The markup it reads is the one src/fleet/status_page.cpp renders (fixture_status.html is a copy).
// Exit status: 0 with the JSON, 1 with a message on stderr (page never showed, an element of the
// contract missing or not a whole number, browser failure, 45 s in all), 2 for a wrong usage.
// ARCHIE_BROWSER_DEBUG=1 copies Chromium's own stderr to ours.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import puppeteer from "puppeteer-core";

const CHROMIUM = "/usr/bin/chromium";
const TOTAL_MS = 45_000; // everything, launch to exit
const PAGE_MS = 20_000; // for #archie-status to appear, placeholder reloads included
const ATTEMPTS = 3; // reads spoiled by the page's own refresh before we give up

const argv = process.argv.slice(2);
if (argv.length !== 2 || argv.some((a) => a.startsWith("-"))) {
  process.stderr.write("usage: node status_page.mjs URL SCREENSHOT.png\n");
  process.exit(2);
}
const [url, screenshot] = argv;

let browser = null;
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "archie-chromium-"));
const removeProfile = () => {
  try {
    fs.rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
  } catch {}
};
// Prints why, stops Chromium (waiting up to 3 s for it to go, so that its profile can be
// removed) and exits 1. Never returns.
const die = async (message) => {
  process.stderr.write(`status_page.mjs: ${message}\n`);
  const chromium = browser?.process();
  browser = null;
  if (chromium && chromium.exitCode === null && chromium.signalCode === null) {
    const gone = new Promise((resolve) => chromium.once("exit", resolve));
    chromium.kill("SIGKILL");
    await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 3000))]);
  }
  removeProfile();
  process.exit(1);
};
setTimeout(() => die(`gave up after ${TOTAL_MS / 1000} s in all (${url})`), TOTAL_MS);
process.on("unhandledRejection", (e) => die(e?.stack || String(e)));

const withoutHash = (u) => {
  try {
    const x = new URL(u);
    x.hash = "";
    return x.href;
  } catch {
    return u;
  }
};

// Runs in the page: the rendered text of each element of the contract. Returns
// {errors: [...]} when the page breaks the contract, so that those are not retried.
function readPage() {
  const errors = [];
  const one = (sel) => {
    const el = document.querySelector(sel);
    if (!el) errors.push(`${sel} is missing`);
    return el;
  };
  const text = (el) => (el ? el.innerText.trim() : null);
  const whole = (el, what) => {
    if (!el) return null;
    const t = el.innerText.trim();
    if (!/^-?\d+$/.test(t)) {
      errors.push(`${what}: expected a whole number, the page shows ${JSON.stringify(t)}`);
      return null;
    }
    return Number(t);
  };
  const rows = (sel) => (one(sel) ? [...document.querySelectorAll(`${sel} > tbody > tr`)] : []);
  const cell = (tr, cls, what) => {
    const td = tr.querySelector(`td.${cls}`);
    if (!td) errors.push(`${what}: no <td class="${cls}">`);
    return td;
  };
  const keyed = (tr, attr, table) => {
    const key = tr.dataset[attr];
    if (key === undefined) errors.push(`${table}: a row without data-${attr}`);
    return key;
  };
  const unique = (obj, key, table) => {
    if (Object.hasOwn(obj, key)) errors.push(`${table}: two rows for ${JSON.stringify(key)}`);
  };

  const main = one("#archie-status");
  const problemList = one("#problems");
  const result = {
    title: document.title,
    state: text(one("#state")),
    data_state: main ? main.dataset.state ?? null : null,
    problems: problemList ? [...problemList.querySelectorAll("li")].map((li) => li.innerText.trim()) : [],
    backlog: {
      pending: whole(one("#backlog-pending"), "#backlog-pending"),
      ack_pending: whole(one("#backlog-ack-pending"), "#backlog-ack-pending"),
      oldest_seconds: whole(one("#backlog-oldest"), "#backlog-oldest"),
    },
    workers_count: whole(one("#workers-count"), "#workers-count"),
    workers: rows("#workers").map((tr) => {
      const id = keyed(tr, "worker", "#workers");
      const what = `#workers row ${JSON.stringify(id)}`;
      return {
        id,
        version: text(cell(tr, "version", what)),
        transfers: whole(cell(tr, "transfers", what), `${what} transfers`),
        messages: whole(cell(tr, "messages", what), `${what} messages`),
      };
    }),
    stores: {},
    outcomes: {},
    dead_letters: { total: whole(one("#dead-letters-total"), "#dead-letters-total"), by_code: {} },
    refresh_seconds: null,
  };
  for (const tr of rows("#stores")) {
    const name = keyed(tr, "store", "#stores");
    const what = `#stores row ${JSON.stringify(name)}`;
    unique(result.stores, name, "#stores");
    const bytes = cell(tr, "bytes", what);
    const raw = bytes?.dataset.value;
    if (bytes && (raw === undefined || raw.trim() === "" || !Number.isFinite(Number(raw))))
      errors.push(`${what}: td.bytes data-value is ${JSON.stringify(raw ?? null)}, not a number`);
    result.stores[name] = {
      bytes: bytes && raw !== undefined ? Number(raw) : null,
      bytes_text: text(bytes),
      requests: whole(cell(tr, "requests", what), `${what} requests`),
      failed: whole(cell(tr, "failed", what), `${what} failed`),
    };
  }
  for (const tr of rows("#outcomes")) {
    const code = keyed(tr, "outcome", "#outcomes");
    unique(result.outcomes, code, "#outcomes");
    const what = `#outcomes row ${JSON.stringify(code)}`;
    result.outcomes[code] = whole(cell(tr, "count", what), `${what} count`);
  }
  for (const tr of rows("#dead-letters")) {
    const code = keyed(tr, "code", "#dead-letters");
    unique(result.dead_letters.by_code, code, "#dead-letters");
    const what = `#dead-letters row ${JSON.stringify(code)}`;
    result.dead_letters.by_code[code] = whole(cell(tr, "count", what), `${what} count`);
  }
  const refresh = [...document.querySelectorAll("meta[http-equiv]")].find(
    (m) => m.httpEquiv.toLowerCase() === "refresh",
  );
  if (refresh) {
    const seconds = Number.parseFloat(refresh.content); // "5" or "5; url=..."
    result.refresh_seconds = Number.isFinite(seconds) ? seconds : null;
  }
  return errors.length ? { errors } : { result };
}

try {
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true, // puppeteer passes --headless=new (plus --hide-scrollbars --mute-audio)
    // --no-sandbox: CI runs as root, where Chromium refuses its sandbox. --disable-dev-shm-usage:
    // shared memory in /tmp, for small /dev/shm in containers. --disable-gpu: no GPU here.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    userDataDir: profile,
    timeout: PAGE_MS,
    protocolTimeout: PAGE_MS,
    dumpio: process.env.ARCHIE_BROWSER_DEBUG === "1",
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });

  // Every request but the page's own (and its reloads). Not counted: the favicon Chromium
  // itself asks the page's origin for when a page declares no icon (type "other", not the page's).
  const own = withoutHash(url);
  const probe = new URL("/favicon.ico", own).href;
  const external = [];
  page.on("request", (r) => {
    const u = withoutHash(r.url());
    if (u === own || (u === probe && r.resourceType() === "other")) return;
    if (!external.includes(u)) external.push(u);
  });
  page.on("pageerror", (e) => process.stderr.write(`status_page.mjs: page error: ${e.message}\n`));
  let navigations = 0;
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) navigations++;
  });

  let response;
  try {
    response = await page.goto(url, { waitUntil: "domcontentloaded", timeout: PAGE_MS });
  } catch (e) {
    await die(`cannot open ${url}: ${e.message}`);
  }
  const started = Date.now();
  let seen = null;
  for (let attempt = 1; !seen; attempt++) {
    try {
      // Survives the placeholder's reloads: puppeteer waits again in each new document.
      await page.waitForSelector("#archie-status", {
        visible: true,
        timeout: Math.max(1, PAGE_MS - (Date.now() - started)),
      });
    } catch (e) {
      let shown = "";
      try {
        shown = (await page.evaluate(() => document.body?.innerText ?? "")).trim().slice(0, 500);
      } catch {}
      await die(
        `#archie-status did not appear within ${PAGE_MS / 1000} s at ${page.url()} ` +
          `(first answer: HTTP ${response?.status() ?? "?"}); the page shows: ${JSON.stringify(shown)}` +
          ` (${e.message})`,
      );
    }
    const before = navigations;
    try {
      const read = await page.evaluate(readPage);
      if (read.errors) await die(`the page breaks the status page contract:\n  ${read.errors.join("\n  ")}`);
      await page.screenshot({ path: screenshot, fullPage: true, type: "png" });
      if (navigations === before) seen = read.result; // data and picture from the same document
    } catch (e) {
      // The page's own <meta http-equiv="refresh"> reloaded it while it was being read.
      if (!/context was destroyed|detached|navigat|Target closed/i.test(e.message)) throw e;
    }
    if (!seen && attempt >= ATTEMPTS) await die(`the page reloaded itself during each of ${ATTEMPTS} reads`);
  }
  seen.external_requests = external;
  await browser.close();
  browser = null;
  removeProfile();
  process.stdout.write(JSON.stringify(seen) + "\n");
  process.exit(0);
} catch (e) {
  await die(e?.stack || String(e));
}
