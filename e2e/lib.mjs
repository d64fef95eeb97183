// Helpers for popdesk's browser tests: the environment the Rust side hands over, a tiny
// POP3 probe (to see the server's side of "Test connection"), and the checks run on
// every page (labels, security headers).

import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';

/** The variables crates/popdesk/tests/browser.rs sets; a missing one fails loudly. */
export function requireEnv(names) {
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length > 0) {
    throw new Error(
      `missing environment: ${missing.join(', ')} (these tests are run by ` +
        '`cargo nextest run -p popdesk --test browser`, which starts popdesk and Dovecot)',
    );
  }
  return Object.fromEntries(names.map((n) => [n, process.env[n]]));
}

/** Rejects after `ms` with `what` in the message: every wait here is bounded. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` (async, returns truthy when done) every `everyMs` until `ms` pass. */
export async function pollUntil(check, ms, what, everyMs = 500) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * The UIDLs a POP3S server lists for a user. The session ends without QUIT, so even
 * in theory it cannot change the mailbox: this is the independent witness that
 * popdesk's "Test connection" left the server alone.
 */
export function pop3Uidls({ host, port, ca, user, password }) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host, port: Number(port), ca: fs.readFileSync(ca), servername: host });
      let buffer = '';
      const waiters = [];
      socket.setEncoding('utf8');
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        buffer += chunk;
        drain();
      });
      function drain() {
        while (waiters.length > 0) {
          const { multi, done } = waiters[0];
          const end = multi ? findMultiEnd(buffer) : buffer.indexOf('\r\n') + 2;
          if (end <= 1 || end === -1) return;
          const reply = buffer.slice(0, end);
          buffer = buffer.slice(end);
          waiters.shift();
          done(reply);
        }
      }
      function findMultiEnd(text) {
        if (text.startsWith('-ERR')) return text.indexOf('\r\n') + 2;
        const at = text.indexOf('\r\n.\r\n');
        return at === -1 ? -1 : at + 5;
      }
      const reply = (multi = false) => new Promise((done) => {
        waiters.push({ multi, done });
        drain();
      });
      const command = async (line, multi = false) => {
        socket.write(`${line}\r\n`);
        const text = await reply(multi);
        if (!text.startsWith('+OK')) throw new Error(`POP3 ${line.split(' ')[0]}: ${text.trim()}`);
        return text;
      };
      (async () => {
        const greeting = await reply();
        if (!greeting.startsWith('+OK')) throw new Error(`POP3 greeting: ${greeting}`);
        await command(`USER ${user}`);
        await command(`PASS ${password}`);
        const listing = await command('UIDL', true);
        socket.destroy(); // no QUIT: nothing this session did is committed
        return listing
          .split('\r\n')
          .slice(1, -2)
          .map((line) => line.split(' ')[1]);
      })().then(resolve, (e) => {
        socket.destroy();
        reject(e);
      });
    }),
    15_000,
    `POP3 UIDL on ${host}:${port}`,
  );
}

/**
 * Every visible form field without an accessible label: no `<label for>`, no wrapping
 * `<label>`, no aria-label or aria-labelledby with text. Returns descriptions of the
 * offenders (empty when all is well).
 */
export async function unlabelledFields(page) {
  return page.evaluate(() => {
    const skip = new Set(['hidden', 'submit', 'button', 'reset', 'image']);
    const fields = [...document.querySelectorAll('input, select, textarea')].filter((el) => {
      if (el.tagName === 'INPUT' && skip.has((el.getAttribute('type') || 'text').toLowerCase())) {
        return false;
      }
      const style = getComputedStyle(el);
      return el.getClientRects().length > 0 && style.visibility !== 'hidden';
    });
    const text = (el) => (el ? (el.textContent || '').trim() : '');
    return fields
      .filter((el) => {
        if ([...(el.labels || [])].some((l) => text(l) !== '')) return false;
        if ((el.getAttribute('aria-label') || '').trim() !== '') return false;
        const ids = (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
        return !ids.some((id) => text(document.getElementById(id)) !== '');
      })
      .map((el) => `<${el.tagName.toLowerCase()} name="${el.getAttribute('name') || ''}" id="${el.id}" type="${el.getAttribute('type') || ''}">`);
  });
}

/** Parses a Content-Security-Policy into directive → list of sources. */
export function parseCsp(header) {
  const directives = new Map();
  for (const part of (header || '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) directives.set(name.toLowerCase(), values);
  }
  return directives;
}

/**
 * What is wrong with a page's security headers (empty when nothing): a CSP that
 * allows inline script, no frame-ancestors 'none', no nosniff. Mail HTML (`mailHtml`)
 * is stricter on scripts (none at all) and may be framed by the app itself only.
 */
export function securityHeaderProblems(headers, { mailHtml = false } = {}) {
  const problems = [];
  const csp = headers['content-security-policy'];
  if (!csp) {
    problems.push('no Content-Security-Policy');
  } else {
    const directives = parseCsp(csp);
    const scripts = directives.get('script-src') ?? directives.get('default-src');
    if (!scripts) problems.push(`CSP limits no scripts: ${csp}`);
    else if (scripts.some((s) => ["'unsafe-inline'", "'unsafe-eval'", '*', 'data:', 'http:', 'https:'].includes(s))) {
      problems.push(`CSP script sources too wide: ${scripts.join(' ')}`);
    }
    if (mailHtml && !(scripts && scripts.length === 1 && scripts[0] === "'none'")) {
      problems.push(`mail HTML may run scripts from somewhere: ${csp}`);
    }
    const ancestors = (directives.get('frame-ancestors') ?? []).join(' ');
    const wanted = mailHtml ? "'self'" : "'none'";
    if (ancestors !== wanted && !(mailHtml && ancestors === "'none'")) {
      problems.push(`CSP frame-ancestors is not ${wanted}: ${csp}`);
    }
  }
  if ((headers['x-content-type-options'] || '').toLowerCase() !== 'nosniff') {
    problems.push('no X-Content-Type-Options: nosniff');
  }
  return problems;
}

/** Writes a screenshot (full page unless told otherwise) to the artifacts folder. */
export async function screenshot(page, dir, name, { fullPage = true } = {}) {
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage, animations: 'disabled' });
  return file;
}
