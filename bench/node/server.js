// The benchmark's peer: node-oidc-provider set up as our IdP is for the benchmark, so that
// `make bench` can compare like with like (bench/peer.py starts it; bench/NOTES.md).
//
//   - one department: code flow, PKCE S256, client_secret_basic, ES256 ID tokens, opaque
//     access tokens, refresh tokens issued for "openid email" and rotated on every use;
//   - the same endpoint paths as ours (/authorize, /token, /userinfo, /jwks.json), so the load
//     generator's scenarios run unchanged;
//   - storage on one Redis (redis_adapter.js), a cluster of as many worker processes as cores
//     (node's cluster module), all sharing one signing key and one cookie key;
//   - accounts written into Redis by bench/peer.py (email, and a scrypt hash of the password),
//     signed in through a small interaction of our own (email and password, then consent).
//
// Settings come from the environment: PEER_ISSUER, PEER_PORT, PEER_REDIS_URL,
// PEER_REDIS_PREFIX, PEER_CLIENT (JSON: client_id, client_secret, redirect_uri, scope) and
// PEER_WORKERS (default: the number of cores).

import cluster from 'node:cluster';
import crypto from 'node:crypto';
import os from 'node:os';
import { promisify } from 'node:util';

import Provider from 'oidc-provider';

import { adapterFor, connect } from './redis_adapter.js';

const scrypt = promisify(crypto.scrypt);
const env = process.env;

function required(name) {
  if (!env[name]) {
    console.error(`bench/node/server.js: ${name} is not set (bench/peer.py sets it)`);
    process.exit(2);
  }
  return env[name];
}

// -- the primary: keys shared by every worker, then the workers ----------------------------------

function startPrimary() {
  const count = Number(env.PEER_WORKERS) || os.availableParallelism?.() || os.cpus().length;
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256' };
  jwk.kid = crypto.createHash('sha256').update(jwk.x + jwk.y).digest('base64url').slice(0, 16);
  const shared = {
    PEER_SIGNING_JWK: JSON.stringify(jwk),
    PEER_COOKIE_KEY: crypto.randomBytes(32).toString('base64url'),
  };
  let stopping = false;
  for (let i = 0; i < count; i += 1) {
    cluster.fork(shared);
  }
  cluster.on('exit', (worker, code) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} stopped (exit ${code}); stopping the peer`);
      process.exit(1);
    }
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) {
      worker.kill('SIGTERM');
    }
    setTimeout(() => process.exit(0), 5000).unref();
    cluster.disconnect(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`node-oidc-provider peer: ${count} workers on port ${required('PEER_PORT')}`);
}

// -- a worker: the provider ---------------------------------------------------------------------

function configuration(redis, client) {
  return {
    adapter: adapterFor(redis),
    clients: [
      {
        client_id: client.client_id,
        client_secret: client.client_secret,
        redirect_uris: [client.redirect_uri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        scope: client.scope,
      },
    ],
    jwks: { keys: [JSON.parse(required('PEER_SIGNING_JWK'))] },
    cookies: {
      keys: [required('PEER_COOKIE_KEY')],
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'email'],
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { methods: ['S256'], required: () => true },
    routes: { authorization: '/authorize', userinfo: '/userinfo', jwks: '/jwks.json' },
    // As ours: a refresh token with every code (no offline_access needed), rotated on every use.
    issueRefreshToken: async (ctx, c) => c.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // The benchmark mints codes before it redeems them (ours is configured the same way).
    ttl: {
      AuthorizationCode: 600,
      AccessToken: 3600,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
    },
    findAccount: async (ctx, sub) => {
      const stored = await redis.get(`Account:${sub}`);
      if (!stored) {
        return undefined;
      }
      const account = JSON.parse(stored);
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          email: account.email,
          email_verified: account.email_verified,
        }),
      };
    },
  };
}

async function passwordMatches(account, password) {
  // bench/peer.py stores scrypt(N=2^14, r=8, p=1) as "salt$hash", both base64url.
  const [salt, expected] = account.password.split('$');
  const derived = await scrypt(password, Buffer.from(salt, 'base64url'), 32);
  return crypto.timingSafeEqual(derived, Buffer.from(expected, 'base64url'));
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65536) {
      return new URLSearchParams();
    }
  }
  return new URLSearchParams(body);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(ctx, status, title, action, fields) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = `<!doctype html><title>${escapeHtml(title)}</title>
<form method="post" action="${escapeHtml(action)}">${fields}<button>Continue</button></form>`;
}

// The sign-in and consent pages: email and password, then "allow" for the department's scope.
function interactions(provider, redis) {
  return async (ctx, next) => {
    const match = ctx.path.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/confirm)?$/);
    if (!match) {
      return next();
    }
    const [, uid, step] = match;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) {
      ctx.status = 400;
      ctx.body = 'This sign-in has expired: start again from the department.';
      return undefined;
    }
    const { prompt, params, session } = details;
    if (ctx.method === 'GET' && !step) {
      if (prompt.name === 'login') {
        return page(ctx, 200, 'Sign in', `/interaction/${uid}/login`,
          '<input name="email"><input name="password" type="password">');
      }
      return page(ctx, 200, 'Allow', `/interaction/${uid}/confirm`, '');
    }
    if (ctx.method !== 'POST') {
      return next();
    }
    if (step === '/login' && prompt.name === 'login') {
      const form = await readForm(ctx.req);
      const sub = await redis.get(`AccountByEmail:${form.get('email') || ''}`);
      const stored = sub && (await redis.get(`Account:${sub}`));
      if (!stored || !(await passwordMatches(JSON.parse(stored), form.get('password') || ''))) {
        return page(ctx, 400, 'Sign in: the email or password is wrong',
          `/interaction/${uid}/login`, '<input name="email"><input name="password" type="password">');
      }
      return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: sub } },
        { mergeWithLastSubmission: false });
    }
    if (step === '/confirm' && prompt.name === 'consent') {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) {
        grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      }
      if (prompt.details.missingOIDCClaims) {
        grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      }
      const grantId = await grant.save();
      const consent = details.grantId ? {} : { grantId };
      return provider.interactionFinished(ctx.req, ctx.res, { consent },
        { mergeWithLastSubmission: true });
    }
    ctx.status = 400;
    ctx.body = `This step (${prompt.name}) does not take that form.`;
    return undefined;
  };
}

function startWorker() {
  const redis = connect(required('PEER_REDIS_URL'), env.PEER_REDIS_PREFIX || 'oidc-bench:');
  const client = JSON.parse(required('PEER_CLIENT'));
  const provider = new Provider(required('PEER_ISSUER'), configuration(redis, client));
  provider.use(interactions(provider, redis));
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  const server = provider.listen(Number(required('PEER_PORT')), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => redis.quit().finally(() => process.exit(0))));
}

if (cluster.isPrimary) {
  startPrimary();
} else {
  startWorker();
}
