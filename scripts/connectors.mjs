#!/usr/bin/env node
// npm run connectors:apply: PUT every connect/*.json, wait until RUNNING.
import { config } from './lib/env.mjs';
import { applyConnectors } from './lib/connectors.mjs';
import { fail } from './lib/cli.mjs';

try {
  for (const r of await applyConnectors(config)) console.log(`${r.name}: RUNNING (${r.detail})`);
} catch (err) {
  fail(err);
}
