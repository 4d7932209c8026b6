// node-oidc-provider's storage on Redis, after the project's documented example adapter
// (example/adapters/redis.js in node-oidc-provider 8.x), for ioredis 5 and without lodash.
//
// Each model instance is one key, `<prefix><Model>:<id>`, expiring with the instance. The models
// that are used once (codes, refresh tokens) are a hash whose `consumed` field marks the use;
// tokens issued under one grant are listed under `grant:<grantId>` so that revoking the grant
// deletes them all.

import Redis from 'ioredis';

const grantable = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

const consumable = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

const grantKeyFor = (id) => `grant:${id}`;
const userCodeKeyFor = (userCode) => `userCode:${userCode}`;
const uidKeyFor = (uid) => `uid:${uid}`;

// One connection per worker process, shared by every model's adapter and the accounts.
export function connect(url, prefix) {
  return new Redis(url, { keyPrefix: prefix, enableAutoPipelining: true });
}

export function adapterFor(client) {
  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (consumable.has(this.name)) {
        multi.hset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (expiresIn) {
        multi.expire(key, expiresIn);
      }
      if (grantable.has(this.name) && payload.grantId) {
        const grantKey = grantKeyFor(payload.grantId);
        multi.rpush(grantKey, key);
        const ttl = await client.ttl(grantKey);
        if (expiresIn > ttl) {
          multi.expire(grantKey, expiresIn);
        }
      }
      if (payload.userCode) {
        multi.set(userCodeKeyFor(payload.userCode), id, 'EX', expiresIn);
      }
      if (payload.uid) {
        multi.set(uidKeyFor(payload.uid), id, 'EX', expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      if (!id) {
        return undefined;
      }
      if (consumable.has(this.name)) {
        const data = await client.hgetall(this.key(id));
        if (!data || !data.payload) {
          return undefined;
        }
        const { payload, ...rest } = data;
        return { ...rest, ...JSON.parse(payload) };
      }
      const data = await client.get(this.key(id));
      return data ? JSON.parse(data) : undefined;
    }

    async findByUid(uid) {
      return this.find(await client.get(uidKeyFor(uid)));
    }

    async findByUserCode(userCode) {
      return this.find(await client.get(userCodeKeyFor(userCode)));
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const multi = client.multi();
      // The list holds the keys as this adapter names them; ioredis adds the prefix.
      const tokens = await client.lrange(grantKeyFor(grantId), 0, -1);
      for (const token of tokens) {
        multi.del(token);
      }
      multi.del(grantKeyFor(grantId));
      await multi.exec();
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }
  };
}
