// Add one job with Node BullMQ: node add.mjs QUEUE NAME DATA_JSON; prints the job id.
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [queueName, name, data] = process.argv.slice(2);
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue(queueName, { connection });
const job = await queue.add(name, JSON.parse(data));
console.log(job.id);
await queue.close();
await connection.quit();
