// Fail jobs with a Node BullMQ worker until one has failed for good: node fail.mjs QUEUE
// Each attempt throws Error("node boom <attempt>"); prints {id, attemptsMade} of the job that failed for good.
import { Worker } from "bullmq";
import IORedis from "ioredis";

const [queueName] = process.argv.slice(2);
const timer = setTimeout(() => {
  console.error("no job failed for good within 20 s");
  process.exit(2);
}, 20_000);
const worker = new Worker(
  queueName,
  async (job) => {
    throw new Error(`node boom ${job.attemptsMade + 1}`);
  },
  { connection: new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null }) },
);
worker.on("failed", async (job) => {
  if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
    console.log(JSON.stringify({ id: job.id, attemptsMade: job.attemptsMade }));
    clearTimeout(timer);
    await Promise.race([worker.close(), new Promise((resolve) => setTimeout(resolve, 3_000))]);
    process.exit(0);
  }
});
