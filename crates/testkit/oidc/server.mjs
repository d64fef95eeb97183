// A real OAuth2/OpenID provider (npm oidc-provider) on loopback for popdesk's OAuth2 tests,
// started by crates/testkit/src/oidc.rs as `node server.mjs CONFIG.json`.
//
// Tests of an OAuth2 client are only worth something against a provider that behaves like
// the real ones: refresh tokens that rotate and die when reused, device codes that are
// pending until a person approves them, codes that work once, PKCE enforced. A hand-written
// token endpoint would agree with whoever wrote it, so this runs oidc-provider, configured
// like a mail provider: opaque access tokens for one resource (`urn:popdesk:mail`) that
// Dovecot checks by introspection, with the POP3 user name in a `username` claim.
//
// CONFIG.json (written by the Rust fixture):
//   { "access_token_ttl_secs": 20,
//     "clients": [{ "client_id", "client_secret"?, "redirect_uris", "grant_types",
//                   "token_endpoint_auth_method", "mailbox_user"? }],
//     "scopes": ["mail", ...],            // resource scopes always accepted
//     "events_file": "/tmp/.../events.jsonl",
//     "ready_file": "/tmp/.../ready" }    // gets the port once the provider answers
//
// Besides oidc-provider's own routes it serves, on loopback only, one admin route for tests:
//   POST /_testkit/revoke-grants?account=NAME  -> revokes every grant of that account.

import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// The one resource server every token is for. A URN, not a URL: it names the mailbox
// service, and oidc-provider only needs an absolute URI.
const RESOURCE = 'urn:popdesk:mail';
// Scopes the resource accepts whatever the config says: the ones real providers use for
// POP3 (Microsoft, Google) and a plain one.
const MAIL_SCOPES = [
  'mail',
  'pop',
  'https://outlook.office.com/POP.AccessAsUser.All',
  'https://outlook.office365.com/POP.AccessAsUser.All',
  'https://mail.google.com/',
];
const ttl = config.access_token_ttl_secs;
const mailboxUsers = new Map(
  config.clients.filter((c) => c.mailbox_user).map((c) => [c.client_id, c.mailbox_user]),
);

// --- storage -------------------------------------------------------------------------
// A plain in-memory adapter of our own (oidc-provider's built-in one is not exported), so
// the admin route can find an account's grants and everything issued under them.
const store = new Map(); // `${model}:${id}` -> { payload, expiresAt }
const key = (model, id) => `${model}:${id}`;

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  async upsert(id, payload, expiresIn) {
    store.set(key(this.model, id), {
      payload,
      expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
    });
  }

  async find(id) {
    const entry = store.get(key(this.model, id));
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      store.delete(key(this.model, id));
      return undefined;
    }
    return entry.payload;
  }

  async findBy(field, value) {
    for (const [k, entry] of store) {
      if (k.startsWith(`${this.model}:`) && entry.payload[field] === value) {
        return this.find(k.slice(this.model.length + 1));
      }
    }
    return undefined;
  }

  findByUserCode(userCode) {
    return this.findBy('userCode', userCode);
  }

  findByUid(uid) {
    return this.findBy('uid', uid);
  }

  async consume(id) {
    const entry = store.get(key(this.model, id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(key(this.model, id));
  }

  async revokeByGrantId(grantId) {
    for (const [k, entry] of store) {
      if (k.startsWith(`${this.model}:`) && entry.payload.grantId === grantId) store.delete(k);
    }
  }
}

// Removes every grant of `account` and every token, code and session issued under them, as
// a user revoking the app's access at the provider does. Returns how many grants went.
function revokeGrantsOf(account) {
  const grantIds = [];
  for (const [k, entry] of store) {
    if (k.startsWith('Grant:') && entry.payload.accountId === account) {
      grantIds.push(k.slice('Grant:'.length));
      store.delete(k);
    }
  }
  for (const [k, entry] of store) {
    if (grantIds.includes(entry.payload.grantId)) store.delete(k);
  }
  return grantIds.length;
}

// --- what the token endpoint did, for the tests ---------------------------------------
function recordTokenEvent(ctx, outcome) {
  const line = JSON.stringify({
    grant_type: ctx.oidc?.params?.grant_type ?? null,
    outcome,
    client_id: ctx.oidc?.client?.clientId ?? null,
  });
  appendFileSync(config.events_file, `${line}\n`);
}

// --- the provider ---------------------------------------------------------------------
// The issuer must name the port, so the HTTP server listens first (on a port the kernel
// picks, which no other process can have taken) and the provider is made afterwards.
let handler;
const server = createServer((req, res) => {
  if (req.url.startsWith('/_testkit/')) {
    adminRoute(req, res);
    return;
  }
  handler(req, res);
});

function adminRoute(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'POST' && url.pathname === '/_testkit/revoke-grants') {
    const account = url.searchParams.get('account');
    const revoked = account ? revokeGrantsOf(account) : 0;
    console.log(`testkit: revoked ${revoked} grant(s) of ${account}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ revoked }));
    return;
  }
  res.writeHead(404);
  res.end();
}

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret ?? undefined,
      redirect_uris: c.redirect_uris,
      grant_types: c.grant_types,
      // Code flow needs `code`; device and client-credentials clients need none.
      response_types: c.grant_types.includes('authorization_code') ? ['code'] : [],
      token_endpoint_auth_method: c.token_endpoint_auth_method,
    })),
    // Signed cookies for the interaction pages; a fixed key is fine for a test provider.
    cookies: { keys: ['popdesk-testkit'] },
    // Any account name exists: devInteractions' login accepts any name and password.
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    // OpenID scopes. Resource (mail) scopes are the resource server's, below.
    scopes: ['openid', 'offline_access'],
    pkce: { required: () => true, methods: ['S256'] },
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      AuthorizationCode: 60,
      DeviceCode: 600,
      Grant: 14 * 24 * 3600,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
    },
    // Every refresh returns a new refresh token, and reusing a consumed one revokes the
    // whole grant (oidc-provider's reuse detection), as Microsoft's and others' do.
    rotateRefreshToken: true,
    // A refresh token for every client allowed the refresh_token grant, whether or not it
    // asked for offline_access (oidc-provider drops offline_access from an authorization
    // request without prompt=consent, and real mail providers issue one anyway).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Tokens live by their own TTLs, not by the browser session that approved them.
    expiresWithSession: async () => false,
    // Consent is automatic: the grant gets whatever was requested, so the scripted flows
    // need only the login step (and, for the device flow, the code confirmation).
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (!grant) {
        grant = new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client.clientId,
          accountId: ctx.oidc.session.accountId,
        });
      }
      const oidcScopes = [...ctx.oidc.requestParamOIDCScopes];
      if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
      for (const [indicator, resourceServer] of Object.entries(ctx.oidc.resourceServers)) {
        const scopes = [...ctx.oidc.requestParamScopes].filter((s) => resourceServer.scopes.has(s));
        if (scopes.length) grant.addResourceScope(indicator, scopes.join(' '));
      }
      await grant.save();
      return grant;
    },
    // The POP3 user the token is for, under the name Dovecot's `username_attribute`
    // reads from the introspection answer: the signed-in account, or for a
    // client-credentials token the mailbox configured for that client.
    extraTokenClaims: async (_ctx, token) => {
      const username = token.accountId ?? mailboxUsers.get(token.clientId);
      return username ? { username } : undefined;
    },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: {
        enabled: true,
        // A marker the fixture looks for to know the approval went through.
        successSource: async (ctx) => {
          ctx.body = '<!DOCTYPE html><title>Sign-in Success</title><p id="testkit-device-approved">approved</p>';
        },
      },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        // Refreshes and code exchanges without a `resource` parameter keep the granted one.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => {
          if (indicator !== RESOURCE) {
            throw new Provider.errors.InvalidTarget(`unknown resource ${indicator}`);
          }
          // Arbitrary scope names a client asks for are accepted, on top of the known ones,
          // so the code under test may use any provider's scope names.
          const requested = (ctx.oidc.params?.scope ?? '')
            .split(' ')
            .filter((s) => s && s !== 'openid' && s !== 'offline_access');
          const scope = [...new Set([...MAIL_SCOPES, ...config.scopes, ...requested])].join(' ');
          // Opaque, so the only way to check one is introspection, as Dovecot does.
          return { scope, accessTokenFormat: 'opaque', accessTokenTTL: ttl };
        },
      },
    },
  });

  provider.on('grant.success', (ctx) => recordTokenEvent(ctx, 'ok'));
  provider.on('grant.error', (ctx, error) => recordTokenEvent(ctx, error.error ?? 'server_error'));
  provider.on('server_error', (_ctx, error) => console.error('testkit: server_error', error));
  provider.on('grant.revoked', (_ctx, grantId) => console.log(`testkit: grant ${grantId} revoked`));

  handler = provider.callback();
  writeFileSync(config.ready_file, String(port));
  console.log(`testkit: oidc-provider listening on ${issuer}`);
});
