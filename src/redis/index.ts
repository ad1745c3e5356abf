/**
 * sockeye/redis: the Redis broker (docs/api.md#redis), an entry of its own so
 * that the core never loads node-redis (an optional peer dependency: only a
 * program that imports this entry needs it installed).
 */
export { createRedisBroker, RedisBroker, type RedisBrokerOptions, type RedisBrokerState, type RedisClientSettings } from './redis-broker.js';
