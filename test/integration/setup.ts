// Brings the platform up once for all integration tests (idempotent: a
// running platform is reused) and leaves it running for the next command.
import { config } from '../../scripts/lib/env.mjs';
import { up } from '../../scripts/lib/platform.mjs';

export default async function setup() {
  await up(config, { log: (line) => console.log(`[platform] ${line}`) });
}
