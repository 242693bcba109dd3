// Drive Bull Board's JSON API in-process (no HTTP server): node board.mjs QUEUE REQUESTS_JSON
// REQUESTS_JSON is a list of [method, path (with ?query), body?]; prints a list of {status, body}, one per request.
// Bull Board is mounted through a server adapter; this one only collects the API routes and calls them as
// @bull-board/express would, with the request's params, query and body.
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { Queue } from "bullmq";
import IORedis from "ioredis";

class InProcessAdapter {
  routes = [];
  setQueues(queues) {
    this.queues = queues;
    return this;
  }
  setViewsPath() {
    return this;
  }
  setStaticPath() {
    return this;
  }
  setEntryRoute() {
    return this;
  }
  setErrorHandler(handler) {
    this.errorHandler = handler;
    return this;
  }
  setApiRoutes(routes) {
    this.routes = routes;
    return this;
  }
  setUIConfig(config) {
    this.uiConfig = config;
    return this;
  }

  async call(method, url, body = {}) {
    const [path, search = ""] = url.split("?");
    for (const route of this.routes) {
      const methods = [route.method].flat();
      for (const pattern of [route.route].flat()) {
        const names = [];
        const regex = new RegExp(`^${pattern.replace(/:(\w+)/g, (_, name) => (names.push(name), "([^/]+)"))}$`);
        const found = methods.includes(method) && path.match(regex);
        if (!found) continue;
        const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
        const query = Object.fromEntries(new URLSearchParams(search));
        const request = { queues: this.queues, uiConfig: this.uiConfig, params, query, body, headers: {} };
        try {
          const response = await route.handler(request);
          return { status: response.status ?? 200, body: response.body ?? null };
        } catch (error) {
          const response = this.errorHandler(error);
          return { status: response.status ?? 500, body: response.body ?? String(error) };
        }
      }
    }
    return { status: 404, body: `no route for ${method} ${path}` };
  }
}

const [queueName, requests] = process.argv.slice(2);
const connection = new IORedis(process.env.REDIS_URL, { maxRetriesPerRequest: null });
const queue = new Queue(queueName, { connection });
const adapter = new InProcessAdapter();
createBullBoard({ queues: [new BullMQAdapter(queue)], serverAdapter: adapter, options: { uiBasePath: "." } });
const responses = [];
for (const [method, path, body] of JSON.parse(requests)) {
  responses.push(await adapter.call(method, path, body));
}
console.log(JSON.stringify(responses));
await queue.close();
process.exit(0);
