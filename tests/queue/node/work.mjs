// Process one job with a Node BullMQ Worker, then exit: node work.mjs QUEUE
// The handler returns {node: true, name, data}; the job is printed as JSON once completed.
import { Worker } from "bullmq";
import IORedis from "ioredis";

const [queueName] = process.argv.slice(2);
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const timer = setTimeout(() => {
  console.error("no job completed within 20 s");
  process.exit(2);
}, 20_000);
const worker = new Worker(queueName, async (job) => ({ node: true, name: job.name, data: job.data }), {
  connection,
});
worker.on("failed", (job, err) => console.error(`job ${job?.id} failed: ${err.message}`));
worker.on("completed", async (job) => {
  console.log(JSON.stringify({ id: job.id, name: job.name, data: job.data }));
  clearTimeout(timer);
  await Promise.race([worker.close(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  process.exit(0);
});
