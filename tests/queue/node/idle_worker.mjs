// Run a named Node BullMQ worker until terminated: node idle_worker.mjs QUEUE NAME; prints "ready" once its
// connections are up. Its handler returns {node: true}.
import { Worker } from "bullmq";
import IORedis from "ioredis";

const [queueName, name] = process.argv.slice(2);
const worker = new Worker(queueName, async () => ({ node: true }), {
  connection: new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null }),
  name,
});
await worker.waitUntilReady();
await new Promise((resolve) => setTimeout(resolve, 300)); // the blocking connection names itself on connect
console.log("ready");
process.on("SIGTERM", async () => {
  await Promise.race([worker.close(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
  process.exit(0);
});
