import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end tests build network namespaces and start daemons; they need time, not retries.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Namespace tests share the kernel's network state; files run one at a time to keep them apart.
    fileParallelism: false,
  },
});
