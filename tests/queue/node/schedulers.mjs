// Node BullMQ's side of tests/queue/test_node_schedulers.py: job schedulers made, listed and run by Node.
//   node schedulers.mjs upsert QUEUE ID EVERY_MS NAME DATA_JSON     prints the first run's job id
//   node schedulers.mjs upsert-cron QUEUE ID PATTERN TZ NAME        prints the first run's job id
//   node schedulers.mjs list QUEUE                                  prints getJobSchedulers() as JSON
//   node schedulers.mjs work QUEUE SECONDS                          runs a Worker, prints the ids it completed
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const [command, queueName, ...args] = process.argv.slice(2);
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });

async function withQueue(use) {
  const queue = new Queue(queueName, { connection });
  try {
    return await use(queue);
  } finally {
    await queue.close();
  }
}

async function work(seconds) {
  const done = [];
  const worker = new Worker(queueName, async (job) => ({ node: true, id: job.id }), { connection });
  worker.on("completed", (job) => done.push(job.id));
  worker.on("error", (err) => console.error(`worker error: ${err.message}`));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  await worker.close();
  return done;
}

let output;
if (command === "upsert") {
  const [id, every, name, data] = args;
  output = await withQueue(async (queue) =>
    (await queue.upsertJobScheduler(id, { every: Number(every) }, { name, data: JSON.parse(data) })).id);
} else if (command === "upsert-cron") {
  const [id, pattern, tz, name] = args;
  output = await withQueue(async (queue) => (await queue.upsertJobScheduler(id, { pattern, tz }, { name })).id);
} else if (command === "list") {
  output = JSON.stringify(await withQueue((queue) => queue.getJobSchedulers()));
} else if (command === "work") {
  output = JSON.stringify(await work(Number(args[0])));
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
console.log(output);
await connection.quit();
