// Brings the platform up once for all integration tests (idempotent: a
// running platform is reused) and leaves it running for the next command.
import { execFileSync } from 'node:child_process';
import { config, ROOT } from '#lib/config.mjs';
import { up } from '../../platform/lifecycle.mjs';

export default async function setup() {
  // The tests run the CLIs as users do, from dist/: build it from the sources under test.
  execFileSync(process.execPath, [`${ROOT}/node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  await up(config, { log: (line) => console.log(`[platform] ${line}`) });
}
