// popdesk's web UI in headless Chromium (issue #6, "What must show").
//
// Run by crates/popdesk/tests/browser.rs, which starts Dovecot with three customer
// mails, `popdesk serve` with a first admin, and a second, never set-up `popdesk serve`
// for the first-run page, and passes their addresses in the environment.
//
// The main flow is one story in steps: sign in, add a mailbox from a preset, test the
// connection, fetch, work the ticket, break a second mailbox, look at an XSS probe,
// visit the admin pages, sign out. A step that fails marks the rest of the story as
// not run (they need its outcome), screenshots the page as FAILED-<step>.png and
// saves its HTML beside it. Every page visited is checked for labelled form fields,
// its title and its security headers.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium, request } from 'playwright-core';

import {
  pollUntil,
  pop3Uidls,
  requireEnv,
  screenshot,
  securityHeaderProblems,
  unlabelledFields,
  withTimeout,
} from './lib.mjs';

const env = requireEnv([
  'BASE_URL',
  'SETUP_BASE_URL',
  'SETUP_CODE',
  'ADMIN_EMAIL',
  'ADMIN_PASSWORD',
  'DOVECOT_HOST',
  'DOVECOT_POP3S_PORT',
  'CA_FILE',
  'MAILBOX_USER',
  'MAILBOX_PASSWORD',
  'MAIL_COUNT',
  'ATTACHMENT_NAME',
  'ATTACHMENT_CONTENT',
  'ARTIFACTS',
  'SELF_SIGNED_PORT',
  'SELF_SIGNED_FINGERPRINT',
  'SMTP_HOST',
  'SMTP_PORT',
  'SEND_ADDRESS',
  'REPLY_ATTACHMENT',
  'NOTICE_MAILBOX',
  'OAUTH_MAILBOX',
  'OAUTH_USER',
  'OAUTH_ISSUER',
]);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BASE = new URL(env.BASE_URL);
const SETUP_BASE = new URL(env.SETUP_BASE_URL);
const ARTIFACTS = env.ARTIFACTS;
fs.mkdirSync(ARTIFACTS, { recursive: true });

// Nothing hangs: whatever happens, this process ends before the Rust side's deadline.
const overall = setTimeout(() => {
  console.error('ui.test.mjs: overall time limit reached; giving up');
  process.exit(2);
}, Number(process.env.NODE_TIMEOUT_MS || 200_000));
overall.unref();

const STEP_TIMEOUT = 60_000;
const MAIL_COUNT = Number(env.MAIL_COUNT);
const dovecot = {
  host: env.DOVECOT_HOST,
  port: env.DOVECOT_POP3S_PORT,
  ca: env.CA_FILE,
  user: env.MAILBOX_USER,
  password: env.MAILBOX_PASSWORD,
};

let browser;

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 30_000 });
});

after(async () => {
  await browser?.close();
});

/**
 * A browser context that watches everything: which documents came back with which
 * headers, every request (only loopback may be contacted; anything else is blocked and
 * remembered), every dialog (dismissed and remembered).
 */
async function watchedContext(options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const watch = { documents: [], requests: [], blocked: [], dialogs: [], context };
  context.on('request', (request) => watch.requests.push(request.url()));
  context.on('response', async (response) => {
    if (response.request().resourceType() !== 'document') return;
    const url = new URL(response.url());
    if (url.origin !== BASE.origin && url.origin !== SETUP_BASE.origin) return;
    watch.documents.push({
      url: response.url(),
      status: response.status(),
      headers: await response.allHeaders().catch(() => response.headers()),
    });
  });
  await context.route(
    (url) => !['127.0.0.1', 'localhost'].includes(url.hostname) && !['data:', 'blob:', 'about:'].includes(url.protocol),
    (route) => {
      watch.blocked.push(route.request().url());
      return route.abort('blockedbyclient');
    },
  );
  context.on('page', (page) => watchPage(watch, page));
  return watch;
}

function watchPage(watch, page) {
  page.on('dialog', (dialog) => {
    watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
}

// Which pages were checked for labels, and what was wrong on any of them.
const checkedPages = new Map();

/**
 * After each navigation: the page loaded, its title says where we are, and every form
 * field on it has a label. `name` keys the page in the final report.
 */
async function checkPage(page, name) {
  await page.waitForLoadState('load');
  const title = await page.title();
  assert.match(title, / · popdesk$/, `${name}: the title "${title}" should read "<Page> · popdesk"`);
  const unlabelled = await unlabelledFields(page);
  assert.deepEqual(unlabelled, [], `${name} (${page.url()}): form fields without a label`);
  const structure = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    h1: document.querySelectorAll('h1').length,
    imagesWithoutAlt: [...document.images].filter((img) => !img.hasAttribute('alt')).map((img) => img.src),
    unnamedButtons: [...document.querySelectorAll('button')].filter((b) => !(b.textContent.trim() || b.getAttribute('aria-label'))).length,
  }));
  assert.ok(structure.lang, `${name}: <html> has no lang`);
  assert.equal(structure.h1, 1, `${name}: a page has one <h1>`);
  assert.deepEqual(structure.imagesWithoutAlt, [], `${name}: images without alt`);
  assert.equal(structure.unnamedButtons, 0, `${name}: buttons without a name`);
  checkedPages.set(name, page.url());
}

/** The path of the page's URL. */
const pathOf = (page) => new URL(page.url()).pathname;

/** Whether the Playwright locator is the focused element of its page. */
const isFocused = (locator) => locator.evaluate((el) => el === document.activeElement).catch(() => false);

/** Presses Tab until `locator` has focus (at most `limit` presses); returns the count. */
async function tabTo(page, locator, limit, what) {
  for (let n = 1; n <= limit; n += 1) {
    await page.keyboard.press('Tab');
    if (await isFocused(locator)) return n;
  }
  const active = await page.evaluate(() => document.activeElement?.outerHTML?.slice(0, 200));
  assert.fail(`${limit} presses of Tab never reached ${what}; focus is on ${active}`);
}

/**
 * Asserts the focused element can be seen: it has a box of some size on the page, and
 * a focus indicator (an outline or a box shadow) while it has keyboard focus.
 */
async function assertFocusVisible(locator, what) {
  const box = await locator.boundingBox();
  assert.ok(box && box.width > 0 && box.height > 0, `${what} has focus but no visible box: ${JSON.stringify(box)}`);
  const ring = await locator.evaluate((el) => {
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    return { outline, shadow: style.boxShadow !== 'none', focusVisible: el.matches(':focus-visible') };
  });
  assert.ok(ring.focusVisible, `${what} has focus, but not :focus-visible`);
  assert.ok(ring.outline || ring.shadow, `${what} has keyboard focus but no outline or shadow shows it`);
}

/** Signs in through the form. */
async function signIn(page, email, password) {
  await page.goto(new URL('/login', BASE).href);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Sign in' }).click()]);
}

// ---------------------------------------------------------------------------------------
// The story: steps share one signed-in page and depend on the ones before.

describe('an admin and an agent at work', () => {
  let watch;
  let page;
  let broken = null; // the first step that failed
  const state = {};

  before(async () => {
    watch = await watchedContext({ viewport: { width: 1280, height: 900 } });
    page = await watch.context.newPage();
  });
  after(async () => {
    await watch?.context.close();
  });

  /** One step of the story: skipped once an earlier step failed, evidence kept on failure. */
  function step(name, body) {
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      if (broken) {
        t.skip(`not run: it needs "${broken}", which failed`);
        return;
      }
      try {
        await body();
      } catch (error) {
        broken = name;
        const slug = name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
        await screenshot(page, ARTIFACTS, `FAILED-${slug}`).catch(() => {});
        await page.content().then((html) => fs.writeFileSync(path.join(ARTIFACTS, `FAILED-${slug}.html`), html)).catch(() => {});
        throw error;
      }
    });
  }

  step('a wrong password on the sign-in page shows the alert', async () => {
    const response = await page.goto(new URL('/tickets', BASE).href);
    assert.ok(response, 'the server answered');
    assert.equal(pathOf(page), '/login', 'a signed-out visitor is sent to the sign-in page');
    await checkPage(page, 'sign-in');
    await screenshot(page, ARTIFACTS, '01-sign-in');
    await page.getByLabel('Email', { exact: true }).fill(env.ADMIN_EMAIL);
    await page.getByLabel('Password', { exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'The email or password is wrong.' }).waitFor();
    assert.equal(pathOf(page), '/login');
    await checkPage(page, 'sign-in with error');
  });

  step('signs in through the form and sees the navigation', async () => {
    await page.getByLabel('Email', { exact: true }).fill(env.ADMIN_EMAIL);
    await page.getByLabel('Password', { exact: true }).fill(env.ADMIN_PASSWORD);
    await Promise.all([page.waitForURL((url) => url.pathname !== '/login'), page.getByRole('button', { name: 'Sign in' }).click()]);
    await checkPage(page, 'home');
    for (const link of ['Tickets', 'Mailboxes', 'Failed messages', 'Users', 'API tokens']) {
      await page.getByRole('navigation').getByRole('link', { name: link, exact: true }).waitFor();
    }
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  });

  step('adds a mailbox with the "Other POP3 server" preset', async () => {
    await page.getByRole('link', { name: 'Mailboxes', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/mailboxes');
    await checkPage(page, 'mailboxes (empty)');
    await page.getByRole('link', { name: 'Add mailbox' }).click();
    await page.waitForURL((url) => url.pathname === '/mailboxes/new');
    await checkPage(page, 'add mailbox');
    for (const preset of ['Gmail', 'Microsoft 365', 'Other POP3 server']) {
      await page.getByRole('link', { name: preset, exact: true }).waitFor();
    }
    await page.getByRole('link', { name: 'Gmail', exact: true }).click();
    await page.waitForURL((url) => url.searchParams.get('preset') === 'gmail');
    await checkPage(page, 'add mailbox (Gmail)');
    assert.equal(await page.getByLabel('Host', { exact: true }).inputValue(), 'pop.gmail.com');
    const gmailText = await page.locator('main').innerText();
    assert.match(gmailText, /recent/i, 'the Gmail preset explains recent mode');
    await screenshot(page, ARTIFACTS, '05-add-mailbox-gmail-preset');
    await screenshot(page, ARTIFACTS, '05-add-mailbox-gmail-preset-top', { fullPage: false });

    await page.getByRole('link', { name: 'Microsoft 365', exact: true }).click();
    await page.waitForURL((url) => url.searchParams.get('preset') === 'microsoft365');
    await checkPage(page, 'add mailbox (Microsoft 365)');
    assert.equal(await page.getByLabel('Host', { exact: true }).inputValue(), 'outlook.office365.com');
    assert.equal(await page.getByLabel('Port', { exact: true }).inputValue(), '995');
    assert.match(await page.locator('main').innerText(), /OAuth/, 'the Microsoft 365 preset says it needs OAuth');

    await page.getByRole('link', { name: 'Other POP3 server', exact: true }).click();
    await page.waitForURL((url) => url.searchParams.get('preset') === 'generic');
    await checkPage(page, 'add mailbox (generic)');
    assert.equal(await page.getByLabel('Port', { exact: true }).inputValue(), '995', 'the preset fills port 995');
    const security = await page.getByLabel('Security', { exact: true }).evaluate((el) => el.selectedOptions[0]?.textContent ?? el.value);
    assert.match(security, /TLS/i, `the preset chooses TLS, not "${security}"`);
    assert.doesNotMatch(security, /STARTTLS|STLS|none|unencrypted|plain/i, `the preset chooses implicit TLS, not "${security}"`);
    await screenshot(page, ARTIFACTS, '05-add-mailbox-generic-preset');

    await page.getByLabel('Name', { exact: true }).fill('Support desk');
    await page.getByLabel('Host', { exact: true }).fill(env.DOVECOT_HOST);
    await page.getByLabel('Port', { exact: true }).fill(env.DOVECOT_POP3S_PORT);
    await page.getByLabel('Username', { exact: true }).fill(env.MAILBOX_USER);
    await page.getByLabel('Password or token', { exact: true }).fill(env.MAILBOX_PASSWORD);
    await page.getByLabel('CA certificate file', { exact: true }).fill(env.CA_FILE);
    await page.getByLabel('Poll every (seconds)', { exact: true }).fill('3600');
    // Replies leave through the test's private Postfix, signing in with the POP3 login.
    await page.getByLabel('Send from address', { exact: true }).fill(env.SEND_ADDRESS);
    await page.getByLabel('Sender name', { exact: true }).fill('Example Support');
    await page.getByLabel('SMTP server', { exact: true }).fill(env.SMTP_HOST);
    await page.getByLabel('SMTP port', { exact: true }).fill(env.SMTP_PORT);
    await page.getByLabel('SMTP security', { exact: true }).selectOption('starttls');
    // Added disabled, so the scheduler stays away until "Test connection" was seen to
    // change nothing.
    await page.getByLabel('Enabled', { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Add mailbox' }).click();
    await page.waitForURL((url) => /^\/mailboxes\/\d+$/.test(url.pathname));
    await checkPage(page, 'mailbox');
    state.mailboxUrl = page.url();
    await page.getByRole('status').filter({ hasText: /Support desk.*added/ }).waitFor();
    await page.getByRole('button', { name: 'Enable', exact: true }).waitFor();
  });

  step('"Test connection" shows capabilities and the count, and changes nothing', async () => {
    const before = await pop3Uidls(dovecot);
    assert.equal(before.length, MAIL_COUNT, `Dovecot holds the test mails: ${before}`);
    await page.getByRole('button', { name: 'Test connection' }).click();
    await page.waitForLoadState('load');
    await page.locator('#test-result').getByText(new RegExp(`\\b${MAIL_COUNT} messages\\b`)).first().waitFor({ timeout: 20_000 });
    const text = await page.locator('main').innerText();
    assert.match(text, /\bUIDL\b/, 'the capabilities Dovecot announced are listed');
    assert.match(text, /\bPIPELINING\b/, 'the capabilities Dovecot announced are listed');
    await checkPage(page, 'mailbox after test');
    await screenshot(page, ARTIFACTS, '06-mailbox-tested');
    await screenshot(page, ARTIFACTS, '06-mailbox-tested-top', { fullPage: false });
    const after = await pop3Uidls(dovecot);
    assert.deepEqual(after, before, 'Test connection left every message on the server');
  });

  step('"Fetch now" brings the mail in as tickets', async () => {
    await page.getByRole('button', { name: 'Enable', exact: true }).click();
    await page.getByRole('button', { name: 'Disable', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Fetch now' }).click();
    await page.waitForLoadState('load');
    await pollUntil(
      async () => {
        await page.goto(new URL('/tickets', BASE).href);
        const subjects = await page.getByRole('link', { name: /^(Printer on fire|XSS probe)$/ }).count();
        return subjects === 2;
      },
      30_000,
      'the tickets "Printer on fire" and "XSS probe" in the list',
      1000,
    );
    await checkPage(page, 'tickets');
    for (const column of ['Number', 'Subject', 'Requester', 'Mailbox', 'Status', 'Last activity']) {
      await page.getByRole('columnheader', { name: column, exact: true }).waitFor();
    }
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'Printer on fire', exact: true }) });
    const rowText = await row.innerText();
    assert.match(rowText, /dana@customer\.example|Dana Whitfield/, `the requester shows: ${rowText}`);
    assert.match(rowText, /Support desk/, `the mailbox shows: ${rowText}`);
    assert.match(rowText, /\bNew\b/, `a new ticket says so: ${rowText}`);
    await screenshot(page, ARTIFACTS, '02-tickets');
    assert.deepEqual(await pop3Uidls(dovecot), [], 'the fetch took every message off the server');
  });

  step('the ticket list filters by text in the subject', async () => {
    await page.getByLabel('Search', { exact: true }).fill('printer');
    // Typing is enough: the results update in place and the URL follows (htmx). A
    // click on "Filter" now would race that update with a page load.
    await page.waitForURL((url) => url.searchParams.get('q') === 'printer');
    await checkPage(page, 'tickets filtered');
    await page.getByRole('link', { name: 'Printer on fire', exact: true }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'XSS probe', exact: true }).count(), 0, 'the filter hides other tickets');
  });

  step('search finds a word only in a mail body, shows the snippet and counts what it found', async () => {
    // Typing in the box is the step before; this one reads the results page itself.
    await page.goto(new URL('/tickets?q=toast', BASE).href);
    await checkPage(page, 'tickets searched');
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'Printer on fire', exact: true }) });
    await row.waitFor();
    const hit = row.locator('.snippet mark');
    assert.equal((await hit.first().innerText()).toLowerCase(), 'toast', 'the snippet marks the word found');
    assert.match(await row.locator('.snippet').innerText(), /smells of toast/, 'the snippet is the mail around the hit');
    assert.equal(await page.getByRole('link', { name: 'XSS probe', exact: true }).count(), 0, 'only the matching ticket');
    await screenshot(page, ARTIFACTS, '02-tickets-search');
    await page.goto(new URL('/tickets?q=printer', BASE).href);
  });

  step('the ticket shows sanitized HTML with its inline image, and folds quoted text', async () => {
    await page.getByRole('link', { name: 'Printer on fire', exact: true }).click();
    await page.waitForURL((url) => /^\/tickets\/\d+$/.test(url.pathname));
    state.ticketUrl = page.url();
    await checkPage(page, 'ticket');
    assert.ok((await page.locator('article').count()) >= 3, 'the mail, the reply and the auto-reply are entries');
    const autoReply = page.locator('article', { hasText: 'out of the office until Monday' });
    await autoReply.getByText('Auto-reply', { exact: true }).waitFor();
    assert.equal(
      await page.locator('article', { hasText: 'the fire is out' }).getByText('Auto-reply', { exact: true }).count(),
      0,
      'only the auto-reply is marked as one',
    );

    const frameElement = page.locator('iframe').first();
    const sandbox = await frameElement.getAttribute('sandbox');
    assert.notEqual(sandbox, null, 'mail HTML is in a sandboxed iframe');
    assert.ok(!sandbox.split(/\s+/).includes('allow-scripts'), `the sandbox must not allow scripts: "${sandbox}"`);
    assert.match(await frameElement.getAttribute('src'), /^\/messages\/\d+\/html$/);
    const frame = await (await frameElement.elementHandle()).contentFrame();
    assert.ok(frame, 'the frame has a document');
    await frame.waitForLoadState('load');
    await frame.locator('b', { hasText: 'literally on fire' }).waitFor();
    assert.equal(await frame.locator('table td', { hasText: 'PRN-3' }).count(), 1, 'the table survives sanitizing');
    const image = frame.locator('img[alt="flames"]');
    await image.waitFor();
    await pollUntil(
      () => image.evaluate((img) => img.complete && img.naturalWidth > 0),
      10_000,
      'the inline cid: image loaded (naturalWidth > 0)',
      200,
    );
    assert.match(await image.getAttribute('src'), /^\/messages\/\d+\/cid\//, 'cid: points at the stored image');

    const reply = page.getByText('Update: the fire is out, but the printer smells of toast.');
    assert.ok(await reply.isVisible(), 'the reply text is shown first, unfolded');
    const quoted = page.locator('details', { hasText: 'earlier text' });
    assert.equal(await quoted.count(), 1, 'the quoted history is in a <details>');
    assert.equal(await quoted.evaluate((d) => d.open), false, 'the quoted history starts folded');
    assert.equal((await quoted.locator('summary').innerText()).trim(), 'Quoted text');
    assert.equal(await page.getByText('earlier text: the printer on floor 3').isVisible(), false, 'folded text is hidden');
    await quoted.locator('summary').click();
    assert.equal(await quoted.evaluate((d) => d.open), true, 'a click unfolds it');
    await quoted.locator('summary').click();
  });

  step('the attachment downloads byte for byte, as an attachment', async () => {
    const link = page.getByRole('link', { name: new RegExp(env.ATTACHMENT_NAME.replace('.', '\\.')) });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), env.ATTACHMENT_NAME);
    const saved = path.join(ARTIFACTS, `downloaded-${env.ATTACHMENT_NAME}`);
    await download.saveAs(saved);
    assert.equal(fs.readFileSync(saved, 'utf8'), env.ATTACHMENT_CONTENT, 'the downloaded file is what was sent');
    // The same URL again, to read the headers the download came with.
    const response = await watch.context.request.get(download.url());
    assert.equal(response.status(), 200);
    const headers = response.headers();
    assert.match(headers['content-disposition'] ?? '', /^attachment\b/i, `Content-Disposition: ${headers['content-disposition']}`);
    assert.match(headers['content-disposition'], /report\.txt/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.doesNotMatch(headers['content-type'] ?? '', /html|javascript|svg/i, 'a safe content type');
  });

  step('changing the status to Pending shows it, with a history line', async () => {
    const status = page.getByLabel('Status', { exact: true });
    await status.selectOption({ label: 'Pending' });
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Change status' }).click()]);
    await page.waitForURL((url) => url.pathname === new URL(state.ticketUrl).pathname);
    await checkPage(page, 'ticket after status change');
    const selected = await page.getByLabel('Status', { exact: true }).evaluate((el) => el.selectedOptions[0]?.textContent.trim());
    assert.equal(selected, 'Pending', 'the status field shows the new status');
    // Pending somewhere other than the select: the badge or the history line.
    const mentions = page.locator('xpath=//body//*[not(self::option) and not(self::select) and not(self::script) and not(self::button) and not(ancestor::*[@id="reply"])][contains(translate(normalize-space(text()), "PENDING", "pending"), "pending")]');
    await mentions.first().waitFor();
    // The click may return before the new page is there (`load` of the old page counts):
    // wait for the history line rather than counting at once.
    const history = page.getByText(/(open|new)\W+(to|→|->)\W+pending/i);
    await history.first().waitFor({ timeout: 20_000 }).catch(() => {});
    assert.ok((await history.count()) >= 1, 'the history says the status went from Open to Pending');
  });

  step('a form posted without its CSRF token changes nothing', async () => {
    const action = new URL(`${new URL(state.ticketUrl).pathname}/status`, BASE).href;
    // Straight from a client holding the session cookie, without the form's token.
    const bare = await watch.context.request.post(action, { form: { status: 'closed' }, maxRedirects: 0 });
    assert.equal(bare.status(), 403, `a post without the token is refused, not ${bare.status()}`);
    // From a page of another origin on the same site, whose posts carry the cookie.
    const attacker = http.createServer((_, response) => {
      response.setHeader('Content-Type', 'text/html');
      response.end(
        `<form method="post" action="${action}"><input type="hidden" name="status" value="closed">` +
          '<input type="hidden" name="csrf" value="forged"><button>Win a prize</button></form>',
      );
    });
    await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const other = await watch.context.newPage();
    // Responses are collected as they come rather than awaited with waitForResponse: on
    // a loaded machine the form's navigation could finish before, or without, that
    // listener firing, and the step then waited out its whole time limit.
    const answers = [];
    other.on('response', (r) => {
      if (r.url() === action) answers.push(r.status());
    });
    try {
      await withTimeout(other.goto(`http://127.0.0.1:${attacker.address().port}/`), 20_000, 'the attacker page');
      await withTimeout(other.getByRole('button', { name: 'Win a prize' }).click(), 20_000, 'the forged button');
      await pollUntil(async () => answers.length > 0, 20_000, 'popdesk answered the cross-origin post', 100);
      assert.deepEqual(answers, [403], `a cross-origin post is refused, not ${answers}`);
    } finally {
      await withTimeout(other.close(), 20_000, 'closing the attacker page').catch(() => {});
      attacker.closeAllConnections?.();
      attacker.close();
    }
    await withTimeout(page.goto(state.ticketUrl), 20_000, 'the ticket page again');
    const selected = await page.getByLabel('Status', { exact: true }).evaluate((el) => el.selectedOptions[0]?.textContent.trim());
    assert.equal(selected, 'Pending', 'the ticket is still Pending');
  });

  step('an internal note appears on the ticket', async () => {
    const note = 'Called the fire brigade: they will be here in 5 minutes.';
    await page.getByLabel('Internal note', { exact: true }).fill(note);
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Add note' }).click()]);
    await page.getByText(note).waitFor();
    await checkPage(page, 'ticket after note');
    state.note = note;
    await screenshot(page, ARTIFACTS, '03-ticket');
  });

  step('"Test sending" signs in to the SMTP server and sends nothing', async () => {
    await withTimeout(page.goto(state.mailboxUrl), 20_000, 'the mailbox page');
    await page.getByRole('button', { name: 'Test sending', exact: true }).click();
    await page.locator('#sending-test-result .good').waitFor({ timeout: 30_000 });
    await checkPage(page, 'mailbox after Test sending');
    await screenshot(page, ARTIFACTS, '10-sending-tested');
  });

  step('a reply with an attachment goes out by email and shows as Sent', async () => {
    await withTimeout(page.goto(state.ticketUrl), 20_000, 'the ticket page');
    const reply = 'Unplug the printer and keep the door closed.\nThe attached checklist says what to do next.';
    await page.getByLabel('Reply', { exact: true }).fill(reply);
    await page.getByLabel('Attachments', { exact: true }).setInputFiles(env.REPLY_ATTACHMENT);
    await screenshot(page, ARTIFACTS, '10-reply-box');
    await Promise.all([
      page.waitForLoadState('load'),
      page.getByRole('button', { name: 'Send and set Pending', exact: true }).click(),
    ]);
    const card = page.locator('article.reply').filter({ hasText: 'Unplug the printer' });
    await card.waitFor({ timeout: 20_000 });
    // The sender works in the background: reload until the reply says Sent.
    await pollUntil(async () => {
      await withTimeout(page.goto(state.ticketUrl), 20_000, 'the ticket page');
      return (await card.locator('.badge.ok').count()) > 0;
    }, 40_000, 'the reply shows as Sent');
    assert.equal((await card.locator('.badge.ok').innerText()).trim(), 'Sent');
    await card.getByRole('link', { name: path.basename(env.REPLY_ATTACHMENT) }).waitFor();
    await checkPage(page, 'ticket after a reply');
    await card.scrollIntoViewIfNeeded();
    await screenshot(page, ARTIFACTS, '11-reply-sent');
  });

  step('"Assign to me", then "Mine" lists the ticket, and the open list updates itself', async () => {
    await page.goto(state.ticketUrl);
    await page.getByRole('button', { name: 'Assign to me' }).click();
    await page.getByRole('status').filter({ hasText: 'The ticket is now assigned to' }).waitFor();
    await page.getByText(/assigned the ticket to/).first().waitFor();
    await checkPage(page, 'ticket assigned');
    await page.goto(new URL('/tickets', BASE).href);
    await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Mine', exact: true }).click();
    await page.waitForURL((url) => url.searchParams.get('assignee') === 'me');
    await checkPage(page, 'tickets, Mine');
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'Printer on fire', exact: true }) });
    await row.waitFor();
    assert.equal(await page.getByRole('link', { name: 'XSS probe', exact: true }).count(), 0, 'Mine shows only my tickets');
    await screenshot(page, ARTIFACTS, '05-tickets-mine');

    // Someone else changes the status while the list is open: it shows without a reload.
    const number = new URL(state.ticketUrl).pathname.split('/').pop();
    await page.evaluate(() => { window.notReloaded = true; });
    const change = (status) => page.evaluate(async ([n, s]) => {
      const reply = await fetch(`/api/v1/tickets/${n}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ status: s }),
      });
      return (await reply.json()).event?.from_status ?? s;
    }, [number, status]);
    const before = await change('closed');
    await row.getByText('Closed', { exact: true }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the list changed in place');
    await change(before);
    await row.getByText('Closed', { exact: true }).waitFor({ state: 'detached', timeout: 10_000 });

    // Keys: ? lists them, j marks the first ticket, o opens it, r goes to the reply box.
    await page.keyboard.press('?');
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor({ state: 'detached' });
    await page.keyboard.press('/');
    assert.ok(await isFocused(page.getByLabel('Search', { exact: true })), '/ focuses the search');
    await page.keyboard.press('Escape');
    await page.keyboard.press('j');
    await page.locator('#ticket-results tbody tr.marked').waitFor();
    await Promise.all([page.waitForURL((url) => /^\/tickets\/\d+$/.test(url.pathname)), page.keyboard.press('o')]);
    assert.equal(new URL(page.url()).searchParams.get('assignee'), 'me', 'the ticket keeps the list\'s view');
    await page.getByRole('link', { name: 'Tickets', exact: true }).last().waitFor();
    await page.keyboard.press('r');
    assert.ok(await isFocused(page.getByLabel('Reply', { exact: true })), 'r focuses the reply box');
  });

  step('the ticket page can be worked with the keyboard', async () => {
    await page.goto(state.ticketUrl);
    // The first Tab offers a way past the navigation.
    const skip = page.getByRole('link', { name: 'Skip to the content' });
    await page.keyboard.press('Tab');
    assert.ok(await isFocused(skip), 'the first Tab reaches "Skip to the content"');
    await assertFocusVisible(skip, 'the skip link');
    await page.keyboard.press('Enter');
    assert.ok(
      await page.evaluate(() => document.querySelector('main')?.contains(document.activeElement)),
      'the skip link moves the focus into the main content',
    );
    await page.goto(state.ticketUrl);
    const status = page.getByLabel('Status', { exact: true });
    const button = page.getByRole('button', { name: 'Change status' });
    const presses = await tabTo(page, status, 150, 'the Status select');
    await assertFocusVisible(status, 'the Status select');
    await tabTo(page, button, 10, 'the "Change status" button');
    await assertFocusVisible(button, 'the "Change status" button');
    console.log(`# keyboard: the Status select is ${presses} Tab presses from the top`);
  });

  step('every page fits a phone screen', async () => {
    const phone = await watch.context.newPage();
    try {
      await phone.setViewportSize({ width: 390, height: 844 });
      const pages = [
        ['10-phone-tickets', new URL('/tickets', BASE).href],
        ['11-phone-ticket', state.ticketUrl],
        ['phone-mailboxes', new URL('/mailboxes', BASE).href],
        ['phone-mailbox', state.mailboxUrl],
        ['phone-add-mailbox', new URL('/mailboxes/new?preset=gmail', BASE).href],
        ['phone-messages', new URL('/messages?status=ignored', BASE).href],
        ['phone-users', new URL('/users', BASE).href],
        ['phone-tokens', new URL('/tokens', BASE).href],
      ];
      const tooWide = [];
      for (const [name, url] of pages) {
        await phone.goto(url);
        await checkPage(phone, `${name} (phone)`);
        const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (/^\d/.test(name) || overflow > 1) await screenshot(phone, ARTIFACTS, name);
        if (overflow > 1) tooWide.push(`${new URL(url).pathname}: ${overflow}px too wide`);
      }
      assert.deepEqual(tooWide, [], 'pages wider than a 390px phone screen (see phone-*.png)');
    } finally {
      await phone.close();
    }
  });

  step('a mailbox with a wrong password shows "authentication failed" on its page', async () => {
    await page.goto(new URL('/mailboxes/new?preset=generic', BASE).href);
    await checkPage(page, 'add mailbox (second)');
    await page.getByLabel('Name', { exact: true }).fill('Wrong password');
    await page.getByLabel('Host', { exact: true }).fill(env.DOVECOT_HOST);
    await page.getByLabel('Port', { exact: true }).fill(env.DOVECOT_POP3S_PORT);
    await page.getByLabel('Username', { exact: true }).fill(env.MAILBOX_USER);
    await page.getByLabel('Password or token', { exact: true }).fill('not-the-mailbox-password');
    await page.getByLabel('CA certificate file', { exact: true }).fill(env.CA_FILE);
    await page.getByRole('button', { name: 'Add mailbox' }).click();
    // "Add mailbox" tests first: the refusal shows in place (htmx), the password stays
    // typed, and the admin chooses to save it anyway.
    await page.getByRole('alert').filter({ hasText: /connection test failed.*refused the sign-in/i }).waitFor();
    assert.equal(
      await page.getByLabel('Password or token', { exact: true }).inputValue(),
      'not-the-mailbox-password',
      'the password input was not re-rendered',
    );
    await screenshot(page, ARTIFACTS, '06-add-mailbox-test-failed');
    await page.getByRole('button', { name: 'Save and keep trying' }).click();
    await page.waitForURL((url) => /^\/mailboxes\/\d+$/.test(url.pathname));
    const mailboxUrl = page.url();
    await page.getByRole('button', { name: 'Fetch now' }).click();
    await page.waitForLoadState('load');
    await pollUntil(
      async () => {
        await page.goto(mailboxUrl);
        const alerts = await page.getByRole('alert').allInnerTexts();
        return alerts.some((text) => /authentication failed/i.test(text));
      },
      30_000,
      'role=alert with "authentication failed" on the mailbox page',
      1000,
    );
    await checkPage(page, 'mailbox with error');
    await screenshot(page, ARTIFACTS, '06-mailbox-authentication-failed');

    await page.goto(new URL('/mailboxes', BASE).href);
    await checkPage(page, 'mailboxes');
    const row = page.getByRole('row').filter({ hasText: 'Wrong password' });
    assert.match(await row.innerText(), /authentication failed/i, 'the list shows the error at a glance');
    await screenshot(page, ARTIFACTS, '04-mailboxes');
  });

  step('a self-signed server: Test connection shows its certificate, "Trust this certificate" pins it', async () => {
    await page.goto(new URL('/mailboxes/new?preset=generic', BASE).href);
    await page.getByLabel('Name', { exact: true }).fill('Self-signed');
    await page.getByLabel('Host', { exact: true }).fill(env.DOVECOT_HOST);
    await page.getByLabel('Port', { exact: true }).fill(env.SELF_SIGNED_PORT);
    await page.getByLabel('Username', { exact: true }).fill(env.MAILBOX_USER);
    await page.getByLabel('Password or token', { exact: true }).fill(env.MAILBOX_PASSWORD);
    await page.getByLabel('Enabled', { exact: true }).uncheck();
    await page.getByRole('button', { name: 'Add mailbox' }).click();
    await page.getByRole('alert').filter({ hasText: /self-signed/i }).waitFor();
    await page.getByRole('button', { name: 'Save anyway (disabled)' }).click();
    await page.waitForURL((url) => /^\/mailboxes\/\d+$/.test(url.pathname));
    const mailboxUrl = page.url();

    await page.getByRole('button', { name: 'Test connection' }).click();
    const shown = page.locator('#test-result code.fingerprint');
    await shown.waitFor({ timeout: 20_000 });
    assert.equal(await shown.innerText(), env.SELF_SIGNED_FINGERPRINT, 'the fingerprint of the certificate the server presented');
    const facts = await page.locator('#test-result').innerText();
    assert.match(facts, /Subject/, 'the subject is shown');
    assert.match(facts, /Valid/, 'the validity dates are shown');
    await screenshot(page, ARTIFACTS, '06-untrusted-certificate');
    await page.locator('#trust-password').fill(env.MAILBOX_PASSWORD);
    await page.getByRole('button', { name: 'Trust this certificate' }).click();
    await page.waitForURL(mailboxUrl);
    await page.getByRole('status').filter({ hasText: /Certificate trusted/ }).waitFor();

    await page.getByRole('button', { name: 'Test connection' }).click();
    await page.getByText('Connected and signed in').waitFor({ timeout: 20_000 });
    await checkPage(page, 'mailbox with a trusted self-signed certificate');
  });

  step('an XSS probe in a mail body runs nothing and loads nothing', async () => {
    const requestsBefore = watch.requests.length;
    await page.goto(new URL('/tickets', BASE).href);
    await page.getByRole('link', { name: 'XSS probe', exact: true }).click();
    await page.waitForURL((url) => /^\/tickets\/\d+$/.test(url.pathname));
    await checkPage(page, 'XSS ticket');
    await page.getByText('XSS probe').first().waitFor();
    const frameElement = page.locator('iframe').first();
    const sandbox = await frameElement.getAttribute('sandbox');
    assert.notEqual(sandbox, null, 'the mail HTML is sandboxed');
    assert.ok(!sandbox.split(/\s+/).includes('allow-scripts'), `sandbox "${sandbox}" allows scripts`);
    const frameSrc = new URL(await frameElement.getAttribute('src'), BASE).href;
    const frame = await (await frameElement.elementHandle()).contentFrame();
    await frame.waitForLoadState('load');
    await frame.getByText('XSS probe: nothing below may run.').waitFor();
    // Time for a refresh, an onerror, a toggle event to fire if any survived.
    await page.waitForTimeout(1500);
    const link = frame.getByText('click', { exact: true });
    if ((await link.count()) > 0) await link.first().click({ timeout: 2000 }).catch(() => {});
    await page.waitForTimeout(500);

    assert.deepEqual(watch.dialogs, [], 'no alert/confirm/prompt fired');
    for (const f of page.frames()) {
      const pwned = await f.evaluate(() => typeof window.__pwned).catch((e) => `unreadable: ${e.message}`);
      assert.equal(pwned, 'undefined', `window.__pwned in frame ${f.url()}`);
    }
    assert.equal(frame.url(), frameSrc, 'the mail did not navigate its frame (meta refresh, form, link)');
    const remote = watch.requests.slice(requestsBefore).filter((url) => url.includes('127.0.0.2'));
    assert.deepEqual(remote, [], 'nothing was requested from the addresses the mail names');
    assert.deepEqual(watch.blocked, [], 'nothing tried to leave loopback');

    const leftovers = await frame.evaluate(() => {
      const found = [];
      for (const el of document.querySelectorAll('*')) {
        const tag = el.tagName.toLowerCase();
        if (['script', 'iframe', 'frame', 'object', 'embed', 'form', 'base', 'link', 'svg', 'math'].includes(tag)) {
          found.push(`<${tag}>`);
        }
        // <meta charset> is harmless; http-equiv can refresh, set cookies or a policy.
        if (tag === 'meta' && el.hasAttribute('http-equiv')) found.push(`<meta http-equiv="${el.getAttribute('http-equiv')}">`);
        for (const attr of el.attributes) {
          if (/^on/i.test(attr.name)) found.push(`${tag}[${attr.name}]`);
          // data-* attributes load nothing (popdesk keeps a blocked remote image's
          // address in one); every other attribute must not point anywhere active.
          if (!/^data-/i.test(attr.name) && /javascript:|127\.0\.0\.2/i.test(attr.value)) {
            found.push(`${tag}[${attr.name}="${attr.value}"]`);
          }
        }
        if (tag === 'style' && /@import|javascript:|127\.0\.0\.2/i.test(el.textContent)) found.push(`<style>${el.textContent}`);
      }
      return found;
    });
    assert.deepEqual(leftovers, [], 'the sanitized mail keeps nothing active');
    await screenshot(page, ARTIFACTS, '12-xss-probe-ticket');

    // The HTML attachment is a download with a type no browser renders.
    const attachment = page.getByRole('link', { name: /evil\.html/ });
    const attachmentUrl = new URL(await attachment.getAttribute('href'), BASE).href;
    const served = await watch.context.request.get(attachmentUrl);
    const headers = served.headers();
    assert.match(headers['content-disposition'] ?? '', /^attachment\b/i, `evil.html: Content-Disposition ${headers['content-disposition']}`);
    assert.doesNotMatch(headers['content-type'] ?? '', /html|xml|javascript|svg/i, `evil.html is served as ${headers['content-type']}`);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    // Opened as a page, it downloads instead of running; and so does the inline SVG.
    const svgSrc = await frame.locator('img[alt="svg image"]').getAttribute('src').catch(() => null);
    const targets = [attachmentUrl, ...(svgSrc && !svgSrc.startsWith('cid:') ? [new URL(svgSrc, BASE).href] : [])];
    console.log(`# opened directly: ${targets.join(', ')}`);
    for (const url of targets) {
      const opened = await watch.context.newPage();
      try {
        await opened.goto(url).catch(() => {}); // a download aborts the navigation
        await opened.waitForTimeout(500);
        for (const f of opened.frames()) {
          const pwned = await f.evaluate(() => typeof window.__pwned).catch((e) => `unreadable: ${e.message}`);
          assert.equal(pwned, 'undefined', `opening ${url} ran its script`);
        }
      } finally {
        await opened.close();
      }
    }
    assert.deepEqual(watch.dialogs, [], 'no dialog from the attachment or the SVG either');
  });

  step('the main flows work without JavaScript too', async () => {
    const plain = await watchedContext({ javaScriptEnabled: false });
    const noJs = await plain.context.newPage();
    try {
      await signIn(noJs, env.ADMIN_EMAIL, env.ADMIN_PASSWORD);
      assert.notEqual(pathOf(noJs), '/login', 'signed in without JavaScript');
      await noJs.goto(new URL('/tickets', BASE).href);
      await noJs.getByLabel('Search', { exact: true }).fill('xss');
      await Promise.all([noJs.waitForURL((url) => url.searchParams.get('q') === 'xss'), noJs.getByRole('button', { name: 'Filter' }).click()]);
      await checkPage(noJs, 'tickets filtered (no JavaScript)');
      assert.equal(await noJs.getByRole('link', { name: 'Printer on fire', exact: true }).count(), 0, 'the filter works as a plain form');
      await noJs.getByRole('link', { name: 'XSS probe', exact: true }).click();
      await noJs.waitForURL((url) => /^\/tickets\/\d+$/.test(url.pathname));
      await noJs.getByLabel('Status', { exact: true }).selectOption({ label: 'Open' });
      await Promise.all([noJs.waitForLoadState('load'), noJs.getByRole('button', { name: 'Change status' }).click()]);
      await checkPage(noJs, 'ticket after status change (no JavaScript)');
      const selected = await noJs.getByLabel('Status', { exact: true }).evaluate((el) => el.selectedOptions[0]?.textContent.trim());
      assert.equal(selected, 'Open');
      assert.ok((await noJs.getByText(/new\W+(to|→|->)\W+open/i).count()) >= 1, 'the history line is there');

      await noJs.goto(state.mailboxUrl);
      await Promise.all([noJs.waitForLoadState('load'), noJs.getByRole('button', { name: 'Test connection' }).click()]);
      await checkPage(noJs, 'mailbox after test (no JavaScript)');
      assert.match(await noJs.locator('main').innerText(), /\bUIDL\b/, 'the test result is a whole page without JavaScript');
      assert.deepEqual(plain.blocked, []);
    } finally {
      await plain.context.close();
    }
  });

  step('an ignored message shows why, downloads raw, and can be reprocessed', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Failed messages', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/messages');
    await checkPage(page, 'failed messages');
    await page.getByRole('link', { name: 'Ignored', exact: true }).click();
    await page.waitForURL((url) => url.searchParams.get('status') === 'ignored');
    await checkPage(page, 'ignored messages');
    const row = page.getByRole('row').filter({ hasText: /not about any known ticket/ });
    assert.equal(await row.count(), 1, 'the auto-reply about nothing is listed with its reason');
    await screenshot(page, ARTIFACTS, '07-failed-messages');
    await row.getByRole('link').first().click();
    await page.waitForURL((url) => /^\/messages\/\d+$/.test(url.pathname));
    await checkPage(page, 'message');
    await page.getByText(/not about any known ticket/).first().waitFor();
    await page.getByText('ooo-away@elsewhere.example').first().waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download raw message' }).click(),
    ]);
    const raw = path.join(ARTIFACTS, 'downloaded-raw-message.eml');
    await download.saveAs(raw);
    assert.match(fs.readFileSync(raw, 'utf8'), /^Subject: Out of office\r?$/m, 'the raw download is the mail as received');
    await screenshot(page, ARTIFACTS, '07-message');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Reprocess' }).click()]);
    await page.getByRole('status').first().waitFor();
    await checkPage(page, 'message after reprocess');
  });

  step('a server that keeps deleted mail gets a calm notice on its mailbox page', async () => {
    await page.getByRole('link', { name: 'Mailboxes', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/mailboxes');
    await page.getByRole('link', { name: env.NOTICE_MAILBOX, exact: true }).click();
    await page.waitForURL((url) => /^\/mailboxes\/\d+$/.test(url.pathname));
    await checkPage(page, 'mailbox with a provider notice');
    const notice = page.getByRole('status').filter({ hasText: 'keeps messages after popdesk deletes them' });
    await notice.first().waitFor({ timeout: 20_000 });
    assert.equal(await page.getByRole('alert').filter({ hasText: 'keeps messages' }).count(), 0, 'information, not an error');
    await notice.first().scrollIntoViewIfNeeded();
    await screenshot(page, ARTIFACTS, '13-mailbox-notice');
  });

  step('users and API tokens pages work', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Users', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/users');
    await checkPage(page, 'users');
    await page.getByLabel('Email', { exact: true }).fill('agent@example.org');
    await page.getByLabel('Name', { exact: true }).fill('Alex Agent');
    await page.getByLabel('Role', { exact: true }).selectOption({ label: 'Agent' });
    await page.getByLabel('Password', { exact: true }).fill('agent password 12345');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Add user' }).click()]);
    await page.getByRole('row').filter({ hasText: 'agent@example.org' }).waitFor();
    await checkPage(page, 'users after add');
    await screenshot(page, ARTIFACTS, '08-users');
    // The only admin cannot lock everyone out by demoting themselves.
    const me = page.getByRole('row').filter({ hasText: env.ADMIN_EMAIL });
    await Promise.all([page.waitForLoadState('load'), me.getByRole('button', { name: 'Make agent' }).click()]);
    await page.getByRole('alert').filter({ hasText: /last admin/i }).waitFor();
    assert.match(await page.getByRole('row').filter({ hasText: env.ADMIN_EMAIL }).innerText(), /Admin/);

    await page.getByRole('navigation').getByRole('link', { name: 'API tokens', exact: true }).click();
    await page.waitForURL((url) => url.pathname === '/tokens');
    await checkPage(page, 'API tokens');
    await page.getByLabel('Token name', { exact: true }).fill('Reporting export');
    await page.getByLabel('Role', { exact: true }).selectOption({ index: 0 });
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Create token' }).click()]);
    await checkPage(page, 'API tokens after create');
    await page.getByText('Reporting export').first().waitFor();
    // The secret: the longest token-like word on the page, shown this once.
    const words = (await page.locator('main').innerText()).match(/[A-Za-z0-9_-]{24,}/g) ?? [];
    assert.ok(words.length > 0, 'the new token is shown');
    const secret = words.sort((a, b) => b.length - a.length)[0];
    await screenshot(page, ARTIFACTS, '09-api-tokens');
    // A client with no cookies: only the token can get it in.
    const client = await request.newContext();
    try {
      const url = new URL('/api/v1/tickets', BASE).href;
      assert.equal((await client.get(url)).status(), 401, 'the API needs credentials');
      const response = await client.get(url, { headers: { Authorization: `Bearer ${secret}` } });
      assert.equal(response.status(), 200, `the token shown (${secret.slice(0, 6)}…) works on the API`);
    } finally {
      await client.dispose();
    }
    await page.reload();
    assert.ok(!(await page.content()).includes(secret), 'the token is shown only once');
  });

  step('merging the XSS probe into the printer ticket moves its mail there, and its old page leads there', async () => {
    await page.goto(new URL('/tickets', BASE).href);
    await page.getByRole('link', { name: 'XSS probe', exact: true }).click();
    await page.waitForURL((url) => /^\/tickets\/\d+$/.test(url.pathname));
    const probeUrl = page.url();
    const printer = new URL(state.ticketUrl).pathname.split('/').pop();
    await page.getByLabel('Merge into ticket', { exact: true }).fill(`#${printer}`);
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Merge', exact: true }).click()]);
    await page.waitForURL((url) => url.pathname === `/tickets/${printer}`);
    await page.getByRole('status').filter({ hasText: 'was merged into this one' }).waitFor();
    await checkPage(page, 'ticket after a merge');
    const probe = new URL(probeUrl).pathname.split('/').pop();
    await page.locator('p.event', { hasText: 'merged ticket' }).getByRole('link', { name: `#${probe}` }).waitFor();
    await screenshot(page, ARTIFACTS, '13-merged');
    await page.goto(probeUrl);
    await page.waitForURL((url) => url.pathname === `/tickets/${printer}`);
    await page.goto(new URL('/tickets', BASE).href);
    await page.getByRole('link', { name: 'Printer on fire', exact: true }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'XSS probe', exact: true }).count(), 0, 'the merged ticket left the list');
  });

  step('the preferences page sets the time zone, and the ticket reads its times in it', async () => {
    await page.locator('header a[href="/preferences"]').first().click();
    await page.waitForURL((url) => url.pathname === '/preferences');
    await checkPage(page, 'preferences');
    await page.getByLabel('Time zone', { exact: true }).selectOption('Europe/Berlin');
    await page.getByLabel('A new ticket arrives in my mailboxes', { exact: true }).check();
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Save preferences' }).click()]);
    await page.getByRole('status').filter({ hasText: 'Your preferences are saved.' }).waitFor();
    assert.equal(await page.getByLabel('Time zone', { exact: true }).inputValue(), 'Europe/Berlin');
    assert.equal(await page.getByLabel('A new ticket arrives in my mailboxes', { exact: true }).isChecked(), true);
    await checkPage(page, 'preferences after save');
    await screenshot(page, ARTIFACTS, '14-preferences');
    await page.goto(state.ticketUrl);
    await checkPage(page, 'ticket in Berlin time');
    const times = await page.locator('main time').allInnerTexts();
    assert.ok(times.some((t) => / CES?T$/.test(t)), `times read in Berlin: ${times.join(' | ')}`);
    assert.ok(!times.some((t) => / UTC$/.test(t)), `no time left in UTC: ${times.join(' | ')}`);
    // Back to UTC for the steps after this one.
    await page.goto(new URL('/preferences', BASE).href);
    await page.getByLabel('Time zone', { exact: true }).selectOption('UTC');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Save preferences' }).click()]);
    await page.getByRole('status').filter({ hasText: 'Your preferences are saved.' }).waitFor();
  });

  step('security headers on every page: CSP without inline script, nosniff, no framing', async () => {
    assert.ok(watch.documents.length >= 10, `documents seen: ${watch.documents.length}`);
    const problems = [];
    for (const doc of watch.documents) {
      const type = doc.headers['content-type'] ?? '';
      if (!type.startsWith('text/html') || doc.status >= 300) continue;
      const mailHtml = /^\/messages\/\d+\/html$/.test(new URL(doc.url).pathname);
      for (const problem of securityHeaderProblems(doc.headers, { mailHtml })) {
        problems.push(`${new URL(doc.url).pathname}: ${problem}`);
      }
    }
    assert.deepEqual([...new Set(problems)], []);
    const mailFrames = watch.documents.filter((d) => /^\/messages\/\d+\/html$/.test(new URL(d.url).pathname));
    assert.ok(mailFrames.length >= 2, 'the mail HTML documents were checked too');
  });

  step('signs out, and the tickets are behind the sign-in again', async () => {
    await Promise.all([page.waitForURL((url) => url.pathname === '/login'), page.getByRole('button', { name: 'Sign out' }).click()]);
    await checkPage(page, 'signed out');
    await page.goto(new URL('/tickets', BASE).href);
    assert.equal(pathOf(page), '/login', '/tickets redirects to the sign-in page');
    const response = await watch.context.request.get(new URL('/api/v1/session', BASE).href);
    assert.equal(response.status(), 401, 'the session is gone on the server too');
  });

  step('every page the story visited had labelled fields (the list)', async () => {
    for (const name of ['sign-in', 'tickets', 'ticket', 'mailboxes', 'add mailbox (generic)', 'mailbox', 'failed messages', 'users', 'API tokens']) {
      assert.ok(checkedPages.has(name), `the page "${name}" was checked`);
    }
    console.log(`# pages checked for labels and titles: ${[...checkedPages.keys()].join(', ')}`);
  });
});

// ---------------------------------------------------------------------------------------
// OAuth2: an admin connects a mailbox at the provider's own pages (oidc-provider on
// loopback, 20-second access tokens), popdesk keeps fetching across an expiry, a grant
// revoked at the provider shows as "needs reconnecting", and Reconnect mends it.

describe('an admin connects a mailbox with OAuth2 and it stays connected', () => {
  let watch;
  let page;
  let broken = null;
  const state = {};

  before(async () => {
    watch = await watchedContext({ viewport: { width: 1280, height: 900 } });
    page = await watch.context.newPage();
  });
  after(async () => {
    await watch?.context.close();
  });

  function step(name, body) {
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      if (broken) {
        t.skip(`not run: it needs "${broken}", which failed`);
        return;
      }
      try {
        await body();
      } catch (error) {
        broken = name;
        const slug = `oauth-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 50)}`;
        await screenshot(page, ARTIFACTS, `FAILED-${slug}`).catch(() => {});
        await page.content().then((html) => fs.writeFileSync(path.join(ARTIFACTS, `FAILED-${slug}.html`), html)).catch(() => {});
        throw error;
      }
    });
  }

  const oauthSection = () => page.locator('#oauth');
  const connectionState = () => oauthSection().getAttribute('data-oauth-state');

  /**
   * Presses a Connect/Reconnect button (`press`), signs in at the provider's own login
   * page (devInteractions: any name, any password), confirms consent if it asks, and
   * waits until the provider has sent the browser back through /oauth/callback to the
   * mailbox page.
   */
  async function connectAtProvider(press) {
    const issuer = new URL(env.OAUTH_ISSUER);
    let back = null;
    const callback = page
      .waitForResponse((r) => new URL(r.url()).pathname === '/oauth/callback', { timeout: 40_000 })
      .then((r) => {
        back = r;
      });
    await press();
    const deadline = Date.now() + 30_000;
    while (!back && Date.now() < deadline) {
      try {
        await page.waitForLoadState('load');
        if (new URL(page.url()).origin === issuer.origin) {
          const login = page.locator('input[name="login"]');
          const consent = page.locator('input[name="prompt"][value="consent"]');
          if (await login.count()) {
            await login.fill(env.OAUTH_USER);
            await page.locator('input[name="password"]').fill('any password will do');
            await page.getByRole('button', { name: 'Sign-in' }).click();
          } else if (await consent.count()) {
            await page.getByRole('button', { name: 'Continue' }).click();
          }
        }
      } catch {
        // The page navigated while it was being looked at: look again.
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    await callback;
    assert.equal(back.status(), 303, 'the callback sends the admin on to the mailbox page');
    await page.waitForURL((url) => url.origin === BASE.origin && /^\/mailboxes\/\d+$/.test(url.pathname), { timeout: 15_000 });
    await page.waitForLoadState('load');
  }

  /** Successful fetch runs in the mailbox's history (after a reload). */
  async function successfulRuns() {
    await page.goto(state.mailboxUrl);
    return page.locator('td[data-label="Outcome"]').filter({ hasText: 'Success' }).count();
  }

  /** "Fetch now", then waits until the history shows one more successful run. */
  async function fetchSucceeds(what) {
    const before = await successfulRuns();
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Fetch now' }).click()]);
    await pollUntil(async () => (await successfulRuns()) > before, 30_000, what, 1000);
  }

  step('the mailbox page shows the connection and the redirect URL to register', async () => {
    await signIn(page, env.ADMIN_EMAIL, env.ADMIN_PASSWORD);
    await page.goto(new URL('/mailboxes', BASE).href);
    await page.getByRole('link', { name: env.OAUTH_MAILBOX, exact: true }).click();
    await page.waitForURL((url) => /^\/mailboxes\/\d+$/.test(url.pathname));
    state.mailboxUrl = page.url();
    await checkPage(page, 'OAuth2 mailbox (not connected)');
    assert.equal(await connectionState(), 'not-connected');
    assert.equal(
      (await page.locator('#redirect-uri').innerText()).trim(),
      new URL('/oauth/callback', BASE).href,
      'the page shows {public_url}/oauth/callback to register',
    );
    assert.equal(await page.getByLabel('OAuth2 provider', { exact: true }).inputValue(), 'generic');
    assert.equal(await page.getByLabel('Client id', { exact: true }).inputValue(), 'popdesk-web');
    await screenshot(page, ARTIFACTS, '20-oauth-not-connected');
  });

  step('Connect goes to the provider, and back on the page the mailbox is connected', async () => {
    await connectAtProvider(() => oauthSection().getByRole('button', { name: 'Connect', exact: true }).click());
    await page.getByRole('status').filter({ hasText: /Connected to .*fetching resumes/ }).waitFor();
    assert.equal(await connectionState(), 'connected');
    state.connectedAt = Date.now();
    const text = await page.locator('main').innerText();
    assert.doesNotMatch(text, /code=|state=/, 'no code or state on the page');
    await checkPage(page, 'OAuth2 mailbox (connected)');
    await screenshot(page, ARTIFACTS, '21-oauth-connected');
  });

  step('a fetch over the token brings the mail in', async () => {
    await fetchSucceeds('a successful fetch of the OAuth2 mailbox');
    await pollUntil(
      async () => {
        await page.goto(new URL('/tickets', BASE).href);
        return (await page.getByRole('link', { name: 'Fetched with OAuth2', exact: true }).count()) === 1;
      },
      30_000,
      'the ticket "Fetched with OAuth2"',
      1000,
    );
  });

  step('after the access token expired, the next fetch still works (renewed by popdesk)', async () => {
    // Tokens live 20 s; wait until the first one has surely expired.
    const wait = state.connectedAt + 22_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await fetchSucceeds('a successful fetch after the access token expired');
    assert.equal(await connectionState(), 'connected');
  });

  step('a grant revoked at the provider shows as "needs reconnecting", with Reconnect', async () => {
    const revoked = await fetch(new URL(`/_testkit/revoke-grants?account=${encodeURIComponent(env.OAUTH_USER)}`, env.OAUTH_ISSUER), { method: 'POST' });
    assert.equal(revoked.status, 200, 'the provider revoked the grant');
    assert.ok((await revoked.json()).revoked >= 1, 'there was a grant to revoke');
    await page.goto(state.mailboxUrl);
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Fetch now' }).click()]);
    await pollUntil(
      async () => {
        await page.goto(state.mailboxUrl);
        return (await connectionState()) === 'needs-reconnecting';
      },
      30_000,
      'the mailbox page saying "needs reconnecting"',
      1000,
    );
    await oauthSection().getByRole('alert').filter({ hasText: 'Needs reconnecting' }).waitFor();
    await oauthSection().getByRole('button', { name: 'Reconnect', exact: true }).waitFor();
    await checkPage(page, 'OAuth2 mailbox (needs reconnecting)');
    await screenshot(page, ARTIFACTS, '22-oauth-needs-reconnecting');
    await page.goto(new URL('/mailboxes', BASE).href);
    const row = page.getByRole('row').filter({ hasText: env.OAUTH_MAILBOX });
    await row.getByText('Needs reconnecting', { exact: true }).waitFor();
    await row.getByRole('button', { name: new RegExp(`^Reconnect ${env.OAUTH_MAILBOX}$`) }).waitFor();
    await checkPage(page, 'mailboxes (needs reconnecting)');
    await screenshot(page, ARTIFACTS, '23-oauth-list-needs-reconnecting');
  });

  step('Reconnect from the list: the provider again, and fetching again', async () => {
    const row = page.getByRole('row').filter({ hasText: env.OAUTH_MAILBOX });
    await connectAtProvider(() => row.getByRole('button', { name: new RegExp(`^Reconnect ${env.OAUTH_MAILBOX}$`) }).click());
    await page.getByRole('status').filter({ hasText: /Connected to .*fetching resumes/ }).waitFor();
    assert.equal(await connectionState(), 'connected');
    await fetchSucceeds('a successful fetch after reconnecting');
    await screenshot(page, ARTIFACTS, '24-oauth-reconnected');
  });
});

// ---------------------------------------------------------------------------------------
// On their own: keyboard sign-in, first-run setup.

test('signing in works with the keyboard alone', { timeout: STEP_TIMEOUT }, async () => {
  const watch = await watchedContext();
  try {
    const page = await watch.context.newPage();
    await page.goto(new URL('/login', BASE).href);
    const email = page.getByLabel('Email', { exact: true });
    const password = page.getByLabel('Password', { exact: true });
    await tabTo(page, email, 15, 'the Email field');
    await assertFocusVisible(email, 'the Email field');
    await page.keyboard.type(env.ADMIN_EMAIL);
    await page.keyboard.press('Tab');
    assert.ok(await isFocused(password), 'one Tab from Email is Password');
    await assertFocusVisible(password, 'the Password field');
    await page.keyboard.type(env.ADMIN_PASSWORD);
    await Promise.all([page.waitForURL((url) => url.pathname !== '/login'), page.keyboard.press('Enter')]);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  } finally {
    await watch.context.close();
  }
});

test('a new install starts at the setup page, which is gone once the admin exists', { timeout: STEP_TIMEOUT }, async () => {
  const watch = await watchedContext();
  const page = await watch.context.newPage();
  try {
    await page.goto(SETUP_BASE.href);
    assert.equal(pathOf(page), '/setup', '/ leads to the setup page while there is no user');
    await checkPage(page, 'setup');
    await screenshot(page, ARTIFACTS, '00-setup');
    // Without the code from serve's log nobody claims the install.
    await page.getByLabel('Setup code', { exact: true }).fill('AAAA-AAAA-AAAA');
    await page.getByLabel('Email', { exact: true }).fill('setup-admin@example.org');
    await page.getByLabel('Name', { exact: true }).fill('Sam Setup');
    await page.getByLabel('Password', { exact: true }).fill('setup admin password 1');
    await page.getByRole('button', { name: 'Create admin' }).click();
    await page.getByRole('alert').getByText('setup code is missing or wrong').waitFor();
    assert.equal(pathOf(page), '/setup', 'a wrong setup code keeps the setup page');
    await page.getByLabel('Setup code', { exact: true }).fill(env.SETUP_CODE);
    await page.getByLabel('Email', { exact: true }).fill('setup-admin@example.org');
    await page.getByLabel('Name', { exact: true }).fill('Sam Setup');
    await page.getByLabel('Password', { exact: true }).fill('setup admin password 1');
    await Promise.all([page.waitForURL((url) => url.pathname !== '/setup'), page.getByRole('button', { name: 'Create admin' }).click()]);
    if (pathOf(page) === '/login') {
      await signIn(page, 'setup-admin@example.org', 'setup admin password 1');
    }
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const again = await page.goto(new URL('/setup', SETUP_BASE).href);
    assert.ok(
      pathOf(page) !== '/setup' || again.status() >= 400,
      `/setup still answers ${again.status()} after the admin exists`,
    );
    assert.equal(await page.getByRole('button', { name: 'Create admin' }).count(), 0, 'no second admin from the setup form');
  } catch (error) {
    await screenshot(page, ARTIFACTS, 'FAILED-setup').catch(() => {});
    throw error;
  } finally {
    await watch.context.close();
  }
});
