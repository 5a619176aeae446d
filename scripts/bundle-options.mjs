/**
 * How a node program is bundled: for Kube Sentinel's dist/ (scripts/build.mjs), and for the
 * bench's bundled fastify baseline (bench/run.ts), so that the two are bundled the same way.
 */
export const nodeBundleOptions = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true, // identifiers are not renamed: stack traces and profiles keep their names
  logLevel: 'warning',
  // fastify loads these only for what Kube Sentinel does not use (Ajv and fast-json-stringify,
  // replaced by TypeBox's compiler; inject, for tests): left out, they cost no parsing at start.
  external: ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request'],
  // Bundled CommonJS packages call require() for node's built-ins and read __dirname (ioredis,
  // building an error's stack); an ES module has neither of its own.
  banner: {
    js: [
      "import { createRequire as __ksCreateRequire } from 'node:module';",
      "import { dirname as __ksDirname } from 'node:path';",
      "import { fileURLToPath as __ksFileURLToPath } from 'node:url';",
      'const require = __ksCreateRequire(import.meta.url);',
      'const __filename = __ksFileURLToPath(import.meta.url);',
      'const __dirname = __ksDirname(__filename);',
    ].join('\n'),
  },
};
