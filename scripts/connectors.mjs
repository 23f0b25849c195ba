#!/usr/bin/env node
// npm run connectors:apply: PUT every connect/*.json, wait until RUNNING.
import { config } from '#lib/config.mjs';
import { main } from '#lib/errors.mjs';
import { applyConnectors } from '../ops/connectors.mjs';

await main(async () => {
  for (const r of await applyConnectors(config)) console.log(`${r.name}: RUNNING (${r.detail})`);
});
