// Run a Node BullMQ worker (concurrency 4) until terminated: node mixed_worker.mjs QUEUE RUNS_KEY
// Each job pushes "node:<job id>" onto the list RUNS_KEY, waits 2 ms and returns; prints "ready" once connected.
import { Worker } from "bullmq";
import IORedis from "ioredis";

const [queueName, runsKey] = process.argv.slice(2);
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const worker = new Worker(
  queueName,
  async (job) => {
    await connection.rpush(runsKey, `node:${job.id}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
    return { node: true };
  },
  { connection, concurrency: 4, name: "mixed" },
);
await worker.waitUntilReady();
console.log("ready");
process.on("SIGTERM", async () => {
  await Promise.race([worker.close(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
  process.exit(0);
});
