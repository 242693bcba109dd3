// Set or read a queue's global limits from Node BullMQ: node limits.mjs QUEUE [MAX DURATION_MS CONCURRENCY]
// Prints {max, duration, concurrency} as Node reads them afterwards.
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [queueName, max, duration, concurrency] = process.argv.slice(2);
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue(queueName, { connection });
if (max !== undefined) {
  await queue.setGlobalRateLimit(Number(max), Number(duration));
  await queue.setGlobalConcurrency(Number(concurrency));
}
const meta = await connection.hgetall(`bull:${queueName}:meta`);
console.log(
  JSON.stringify({ max: meta.max ?? null, duration: meta.duration ?? null, concurrency: await queue.getGlobalConcurrency() }),
);
await queue.close();
process.exit(0);
