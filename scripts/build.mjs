/**
 * `npm run build`: bundles src/cli.ts (and the rules reload's worker thread) into dist/ with
 * esbuild (tsc only typechecks).
 *
 * Why a bundle: a Kube Sentinel start is mostly module loading — hundreds of files resolved, read
 * and compiled one by one. One file for the receiver, plus a chunk per lazily loaded backend
 * (ioredis with --redis-url, @kubernetes/client-node with a cluster), starts markedly faster
 * (bench/README.md, scenario 5), which is what scale-from-zero waits for.
 *
 * pino-pretty stays in node_modules, imported only on a terminal, as an in-process stream (pino's
 * worker-thread transports load files by path, which a bundle does not have). Chunks sit next to
 * cli.js, so paths relative to import.meta.url (../openapi.yaml) hold for every output file.
 */

import { chmodSync, rmSync } from 'node:fs';
import { build } from 'esbuild';
import { buildPage } from './build-page.mjs';
import { nodeBundleOptions } from './bundle-options.mjs';

/**
 * client-node's generated models (2,500 files of class declarations, no top-level code) reach
 * KubeConfig through its generated-API index; declared free of side effects, the ones nothing
 * uses are left out of the bundle: less to compile at every start with a cluster.
 * A model that is used is kept, as always.
 */
const pureGeneratedModels = {
  name: 'client-node-models-without-side-effects',
  setup(builder) {
    builder.onResolve({ filter: /^\.\.?\// }, async (args) => {
      if (
        args.pluginData === 'resolving' ||
        !/[\\/]@kubernetes[\\/]client-node[\\/]dist[\\/]gen[\\/]/.test(args.importer)
      )
        return undefined;
      const resolved = await builder.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'resolving',
      });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      return { path: resolved.path, sideEffects: !/[\\/]gen[\\/]models[\\/]/.test(resolved.path) };
    });
  },
};

rmSync('dist', { recursive: true, force: true });
await build({
  ...nodeBundleOptions,
  // The reload's worker thread (src/rules/off-thread.ts) loads dist/load-worker.js by path.
  entryPoints: { cli: 'src/cli.ts', 'load-worker': 'src/rules/load-worker.ts' },
  outdir: 'dist',
  splitting: true,
  // pino-pretty: loaded only for a person at a terminal (src/logging.ts createLogger).
  external: [...nodeBundleOptions.external, 'pino-pretty'],
  sourcemap: 'linked',
  chunkNames: '[name]-[hash]',
  alias: { 'whatwg-url': './scripts/shims/whatwg-url.cjs' },
  plugins: [pureGeneratedModels],
});
chmodSync('dist/cli.js', 0o755);
// The page GET / serves (src/routes/page.ts reads it from beside the bundle).
await buildPage('dist/page.html');
