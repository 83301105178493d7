// Browser scenarios for ttyward's web console, run by ttyward/tests/browser.rs:
//
//     node console.mjs SCENARIO BASE-URL JSON-ARGS
//
// One headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core from ./node_modules, both installed by scripts/test) with
// a fresh temporary profile per run. Every page visited is saved as a
// full-page screenshot to ARGS.shots/SCENARIO-PAGE.png. Progress goes to
// stderr; the last line on stdout is a JSON object with what the Rust side
// checks further. Any failed expectation exits 1 with a message naming it;
// a missing prerequisite exits 2.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CHROMIUM = "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 15_000;
const SCENARIO_TIMEOUT_MS = 75_000;

class Expectation extends Error {}

function fail(message) {
  throw new Expectation(message);
}

function expect(condition, message) {
  if (!condition) fail(message);
}

function expectEqual(got, want, what) {
  if (got !== want) fail(`${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
}

const started = Date.now();
function log(...parts) {
  console.error(`console.mjs: +${((Date.now() - started) / 1000).toFixed(2)} s`, ...parts);
}

const [scenario, base, rawArgs] = process.argv.slice(2);
if (!scenario || !base || !rawArgs) {
  console.error("usage: node console.mjs SCENARIO BASE-URL JSON-ARGS");
  process.exit(2);
}
const args = JSON.parse(rawArgs);

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  console.error(`console.mjs: playwright-core is not installed next to this script (${e.message}); run scripts/test, which installs it`);
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`console.mjs: ${CHROMIUM} is missing; run scripts/test, which installs Debian's chromium`);
  process.exit(2);
}

// ---- the browser and its pages -------------------------------------------

class Browser {
  static async open(shots) {
    const profile = mkdtempSync(join(tmpdir(), "ttyward-chromium-"));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
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
      ],
      // The device's certificate is self-signed; trusting it is not what
      // these tests are about.
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 800 },
    });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    const b = new Browser(context, profile, shots);
    b.page = context.pages()[0] ?? (await context.newPage());
    b.watch(b.page);
    return b;
  }

  constructor(context, profile, shots) {
    this.context = context;
    this.profile = profile;
    this.shots = shots;
    this.problems = [];
    this.saved = [];
    // Where `visit` goes: the console's address, until it moves (Services).
    this.base = base;
  }

  // Script errors and Content-Security-Policy violations are defects of
  // the page whichever step caused them.
  watch(page) {
    page.on("pageerror", (e) => this.problems.push(`script error on ${page.url()}: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && /Content.Security.Policy|Refused to/i.test(m.text())) {
        this.problems.push(`CSP violation on ${page.url()}: ${m.text()}`);
      }
    });
  }

  async close() {
    try {
      await this.context.close();
    } finally {
      rmSync(this.profile, { recursive: true, force: true });
    }
  }

  async shot(name) {
    const file = join(this.shots, `${scenario}-${name}.png`);
    const t = Date.now();
    await this.page.screenshot({ path: file, fullPage: true });
    this.saved.push(file);
    log(`${scenario}: ${new URL(this.page.url()).pathname} -> ${name}.png (${Date.now() - t} ms)`);
  }

  // What the current page says, for failure messages: its heading and
  // any problem shown.
  async summary() {
    const say = await this.page
      .$$eval("h1, .problem, #login-failure, #setup-problem, main p", (els) =>
        els.slice(0, 3).map((e) => e.textContent.trim().replace(/\s+/g, " ")),
      )
      .catch(() => []);
    return say.join(" | ").slice(0, 400);
  }

  // Expect the page reached to have `status` and `landsOn` as its path;
  // the screenshot is saved first, so that a failure shows the page.
  async arrived(response, what, name, status, landsOn) {
    expect(response, `no response for ${what}`);
    await this.shot(name);
    const got = { status: response.status(), path: new URL(this.page.url()).pathname };
    if ((status !== undefined && got.status !== status) || (landsOn !== undefined && got.path !== landsOn)) {
      fail(`${what}: expected ${status ?? "any status"} on ${landsOn ?? "any page"}, got ${got.status} on ${got.path}; the page says: ${await this.summary()}`);
    }
    return response;
  }

  // Go to `path`, expect the final status (after redirects) and path, and
  // save a screenshot named `name`.
  async visit(path, name, { status = 200, landsOn = path.split("?")[0] } = {}) {
    const response = await this.page.goto(this.base + path, { waitUntil: "load" });
    return this.arrived(response, `GET ${path}`, name, status, landsOn);
  }

  // Click the submit button inside `scope` and wait for the page the form
  // leads to; expect its status and path, save a screenshot.
  async submit(scope, name, { status, landsOn }) {
    const navigation = this.page.waitForNavigation({ waitUntil: "load" });
    await this.page.locator(scope).locator('button[type="submit"]').click();
    const response = await navigation;
    return this.arrived(response, `submitting ${scope} on ${new URL(this.page.url()).pathname}`, name, status, landsOn);
  }

  // Click the link `selector` and wait for the page it leads to, as a
  // person would. When the link leads to a server that does not listen
  // yet (the device restarts its web server after answering the page
  // that names it), ask for its address again while the connection is
  // refused, for at most `withinMs`.
  async follow(selector, withinMs) {
    const href = await this.page.getAttribute(selector, "href");
    expect(href, `no link ${selector}`);
    const refused = (e) => /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_CONNECTION_CLOSED/.test(e.message);
    const deadline = Date.now() + withinMs;
    try {
      const navigation = this.page.waitForNavigation({ waitUntil: "load" });
      await this.page.click(selector);
      const response = await navigation;
      if (response) return response;
    } catch (e) {
      if (!refused(e)) throw e;
    }
    for (let attempt = 2; ; attempt++) {
      log(`${href} does not answer yet; attempt ${attempt}`);
      try {
        return await this.page.goto(href, { waitUntil: "load" });
      } catch (e) {
        if (!refused(e) || Date.now() > deadline) throw e;
      }
      await this.page.waitForTimeout(100);
    }
  }

  async text(selector) {
    return (await this.page.locator(selector).innerText()).trim();
  }

  async count(selector) {
    return this.page.locator(selector).count();
  }

  // Log in from the login page (screenshot `login`); the page reached is
  // saved as `shot`.
  async login(name, password, { status = 200, landsOn = "/dashboard", shot = "dashboard" } = {}) {
    await this.visit("/login", "login");
    await this.page.fill('input[name="name"]', name);
    await this.page.fill('input[name="password"]', password);
    return this.submit('form[action="/login"]', shot, { status, landsOn });
  }

  // The menu as [{section, pages: [{title, href}]}].
  async menu() {
    return this.page.$$eval("nav.menu .section", (sections) =>
      sections.map((s) => ({
        section: s.querySelector(".section-title").textContent.trim(),
        pages: [...s.querySelectorAll("a")].map((a) => ({
          title: a.textContent.trim(),
          href: a.getAttribute("href"),
        })),
      })),
    );
  }

  // Visit every page of the menu: each answers 200 and shows its title.
  async tour(prefix) {
    const menu = await this.menu();
    const visited = [];
    for (const { pages } of menu) {
      for (const { title, href } of pages) {
        const slug = href.replace(/^\//, "").replace(/\//g, "-");
        await this.visit(href, `${prefix}-${slug}`);
        const h1 = await this.text("main h1");
        expect(h1.length > 0, `${href} has no heading`);
        expectEqual(await this.count('nav.menu a[aria-current="page"]'), 1, `menu entries highlighted on ${href} ("${title}")`);
        visited.push(href);
      }
    }
    return { menu, visited };
  }

  // The value in the row headed `key` of a key/value table in `scope`.
  async row(scope, key) {
    const value = await this.page.$$eval(
      `${scope} tr`,
      (rows, key) => rows.find((r) => r.querySelector("th")?.textContent.trim() === key)?.querySelector("td")?.textContent.trim(),
      key,
    );
    expect(value !== undefined, `no row "${key}" in ${scope}`);
    return value;
  }

  // The rows of the System Log's table.
  async events() {
    return this.page.$$eval("#events tbody tr", (rows) =>
      rows.map((r) => {
        const c = [...r.children].map((td) => td.textContent.trim());
        return {
          seq: Number(c[0]),
          time: c[1],
          category: c[2],
          severity: c[3],
          event: c[4],
          user: c[5],
          source: c[6],
          message: c[7],
        };
      }),
    );
  }
}

// ---- scenarios -------------------------------------------------------------

const scenarios = {
  // First use: "/" leads to Create Account; a wrong setup code and
  // differing passwords are refused; the right code creates the
  // Administrator, who then logs in (the login message shown) and can
  // open every page of the menu.
  async "first-use"(b) {
    await b.visit("/", "root", { landsOn: "/setup" });
    await b.visit("/login", "login-before-setup", { landsOn: "/setup" });
    await b.visit("/setup", "setup");
    expectEqual(await b.text("main h1"), "Create Account", "heading of /setup");

    const fill = async (code, password2) => {
      await b.page.fill('input[name="setup_code"]', code);
      await b.page.fill('input[name="name"]', args.name);
      await b.page.fill('input[name="password"]', args.password);
      await b.page.fill('input[name="password2"]', password2);
    };
    await fill("WRONG-CODE0-00000", args.password);
    await b.submit('form[action="/setup"]', "setup-wrong-code", { status: 422, landsOn: "/setup" });
    const refused = await b.text("#setup-problem");
    expect(/setup code/i.test(refused), `a wrong setup code should be named as the problem, page says: ${refused}`);
    expectEqual(await b.page.inputValue('input[name="name"]'), args.name, "account name kept after a refusal");

    await fill(args.setup_code, args.password + "x");
    await b.submit('form[action="/setup"]', "setup-passwords-differ", { status: 422, landsOn: "/setup" });
    expectEqual(await b.text("#setup-problem"), "The two passwords differ.", "problem for differing passwords");

    await fill(args.setup_code, args.password);
    await b.submit('form[action="/setup"]', "login", { status: 200, landsOn: "/login" });
    expectEqual(await b.text("#login-message"), args.login_message, "login message");
    expectEqual(await b.count("#login-failure"), 0, "failure messages on a fresh login page");

    // Setup is closed now that an account exists.
    await b.visit("/setup", "setup-closed", { landsOn: "/login" });

    await b.page.fill('input[name="name"]', args.name);
    await b.page.fill('input[name="password"]', args.password);
    await b.submit('form[action="/login"]', "dashboard", { status: 200, landsOn: "/dashboard" });
    const who = await b.text("header .who");
    expect(who.includes(args.name) && who.includes("Administrator"), `header should name ${args.name} (Administrator), says: ${who}`);
    expectEqual(await b.count('#ports tr[data-port="1"]'), 1, "port 1 rows on the dashboard");
    expect((await b.count("#security-warnings li")) > 0, "the dashboard shows no security warning, but the allowlist is off");

    const { menu, visited } = await b.tour("menu");
    const sections = menu.map((s) => s.section);
    for (const s of ["Dashboard", "Serial Port Settings", "Security", "Account Management", "Diagnostics", "Maintenance"]) {
      expect(sections.includes(s), `the Administrator's menu lacks ${s}: ${sections.join(", ")}`);
    }
    return { visited, sections };
  },

  // The login page shows the login message; each wrong password shows the
  // configured failure message; after max_failures the right password is
  // refused with the same message (locked out).
  async login(b) {
    await b.visit("/login", "page");
    expectEqual(await b.text("#login-message"), args.login_message, "login message");
    expectEqual(await b.count("#login-failure"), 0, "failure messages before any attempt");
    for (let i = 1; i <= args.max_failures; i++) {
      await b.page.fill('input[name="name"]', args.name);
      await b.page.fill('input[name="password"]', `wrong-password-${i}`);
      await b.submit('form[action="/login"]', `failure-${i}`, { status: 401, landsOn: "/login" });
      expectEqual(await b.text("#login-failure"), args.failure_message, `failure message after wrong password ${i}`);
      expectEqual(await b.text("#login-message"), args.login_message, `login message after wrong password ${i}`);
      expectEqual(await b.page.inputValue('input[name="name"]'), args.name, "account name kept");
    }
    await b.page.fill('input[name="password"]', args.password);
    await b.submit('form[action="/login"]', "locked", { status: 401, landsOn: "/login" });
    expectEqual(await b.text("#login-failure"), args.failure_message, "failure message for the right password while locked out");
    const cookies = await b.context.cookies();
    expectEqual(cookies.length, 0, "cookies set by refused logins");
    await b.visit("/dashboard", "dashboard-refused", { landsOn: "/login" });
    return { attempts: args.max_failures + 1 };
  },

  // An Operator's menu has no Security, Account Management or Maintenance
  // page; every page it has opens; the others answer 403 when asked for
  // directly, and a forged Allowlist POST is refused too.
  async operator(b) {
    await b.login(args.name, args.password);
    const who = await b.text("header .who");
    expect(who.includes(args.name) && who.includes("Operator"), `header should name ${args.name} (Operator), says: ${who}`);
    expectEqual(await b.count("#security-warnings"), 0, "security warnings shown to an Operator");

    const { menu, visited } = await b.tour("menu");
    const sections = menu.map((s) => s.section);
    for (const s of ["Security", "Account Management", "Maintenance"]) {
      expect(!sections.includes(s), `the Operator's menu shows ${s}: ${sections.join(", ")}`);
    }
    for (const s of ["Dashboard", "Serial Port Settings", "Diagnostics"]) {
      expect(sections.includes(s), `the Operator's menu lacks ${s}: ${sections.join(", ")}`);
    }
    expect(!visited.some((h) => h.startsWith("/security") || h.startsWith("/accounts")), `Operator menu links: ${visited.join(", ")}`);

    const forbidden = [
      "/security/allowlist",
      "/security/services",
      "/security/certificate",
      "/security/login",
      "/accounts",
      "/accounts/groups",
      "/accounts/password-policy",
      "/maintenance/config",
      "/maintenance/reset",
    ];
    for (const path of forbidden) {
      const slug = path.replace(/^\//, "").replace(/\//g, "-");
      await b.visit(path, `forbidden-${slug}`, { status: 403 });
      expectEqual(await b.text("main h1"), "Not allowed", `heading of ${path} for an Operator`);
    }

    // The Log View offers no Security category and shows no Security event.
    await b.visit("/log", "log");
    const options = await b.page.$$eval('select[name="category"] option', (os) => os.map((o) => o.textContent.trim()));
    expect(!options.includes("security"), `Operator's category filter offers security: ${options.join(", ")}`);
    const rows = await b.events();
    expect(rows.length > 0, "the Operator's log view is empty");
    expect(!rows.some((r) => r.category === "security"), "Security events shown to an Operator");
    await b.visit("/log?category=security", "log-security-refused");
    const problem = await b.text("main .problem");
    expect(/security events/i.test(problem), `asking for Security events should be refused, page says: ${problem}`);
    expectEqual((await b.events()).length, 0, "Security events listed for an Operator");

    // The form's CSRF token is valid for this session, the Origin is
    // ours: only the permission can refuse this.
    const csrf = await b.page.locator('form[action="/logout"] input[name="csrf"]').inputValue();
    const forged = await b.page.request.post(base + "/security/allowlist", {
      form: { csrf, enabled: "on", entries: "192.0.2.0 255.255.255.0", force: "on" },
      headers: { Origin: base },
      maxRedirects: 0,
    });
    expectEqual(forged.status(), 403, "status of an Operator's Allowlist POST");
    return { visited, sections, log: rows.map((r) => r.seq) };
  },

  // The Administrator changes port 1's baud rate on Serial Parameters.
  async serial(b) {
    await b.login(args.name, args.password);
    await b.visit("/serial/parameters", "parameters");
    const card = `#port-${args.port}`;
    expectEqual(await b.page.inputValue(`${card} input[name="baud"]`), String(args.from_baud), "baud rate shown before the change");
    expect(/\/dev\/pts\//.test(await b.text(`${card} h2`)), `the card names the pty device: ${await b.text(`${card} h2`)}`);
    await b.page.fill(`${card} input[name="baud"]`, String(args.to_baud));
    await b.submit(`${card} form`, "parameters-saved", { status: 200, landsOn: `/serial/parameters/${args.port}` });
    const notice = await b.text("main .notice");
    expect(notice.includes(`Port ${args.port} saved`), `notice after saving: ${notice}`);
    expectEqual(await b.count("main .problem"), 0, "problems after a valid change");
    expectEqual(await b.page.inputValue(`${card} input[name="baud"]`), String(args.to_baud), "baud rate shown after the change");
    // A reload shows the stored value, not the form's echo.
    await b.visit("/serial/parameters", "parameters-reloaded");
    expectEqual(await b.page.inputValue(`${card} input[name="baud"]`), String(args.to_baud), "baud rate after a reload");
    return {};
  },

  // Allowlist changes that would shut out the Administrator's own address
  // are refused and change nothing; one that keeps it in is saved.
  async allowlist(b) {
    await b.login(args.name, args.password);
    await b.visit("/security/allowlist", "page");
    expect((await b.text("main")).includes("(127.0.0.1)"), "the page names the visitor's address 127.0.0.1");
    expect(!(await b.page.isChecked('input[name="enabled"]')), "allowlist enabled at the start");
    expectEqual(await b.page.inputValue('textarea[name="entries"]'), "", "entries at the start");

    const attempt = async (entries, name, status) => {
      await b.page.check('input[name="enabled"]');
      await b.page.fill('textarea[name="entries"]', entries);
      return b.submit('form[action="/security/allowlist"]', name, { status, landsOn: "/security/allowlist" });
    };
    const unchanged = async (name) => {
      await b.visit("/security/allowlist", name);
      expect(!(await b.page.isChecked('input[name="enabled"]')), `allowlist enabled after a refused change (${name})`);
      expectEqual(await b.page.inputValue('textarea[name="entries"]'), "", `entries after a refused change (${name})`);
    };

    const refusals = [];
    // Another network only.
    await attempt("192.0.2.0 255.255.255.0", "refused-other-network", 422);
    refusals.push(await b.text("main .problem"));
    expectEqual(await b.count("main .notice"), 0, "a success notice next to a refusal");
    expectEqual(await b.page.inputValue('textarea[name="entries"]'), "192.0.2.0 255.255.255.0", "the refused entries are shown for correction");
    await unchanged("after-other-network");
    // Our address, but for serial data only: the console itself would go.
    await attempt("127.0.0.1 255.255.255.255 serial\n192.0.2.0 255.255.255.0", "refused-serial-only", 422);
    refusals.push(await b.text("main .problem"));
    await unchanged("after-serial-only");
    for (const r of refusals) {
      expect(/lock out your own address 127\.0\.0\.1/.test(r), `the refusal should name the own address: ${r}`);
    }

    // Keeping our address in is saved.
    const kept = "127.0.0.0 255.0.0.0 management\n192.0.2.0 255.255.255.0 serial";
    await attempt(kept, "saved", 200);
    expect((await b.text("main .notice")).includes("Allowlist saved"), `notice after saving: ${await b.text("main .notice")}`);
    await b.visit("/security/allowlist", "reloaded");
    expect(await b.page.isChecked('input[name="enabled"]'), "allowlist not enabled after saving");
    expectEqual(await b.page.inputValue('textarea[name="entries"]'), kept, "entries after saving");
    return { refusals };
  },

  // The System Log's filters: category, severity, text, from/to; each
  // table holds only matching rows, and bad input is named.
  async log(b) {
    // A failed login first: a Security warning with a known message.
    await b.login(args.name, "not-the-password", { status: 401, landsOn: "/login", shot: "login-failed" });
    await b.page.fill('input[name="password"]', args.password);
    await b.submit('form[action="/login"]', "dashboard", { status: 200, landsOn: "/dashboard" });

    await b.visit("/log", "all");
    const all = await b.events();
    expect(all.length > 0, "the log view is empty");
    const total = async () => Number(/(\d+) event\(s\)/.exec(await b.text("main"))?.[1]);
    expectEqual(await total(), all.length, "event count line for the unfiltered view");
    for (let i = 1; i < all.length; i++) {
      expect(all[i - 1].seq > all[i].seq, `the log view is not newest first at row ${i}`);
    }
    const categories = new Set(all.map((r) => r.category));
    expect(categories.has("security") && categories.size > 1, `the unfiltered view should hold several categories: ${[...categories]}`);

    // Fill the filter form (everything not given: cleared) and submit it.
    const filter = async (name, f) => {
      await b.page.selectOption('select[name="category"]', f.category ?? "");
      await b.page.selectOption('select[name="severity"]', f.severity ?? "");
      await b.page.fill('input[name="text"]', f.text ?? "");
      await b.page.fill('input[name="from"]', f.from ?? "");
      await b.page.fill('input[name="to"]', f.to ?? "");
      await b.submit("form.filters", name, { status: 200, landsOn: "/log" });
      const rows = await b.events();
      expectEqual(await total(), rows.length, `event count line for ${name}`);
      return rows;
    };
    const views = {};

    views.security = await filter("category-security", { category: "security" });
    expect(views.security.length > 0, "no Security event");
    expect(views.security.every((r) => r.category === "security"), "a non-Security row in the Security view");
    expect(views.security.length < all.length, "the category filter filtered nothing");
    expectEqual(await b.page.inputValue('select[name="category"]'), "security", "category kept in the form");

    views.warning = await filter("severity-warning", { severity: "warning" });
    expect(views.warning.some((r) => r.event === "login-failed"), "the failed login is not among the warnings");
    expect(views.warning.every((r) => r.severity === "warning"), "a non-warning row in the warning view");

    const text = "wrong account";
    views.text = await filter("text", { text: text.toUpperCase() });
    expect(views.text.length > 0, `nothing matches ${text}`);
    expect(
      views.text.every((r) => [r.message, r.user, r.source].some((v) => v.toLowerCase().includes(text))),
      `a row without "${text}" in the text view`,
    );

    const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
    views.past = await filter("time-past", { from: "2000-01-01T00:00:00Z", to: "2000-12-31T23:59:59Z" });
    expectEqual(views.past.length, 0, "events in the year 2000");
    const now = Date.now();
    views.window = await filter("time-window", { from: iso(now - 3_600_000), to: iso(now + 3_600_000) });
    expect(views.window.length >= all.length, `the last hour holds ${views.window.length} of ${all.length} events`);

    views.combined = await filter("combined", { category: "security", severity: "warning", text: args.name });
    expect(views.combined.length > 0, "no Security warning for the account");
    expect(
      views.combined.every((r) => r.category === "security" && r.severity === "warning" && (r.user + r.message + r.source).toLowerCase().includes(args.name)),
      "a row not matching all three filters",
    );

    await filter("bad-time", { from: "yesterday" });
    const problem = await b.text("main .problem");
    expect(problem.includes("yesterday"), `a bad time should be named: ${problem}`);

    return {
      all: all.map((r) => r.seq),
      security: views.security.map((r) => r.seq),
      warning: views.warning.map((r) => r.seq),
      text: views.text.map((r) => r.seq),
      combined: views.combined.map((r) => r.seq),
    };
  },

  // The Administrator's settings forms end to end: a stricter password
  // policy (and a bad value named), a custom group with two permissions,
  // an account refused for a short password then created and moved into
  // the group, the last Administrator's deletion refused, a longer
  // lockout, port-connected events no longer recorded, the configuration
  // exported and imported back (a bad import first). Then the new account
  // logs in, sees its group's menu only, and changes its own password
  // from the header's link. The other new pages are visited and shot.
  async forms(b) {
    await b.login(args.name, args.password);
    const notice = () => b.text("main .notice");
    const problem = () => b.text("main .problem");
    // Skip the browser's own checks of min/max, so that the device's
    // answer to a bad value can be seen.
    const noValidate = (form) => b.page.$eval(form, (f) => { f.noValidate = true; });

    // Account Management > Password Policy.
    const policy = 'form[action="/accounts/password-policy"]';
    await b.visit("/accounts/password-policy", "policy");
    expectEqual(await b.page.inputValue(`${policy} input[name="min_length"]`), "8", "minimum length at the start");
    await noValidate(policy);
    await b.page.fill(`${policy} input[name="min_length"]`, "200");
    await b.submit(policy, "policy-refused", { status: 422, landsOn: "/accounts/password-policy" });
    expect((await problem()).includes("security.password_policy.min_length"), `the bad minimum length should be named: ${await problem()}`);
    await b.page.fill(`${policy} input[name="min_length"]`, String(args.min_length));
    await b.page.check(`${policy} input[name="require_digit"]`);
    await b.submit(policy, "policy-saved", { status: 200, landsOn: "/accounts/password-policy" });
    expect((await notice()).startsWith("Saved"), `notice after saving the policy: ${await notice()}`);
    expectEqual(await b.page.inputValue(`${policy} input[name="min_length"]`), String(args.min_length), "minimum length after saving");
    expect(await b.page.isChecked(`${policy} input[name="require_digit"]`), "digit requirement after saving");

    // Account Management > Groups: a custom group with two permissions.
    await b.visit("/accounts/groups", "groups");
    expectEqual(await b.count("#groups tbody tr"), 2, "groups at the start (the built-in two)");
    expectEqual(await b.count("section.group"), 0, "editable groups at the start");
    await b.page.fill('#create-group input[name="name"]', args.group);
    for (const p of args.group_permissions) {
      await b.page.check(`#create-group input[name="permission"][value="${p}"]`);
    }
    await b.submit("#create-group form", "group-created", { status: 200, landsOn: "/accounts/groups" });
    expect((await notice()).includes(`Group '${args.group}' saved with ${args.group_permissions.length}`), `notice after creating the group: ${await notice()}`);
    const row = await b.text(`#groups tr[data-group="${args.group}"]`);
    for (const p of args.group_permissions) expect(row.includes(p), `the group's row lacks ${p}: ${row}`);
    const ticked = await b.page.$$eval(`#group-${args.group} input[name="permission"]:checked`, (es) => es.map((e) => e.value));
    expectEqual(ticked.join(","), args.group_permissions.join(","), "the new group's ticked permissions");

    // Account Management > Accounts: too short a password, then a good one.
    await b.visit("/accounts", "accounts");
    const create = async (password, name, status) => {
      await b.page.fill('#create input[name="name"]', args.op_name);
      await b.page.selectOption('#create select[name="group"]', "Operator");
      await b.page.fill('#create input[name="password"]', password);
      await b.page.fill('#create input[name="password2"]', password);
      return b.submit("#create form", name, { status, landsOn: "/accounts" });
    };
    await create(args.short_password, "account-refused", 422);
    expect((await problem()).includes(`shorter than ${args.min_length} characters`), `the short password should be refused by the policy: ${await problem()}`);
    expectEqual(await b.page.inputValue('#create input[name="name"]'), args.op_name, "account name kept after a refusal");
    expectEqual(await b.count(`#accounts tr[data-account="${args.op_name}"]`), 0, "the refused account is listed");
    await create(args.op_password, "account-created", 200);
    expectEqual(await notice(), `Account '${args.op_name}' created in group Operator.`, "notice after creating the account");
    expect((await b.text(`#accounts tr[data-account="${args.op_name}"]`)).includes("Operator"), "the new account's row");

    const account = `#account-${args.op_name}`;
    await b.page.click(`${account} summary`);
    await b.page.selectOption(`${account} form.account-group select[name="group"]`, args.group);
    await b.submit(`${account} form.account-group`, "account-moved", { status: 200, landsOn: "/accounts/edit" });
    expect((await notice()).includes(`moved to ${args.group}`), `notice after moving the account: ${await notice()}`);
    expect((await b.text(`#accounts tr[data-account="${args.op_name}"]`)).includes(args.group), "the account's row after the move");

    const admin = `#account-${args.name}`;
    await b.page.click(`${admin} summary`);
    await b.page.check(`${admin} form.account-delete input[name="confirm"]`);
    await b.submit(`${admin} form.account-delete`, "last-admin-refused", { status: 422, landsOn: "/accounts/edit" });
    expect(/last active Administrator/.test(await problem()), `deleting the last Administrator should be refused: ${await problem()}`);
    expectEqual(await b.count(`#accounts tr[data-account="${args.name}"]`), 1, "the Administrator after a refused delete");

    // Security > Login Settings: the lockout time, in minutes.
    const lockout = 'form[action="/security/login/lockout"]';
    await b.visit("/security/login", "login-settings");
    expectEqual(await b.text("#message-count"), `(${args.login_message.length}/256)`, "the login message's counter");
    expectEqual(await b.page.inputValue(`${lockout} input[name="lockout_min"]`), String(args.lockout_min_before), "lockout time at the start (minutes)");
    await b.page.fill(`${lockout} input[name="lockout_min"]`, String(args.lockout_min));
    await b.submit(lockout, "login-settings-saved", { status: 200, landsOn: "/security/login/lockout" });
    expect((await notice()).startsWith("Saved"), `notice after saving the lockout: ${await notice()}`);
    expectEqual(await b.page.inputValue(`${lockout} input[name="lockout_min"]`), String(args.lockout_min), "lockout time after saving");

    // Diagnostics > System Log > Log Settings: stop recording an event.
    await b.visit("/log/settings", "log-settings");
    const box = `#record-${args.unrecorded}`;
    expect(await b.page.isChecked(box), `${args.unrecorded} not recorded at the start`);
    expect((await b.page.isDisabled("#record-events-dropped")) && (await b.page.isChecked("#record-events-dropped")), "events-dropped should be shown recorded and locked");
    await b.page.uncheck(box);
    await b.submit("#log-settings", "log-settings-saved", { status: 200, landsOn: "/log/settings" });
    expect((await notice()).startsWith("Saved"), `notice after saving the log settings: ${await notice()}`);
    expect(!(await b.page.isChecked(box)), `${args.unrecorded} still recorded after saving`);

    // Maintenance > Configuration: export, then import (a bad one first).
    await b.visit("/maintenance/config", "config");
    const href = await b.page.getAttribute("#export a#download", "href");
    const exported = await b.page.request.get(base + href);
    expectEqual(exported.status(), 200, "status of the configuration download");
    const toml = await exported.text();
    for (const want of [`min_length = ${args.min_length}`, `lockout_s = ${args.lockout_min * 60}`, `"${args.unrecorded}"`]) {
      expect(toml.includes(want), `the export lacks ${want}:\n${toml}`);
    }
    expect(toml.includes("capacity = 10000"), "the export's log capacity");
    const form = 'form[action="/maintenance/config"]';
    await b.page.fill(`${form} textarea[name="toml"]`, toml.replace("capacity = 10000", "capacity = 5"));
    await b.submit(form, "import-refused", { status: 422, landsOn: "/maintenance/config" });
    const fields = await b.page.$$eval("main .problem li", (ls) => ls.map((l) => l.textContent.trim()));
    expect(fields.some((f) => f.startsWith("event_log.capacity")), `the bad capacity should be named: ${fields.join(" | ")}`);
    expect((await b.page.inputValue(`${form} textarea[name="toml"]`)).includes("capacity = 5"), "the refused document is kept for correction");
    await b.page.fill(`${form} textarea[name="toml"]`, toml.replace("capacity = 10000", `capacity = ${args.capacity}`));
    await b.submit(form, "imported", { status: 200, landsOn: "/maintenance/config" });
    expect(/^Imported as revision \d+: event log settings\.$/.test(await notice()), `notice after the import: ${await notice()}`);

    // The other new pages open with the stored values.
    await b.visit("/security/services", "services");
    expectEqual(await b.page.inputValue('input[name="bind"]'), "127.0.0.1", "the console's address on Services");
    expectEqual(await b.page.inputValue('input[name="https_port"]'), "0", "the HTTPS port on Services");
    await b.visit("/security/certificate", "certificate");
    expect((await b.text("#current")).includes("Self-signed"), "the certificate is shown");
    expectEqual(await b.page.getAttribute("#download", "href"), "/api/v1/certificate/export", "the certificate's download link");
    await b.visit("/security/allowlist", "allowlist-dos");
    expectEqual(await b.page.inputValue('#dos input[name="per_source_connections"]'), "128", "DoS Defense's per-source limit");
    await b.visit("/serial/modes", "modes");
    expectEqual(await b.page.inputValue('#mode-1 select[name="mode"]'), "tcp-server", "port 1's mode");
    expect(await b.page.isHidden('#mode-1 textarea[name="udp_destinations"]'), "a UDP field shown for a TCP Server");

    // The new account: its group's menu only, and its own password.
    await b.submit('form[action="/logout"]', "logged-out", { status: 200, landsOn: "/login" });
    await b.login(args.op_name, args.op_password, { shot: "op-dashboard" });
    const sections = (await b.menu()).map((s) => s.section);
    expectEqual(sections.join(", "), args.op_sections.join(", "), `${args.op_name}'s menu sections`);
    const navigation = b.page.waitForNavigation({ waitUntil: "load" });
    await b.page.click("#change-password");
    await b.arrived(await navigation, "the header's Change password link", "own-password", 200, "/account/password");
    const own = 'form[action="/account/password"]';
    await b.page.fill(`${own} input[name="old_password"]`, args.op_password);
    await b.page.fill(`${own} input[name="new_password"]`, args.op_new_password);
    await b.page.fill(`${own} input[name="new_password2"]`, args.op_new_password);
    await b.submit(own, "own-password-changed", { status: 200, landsOn: "/account/password" });
    expect((await notice()).includes("Your password was changed"), `notice after changing one's password: ${await notice()}`);
    return { sections };
  },

  // Security > Services: the Administrator moves the console to another
  // HTTPS port. The page names the new address; the browser follows it
  // and the console answers there, where the Administrator logs out and
  // in again.
  async services(b) {
    await b.login(args.name, args.password);
    // The web section's form (Real COM discovery has one of its own).
    const form = "#web form";
    await b.visit("/security/services", "page");
    expectEqual(await b.page.inputValue(`${form} input[name="https_port"]`), "0", "the HTTPS port at the start");
    expectEqual(await b.count("#moved"), 0, "a move announced before any change");
    await b.page.fill(`${form} input[name="https_port"]`, String(args.https_port));
    await b.submit(form, "saved", { status: 200, landsOn: "/security/services" });
    const notice = await b.text("main .notice");
    expect(/^Saved \(revision \d+\)\. The web server restarts/.test(notice), `notice after saving: ${notice}`);
    const moved = await b.text("#moved");
    expect(moved.includes("Continue at the new address"), `the page should send the browser to the new address: ${moved}`);
    const url = `https://127.0.0.1:${args.https_port}/security/services`;
    expectEqual(await b.page.getAttribute("#new-url", "href"), url, "the new address the page names");

    b.base = new URL(url).origin;
    const response = await b.follow("#new-url", 10_000);
    // The browser sends its session cookie to the new port: cookies are
    // scoped to the host, not the port, and the session lives in the
    // device's store, not in the web server that was restarted.
    await b.arrived(response, `following ${url}`, "new-address", 200, "/security/services");
    expectEqual(new URL(b.page.url()).origin, b.base, "the origin after following the link");
    const who = await b.text("header .who");
    expect(who.includes(args.name), `the header at the new address should name ${args.name}, says: ${who}`);
    expectEqual(await b.page.inputValue(`${form} input[name="https_port"]`), String(args.https_port), "the HTTPS port at the new address");

    // A fresh login works at the new address (its POST carries the new
    // Origin).
    await b.submit('form[action="/logout"]', "logged-out", { status: 200, landsOn: "/login" });
    await b.visit("/security/services", "logged-out-services", { landsOn: "/login" });
    await b.login(args.name, args.password, { shot: "new-dashboard" });
    await b.visit("/security/services", "new-page");
    expectEqual(await b.page.inputValue(`${form} input[name="https_port"]`), String(args.https_port), "the HTTPS port after logging in again");
    return { url, origin: b.base };
  },

  // Security > Certificate: regenerate the self-signed certificate. The
  // page shows the new fingerprint; the Rust side compares it with what
  // the server presents.
  async "certificate-regenerate"(b) {
    await b.login(args.name, args.password);
    await b.visit("/security/certificate", "page");
    const fingerprint = () => b.row("#current", "SHA-256 fingerprint");
    const before = await fingerprint();
    expectEqual(await b.row("#current", "Self-signed"), "yes", "the certificate at the start is self-signed");
    const form = 'form[action="/security/certificate/regenerate"]';
    // The page asks for no confirmation; should it ever, say yes.
    const confirm = `${form} input[name="confirm"]`;
    if ((await b.count(confirm)) > 0) await b.page.check(confirm);
    b.page.once("dialog", (d) => {
      log(`regenerate asks: ${d.message()}`);
      d.accept();
    });
    await b.submit(form, "regenerated", { status: 200, landsOn: "/security/certificate/regenerate" });
    const after = await fingerprint();
    expect(after !== before, `the fingerprint did not change: ${after}`);
    const notice = await b.text("main .notice");
    expect(notice.includes(`A new self-signed certificate is in use (SHA-256 ${after})`), `notice after regenerating: ${notice}`);
    expectEqual(await b.row("#current", "Self-signed"), "yes", "the regenerated certificate is self-signed");
    await b.visit("/security/certificate", "reloaded");
    expectEqual(await fingerprint(), after, "the fingerprint after a reload");
    return { before, after };
  },

  // Security > Certificate: an RSA-1024 certificate is refused, naming
  // why, and changes nothing; an ECDSA P-384 certificate and key are
  // imported and shown.
  async "certificate-import"(b) {
    await b.login(args.name, args.password);
    await b.visit("/security/certificate", "page");
    const fingerprint = () => b.row("#current", "SHA-256 fingerprint");
    const before = await fingerprint();
    const form = 'form[action="/security/certificate/import"]';
    const fill = async (certificate, key) => {
      await b.page.fill(`${form} textarea[name="certificate"]`, certificate);
      await b.page.fill(`${form} textarea[name="key"]`, key);
    };

    await fill(args.weak_certificate, args.weak_key);
    await b.submit(form, "refused-rsa-1024", { status: 422, landsOn: "/security/certificate/import" });
    const refused = await b.text("main .problem");
    expect(/RSA-1024 key is too weak/.test(refused), `the refusal should name the weak RSA-1024 key: ${refused}`);
    expectEqual(await b.count("main .notice"), 0, "a success notice next to a refusal");
    expectEqual(await fingerprint(), before, "the certificate in use after a refused import");
    expectEqual((await b.page.inputValue(`${form} textarea[name="certificate"]`)).trim(), args.weak_certificate.trim(), "the refused certificate kept for correction");
    expectEqual(await b.page.inputValue(`${form} textarea[name="key"]`), "", "the refused private key sent back to the browser");

    await fill(args.certificate, args.key);
    await b.submit(form, "imported", { status: 200, landsOn: "/security/certificate/import" });
    const notice = await b.text("main .notice");
    expect(notice.startsWith("Certificate imported:") && notice.includes(args.common_name), `notice after importing: ${notice}`);
    expectEqual(await b.count("main .problem"), 0, "problems after a valid import");
    expectEqual(await fingerprint(), args.fingerprint, "the fingerprint shown after importing");
    expectEqual(await b.row("#current", "Key"), "ECDSA P-384", "the key shown after importing");
    expect((await b.row("#current", "Subject")).includes(args.common_name), "the subject shown after importing");
    await b.visit("/security/certificate", "reloaded");
    expectEqual(await fingerprint(), args.fingerprint, "the fingerprint after a reload");
    return { before, refused, after: await fingerprint() };
  },

  // Serial Port Settings > Operation Modes: a local port out of range and
  // zero max connections are refused, naming the field, and change
  // nothing; then port 1 becomes an RFC 2217 server on a given port.
  async modes(b) {
    await b.login(args.name, args.password);
    const form = `#mode-${args.port} form`;
    const field = (name) => `${form} [name="${name}"]`;
    const problems = () => b.page.$$eval("main .problem li", (ls) => ls.map((l) => l.textContent.trim()));
    const choose = async (values) => {
      // Skip the browser's own min/max checks, so that the device's
      // answer to a bad value can be seen.
      await b.page.$eval(form, (f) => {
        f.noValidate = true;
      });
      await b.page.selectOption(field("mode"), "rfc2217");
      for (const [name, value] of Object.entries(values)) await b.page.fill(field(name), String(value));
    };
    const unchanged = async (name) => {
      await b.visit("/serial/modes", name);
      expectEqual(await b.page.inputValue(field("mode")), "tcp-server", `port ${args.port}'s mode after a refused change (${name})`);
      expectEqual(await b.page.inputValue(field("local_port")), "0", `port ${args.port}'s local port after a refused change (${name})`);
    };

    await b.visit("/serial/modes", "page");
    expectEqual(await b.page.inputValue(field("mode")), "tcp-server", `port ${args.port}'s mode at the start`);
    expect(await b.page.isVisible(field("inactivity_ms")), "a TCP Server's inactivity field is hidden");

    const refusals = [];
    for (const [bad, values] of [
      ["local_port", { local_port: 70_000, max_connections: 1 }],
      ["max_connections", { local_port: args.local_port, max_connections: 0 }],
    ]) {
      await choose(values);
      expect(await b.page.isHidden(field("inactivity_ms")), "a TCP Server's inactivity field shown for RFC 2217");
      await b.submit(form, `refused-${bad}`, { status: 422, landsOn: `/serial/modes/${args.port}` });
      const named = await problems();
      expect(named.some((f) => f.includes(`mode.${bad}`)), `the bad ${bad} should be named: ${named.join(" | ")}`);
      expectEqual(await b.count("main .notice"), 0, "a success notice next to a refusal");
      expectEqual(await b.page.inputValue(field("mode")), "rfc2217", "the refused mode kept for correction");
      expectEqual(await b.page.inputValue(field(bad)), String(values[bad]), `the refused ${bad} kept for correction`);
      refusals.push(...named);
      await unchanged(`after-refused-${bad}`);
    }

    await choose({ local_port: args.local_port, max_connections: 1 });
    await b.submit(form, "saved", { status: 200, landsOn: `/serial/modes/${args.port}` });
    const notice = await b.text("main .notice");
    expect(notice.startsWith("Saved") && notice.includes(`Port ${args.port} restarted in its new mode`), `notice after saving: ${notice}`);
    expectEqual(await b.count("main .problem"), 0, "problems after a valid change");
    await b.visit("/serial/modes", "reloaded");
    expectEqual(await b.page.inputValue(field("mode")), "rfc2217", "the mode after a reload");
    expectEqual(await b.page.inputValue(field("local_port")), String(args.local_port), "the local port after a reload");
    expectEqual(await b.page.inputValue(field("max_connections")), "1", "max connections after a reload");
    return { refusals };
  },

  // Security > Services, then Serial Port Settings > Operation Modes:
  // Real COM discovery moves to a port the system picks; port N becomes a
  // Real COM port on any free data and command ports (0), RTS going low
  // when the connection goes down. The Rust side then connects as Moxa's
  // driver would.
  async "real-com"(b) {
    await b.login(args.name, args.password);
    const discovery = "#realcom-discovery form";
    const notice = () => b.text("main .notice");
    await b.visit("/security/services", "services");
    expectEqual(await b.text("#realcom-discovery h2"), "Real COM discovery (UDP 4800)", "the discovery section's title");
    expect(await b.page.isChecked(`${discovery} [name="discovery_enabled"]`), "Real COM discovery is off at the start");
    expectEqual(await b.page.inputValue(`${discovery} [name="discovery_port"]`), "4800", "the discovery port at the start");
    await b.page.fill(`${discovery} [name="discovery_port"]`, "0");
    await b.submit(discovery, "discovery-saved", { status: 200, landsOn: "/security/services" });
    expect((await notice()).startsWith("Saved") && (await notice()).includes("Real COM discovery"), `notice after saving discovery: ${await notice()}`);
    expectEqual(await b.count("#moved"), 0, "the console announced a move for a discovery change");
    expectEqual(await b.page.inputValue(`${discovery} [name="discovery_port"]`), "0", "the discovery port after saving");
    expectEqual(await b.page.inputValue('#web [name="https_port"]'), "0", "the web section after a discovery change");

    const form = `#mode-${args.port} form`;
    const field = (name) => `${form} [name="${name}"]`;
    const realCom = ["data_port", "command_port", "max_connections", "alive_check_min", "connection_down_rts", "connection_down_dtr", "allow_driver_control"];
    const notRealCom = ["local_port", "inactivity_ms", "server_command_port", "tcp_destinations", "udp_destinations"];
    await b.visit("/serial/modes", "modes");
    expectEqual(await b.page.inputValue(field("mode")), "tcp-server", `port ${args.port}'s mode at the start`);
    expect(await b.page.isHidden(field("data_port")), "Real COM's data port shown for a TCP Server");
    expect(await b.page.isVisible(field("server_command_port")), "a TCP Server's command port is hidden");
    const modes = await b.page.$$eval(`${field("mode")} option`, (os) => os.map((o) => o.value));
    expectEqual(modes.slice(0, 2).join(","), "disabled,real-com", "Real COM's place in the mode list");

    await b.page.selectOption(field("mode"), "real-com");
    for (const name of realCom) expect(await b.page.isVisible(field(name)), `Real COM's ${name} is hidden`);
    for (const name of notRealCom) expect(await b.page.isHidden(field(name)), `${name} shown for Real COM`);
    expectEqual(await b.page.inputValue(field("data_port")), String(args.default_data_port), "the NPort's default data port");
    expectEqual(await b.page.inputValue(field("command_port")), String(args.default_command_port), "the NPort's default command port");
    const note = await b.text(`${form} label:has([name="allow_driver_control"])`);
    expect(note.includes("more than one connection"), `driver control's note: ${note}`);
    await b.shot("real-com-chosen");
    await b.page.fill(field("data_port"), "0");
    await b.page.fill(field("command_port"), "0");
    await b.page.selectOption(field("connection_down_rts"), "goes-low");
    await b.submit(form, "saved", { status: 200, landsOn: `/serial/modes/${args.port}` });
    expect((await notice()).startsWith("Saved") && (await notice()).includes(`Port ${args.port} restarted in its new mode`), `notice after saving: ${await notice()}`);
    expectEqual(await b.count("main .problem"), 0, "problems after a valid change");

    await b.visit("/serial/modes", "reloaded");
    expectEqual(await b.page.inputValue(field("mode")), "real-com", "the mode after a reload");
    for (const [name, want] of [["data_port", "0"], ["command_port", "0"], ["max_connections", "1"], ["connection_down_rts", "goes-low"], ["connection_down_dtr", "always-high"]]) {
      expectEqual(await b.page.inputValue(field(name)), want, `${name} after a reload`);
    }
    expect(!(await b.page.isChecked(field("allow_driver_control"))), "driver control after a reload");
    for (const name of notRealCom) expect(await b.page.isHidden(field(name)), `${name} shown for Real COM after a reload`);
    return { modes };
  },

  // An Operator on Operation Modes: Reverse Telnet shows the console's
  // fields and the clear-text warning, Reverse SSH the same fields
  // without it; port N becomes a Reverse SSH port on a chosen port for
  // Administrators and Operators. Then the header's "SSH keys" link: the
  // Operator adds its own public key and sees it listed.
  async "reverse-ssh"(b) {
    await b.login(args.name, args.password);
    const form = `#mode-${args.port} form`;
    const field = (name) => `${form} [name="${name}"]`;
    const groups = `${form} fieldset.console-groups`;
    const warning = `${form} p.warning`;
    const console_ = ["local_port", "max_connections", "inactivity_min", "map_crlf"];
    const notConsole = ["alive_check_min", "inactivity_ms", "data_port", "server_command_port"];
    await b.visit("/serial/modes", "modes");
    expect(await b.page.isHidden(groups), "the console groups shown for a TCP Server");
    expect(await b.page.isHidden(warning), "the Telnet warning shown for a TCP Server");
    const modes = await b.page.$$eval(`${field("mode")} option`, (os) => os.map((o) => o.value));
    expect(modes.includes("reverse-telnet") && modes.includes("reverse-ssh"), `the mode list: ${modes.join(", ")}`);

    await b.page.selectOption(field("mode"), "reverse-telnet");
    for (const name of console_) expect(await b.page.isVisible(field(name)), `Reverse Telnet's ${name} is hidden`);
    for (const name of notConsole) expect(await b.page.isHidden(field(name)), `${name} shown for Reverse Telnet`);
    expect(await b.page.isVisible(groups), "Reverse Telnet's groups are hidden");
    expectEqual(await b.text(warning), "Telnet sends user names and passwords in clear text; prefer Reverse SSH.", "the Telnet warning");
    await b.shot("reverse-telnet-chosen");

    await b.page.selectOption(field("mode"), "reverse-ssh");
    for (const name of console_) expect(await b.page.isVisible(field(name)), `Reverse SSH's ${name} is hidden`);
    expect(await b.page.isHidden(warning), "the Telnet warning shown for Reverse SSH");
    const offered = await b.page.$$eval(`${groups} input[name="groups"]`, (is) => is.map((i) => `${i.value}${i.checked ? "+" : ""}`));
    expectEqual(offered.join(","), "Administrator+,Operator", "the groups offered to an Operator (Administrators by default)");
    await b.page.fill(field("local_port"), String(args.local_port));
    await b.page.fill(field("inactivity_min"), "5");
    await b.page.selectOption(field("map_crlf"), "cr");
    await b.page.check(`${groups} input[value="Operator"]`);
    await b.submit(form, "saved", { status: 200, landsOn: `/serial/modes/${args.port}` });
    const notice = await b.text("main .notice");
    expect(notice.startsWith("Saved") && notice.includes(`Port ${args.port} restarted in its new mode`), `notice after saving: ${notice}`);
    await b.visit("/serial/modes", "reloaded");
    expectEqual(await b.page.inputValue(field("mode")), "reverse-ssh", "the mode after a reload");
    expectEqual(await b.page.inputValue(field("map_crlf")), "cr", "CR-LF mapping after a reload");
    expect(await b.page.isChecked(`${groups} input[value="Operator"]`), "Operator unticked after a reload");

    const navigation = b.page.waitForNavigation({ waitUntil: "load" });
    await b.page.click("#my-ssh-keys");
    await b.arrived(await navigation, "the header's SSH keys link", "ssh-keys", 200, "/account/ssh-keys");
    expectEqual(await b.text("main h1"), "My SSH keys", "heading of the SSH keys page");
    expectEqual(await b.count("#no-keys"), 1, "an empty list at the start");
    await b.page.fill('#add-key textarea[name="key"]', args.key);
    await b.submit("#add-key", "ssh-key-added", { status: 200, landsOn: "/account/ssh-keys" });
    const row = await b.text("#ssh-keys tbody tr");
    expect(row.includes(args.fingerprint) && row.includes("ssh-ed25519"), `the key's row: ${row}`);
    return { offered, row };
  },
};

// ---- main ----------------------------------------------------------------

const run = scenarios[scenario];
if (!run) {
  console.error(`console.mjs: no scenario ${scenario}; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
mkdirSync(args.shots, { recursive: true });
for (const f of readdirSync(args.shots)) {
  if (f.startsWith(`${scenario}-`) && f.endsWith(".png")) rmSync(join(args.shots, f), { force: true });
}
let b;
const watchdog = setTimeout(() => {
  console.error(`console.mjs: scenario ${scenario} did not finish within ${SCENARIO_TIMEOUT_MS} ms`);
  // playwright ends the Chromium it started when this process exits.
  if (b) rmSync(b.profile, { recursive: true, force: true });
  process.exit(1);
}, SCENARIO_TIMEOUT_MS);

let status = 0;
try {
  b = await Browser.open(args.shots);
  log(`${scenario}: Chromium ${b.context.browser()?.version() ?? ""} on ${base}`);
  const result = await run(b);
  expect(b.problems.length === 0, b.problems.join("\n"));
  result.screenshots = b.saved;
  console.log(JSON.stringify(result));
} catch (e) {
  status = 1;
  const where = b ? ` (at ${b.page.url()})` : "";
  if (e instanceof Expectation) {
    console.error(`console.mjs: ${scenario}: FAILED: ${e.message}${where}`);
  } else {
    console.error(`console.mjs: ${scenario}: ERROR${where}: ${e.stack ?? e}`);
  }
  if (b) {
    await b.shot("failure").catch(() => {});
  }
} finally {
  if (b) await b.close().catch((e) => console.error(`console.mjs: closing Chromium: ${e.message}`));
  clearTimeout(watchdog);
}
process.exit(status);
