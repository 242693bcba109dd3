// A Node BullMQ Worker for the benchmarks: node drain_worker.mjs QUEUE CONCURRENCY HANDLER
// HANDLER is `noop` (returns null) or `start` (returns its start time in seconds, for pickup latency).
// Prints "ready" once its connections are up; SIGTERM closes it.
import { Worker } from "bullmq";
import IORedis from "ioredis";
import { performance } from "node:perf_hooks";

const [queueName, concurrency, handler] = process.argv.slice(2);
// The embedded default's `unix://:password@/path/redis.sock?db=0` (no host: not a WHATWG URL), or a `redis://` URL.
const unix = process.env.REDIS_URL.match(/^unix:\/\/(?::([^@]*)@)?([^?]*)(?:\?db=(\d+))?$/);
const connection = unix
  ? new IORedis({
      path: unix[2],
      password: unix[1] ? decodeURIComponent(unix[1]) : undefined,
      db: Number(unix[3] || 0),
      maxRetriesPerRequest: null,
    })
  : new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const body =
  handler === "start" ? async () => (performance.timeOrigin + performance.now()) / 1000 : async () => null;
const worker = new Worker(queueName, body, { connection, concurrency: Number(concurrency) });
await worker.waitUntilReady();
console.log("ready");
process.on("SIGTERM", async () => {
  await Promise.race([worker.close(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
  process.exit(0);
});
