import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The embedded ClickHouse engine allows one data directory per process: every test
    // file runs in a process of its own, with a directory of its own.
    pool: 'forks',
    isolate: true,
    // The JSON report is what CI reads its closing count from.
    reporters: ['default', ['json', { outputFile: 'test-output/vitest.json' }]],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            'packages/*/src/**/*.test.ts',
            'services/*/src/**/*.test.ts',
            'apps/*/src/**/*.test.ts',
          ],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['tests/**/*.test.ts'],
          globalSetup: ['tests/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
