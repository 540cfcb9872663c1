import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Paths are resolved from this file, not the working directory, so the build gives the
// same output from the package, the repository root or a test.
export default defineConfig({
  root: here('web'),
  // Relative asset URLs: the page works wherever the server mounts it.
  base: './',
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    // ECharts is most of the bundle; a single chunk keeps the page one request deep.
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `npm run dev -w @touchstream/dashboard` against a `touchstream start` on port 3000.
    proxy: { '/v1': 'http://127.0.0.1:3000' },
  },
});
