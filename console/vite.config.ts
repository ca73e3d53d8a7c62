import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The web console, bundled at build time into dist/console and served by the gateway (src/console/static-files.ts).
 * Preact for the views; no CDN, nothing inline (the gateway's Content-Security-Policy allows only 'self').
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: true,
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
});
