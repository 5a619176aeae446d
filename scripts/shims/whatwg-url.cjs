// Stand-in for the whatwg-url package in the bundle (scripts/build.mjs). Its only user,
// node-fetch 2 (through @kubernetes/client-node), takes node's own URL first
// (`Url.URL || whatwgUrl.URL`), so the package is never used on Node ≥ 10 — but importing it
// evaluates tr46's Unicode tables at every start with a cluster configured.
'use strict';
module.exports = { URL: globalThis.URL, URLSearchParams: globalThis.URLSearchParams };
