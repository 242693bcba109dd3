// Print Node BullMQ's view of a queue's workers: node getworkers.mjs QUEUE
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [queueName] = process.argv.slice(2);
const queue = new Queue(queueName, { connection: new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null }) });
console.log(JSON.stringify(await queue.getWorkers()));
await queue.close();
process.exit(0);
