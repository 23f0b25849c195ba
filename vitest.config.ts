import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure code, mocks allowed) and `integration` (the real
// services, started by its global setup). Files run one at a time: some
// integration tests stop and start the platform under the others' feet.
export default defineConfig({
  test: {
    fileParallelism: false,
    // The JSON report is what .ci/run counts for its closing tally.
    reporters: ['default', ['json', { outputFile: '.local/test-results.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'lib/**/*.test.ts',
            'dataset/**/*.test.ts',
            'producer/**/*.test.ts',
            'platform/**/*.test.ts',
            'ops/**/*.test.ts',
            'dashboard/**/*.test.ts',
            'bench/**/*.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 240_000,
        },
      },
    ],
  },
});
