/**
 * The ceiling for this stack: a bare fastify 5 process whose one POST route parses the same JSON
 * body Kube Sentinel gets and answers 200 `{}`. No schema, no logger, no plugins: whatever Kube
 * Sentinel does beyond this is its own cost. The runner compiles this file to JavaScript and runs
 * it with plain node, so that the cold-start comparison has no TypeScript loader on either side.
 *
 *   node bench/results/build/baseline-server.js [--port N]
 *
 * Prints one JSON line `{"url": ..., "msg": "baseline listening"}` once it listens.
 */
import Fastify from 'fastify';

const portFlag = process.argv.indexOf('--port');
const port = portFlag >= 0 ? Number(process.argv[portFlag + 1]) : 0;

const app = Fastify({ bodyLimit: 1024 * 1024 });
// One handler behind both intake paths, so the load generator can send the same requests here.
app.route({
  method: 'POST',
  url: '/*',
  handler: async () => ({}),
});

const url = await app.listen({ port, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ url, msg: 'baseline listening' })}\n`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
