// Preloaded (`node --import`) for the two seed-002 servers only.
//
// Seed 002's app.js does `import express from "express"` and then
// `app.use("*", ...)`, which Express 4 accepts and Express 5 rejects at startup
// (path-to-regexp 8 wants a named wildcard). The bench's other servers use
// Express 5 (bench/package.json: "express"), so Express 4 is installed under an
// alias ("express4": "npm:express@4.21.2") and this hook resolves the seed
// files' "express" to it. The seed files thus keep their express import line as
// the tutorial wrote it; nothing else is affected.

import { register } from "node:module";

const hook = `
const SEED = /\\/bench\\/servers\\/seed002-[a-z]+\\.mjs$/;
export async function resolve(specifier, context, nextResolve) {
  if (specifier === "express" && SEED.test(context.parentURL ?? "")) {
    return nextResolve("express4", context);
  }
  return nextResolve(specifier, context);
}
`;

register(`data:text/javascript,${encodeURIComponent(hook)}`);
