import { Redis } from "ioredis";
import { redactUrl } from "./db/postgres.js";

/**
 * Connects to Redis and checks the connection with a PING, so an unreachable server fails at
 * start with the URL named instead of retrying silently forever.
 */
export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot reach Redis at ${redactUrl(url)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return redis;
}
