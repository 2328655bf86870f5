// Builds one ES module and one stylesheet with fixed names, plus gzip copies of both,
// which the server embeds (src/api/player.rs) and serves under /player/.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

import { defineConfig } from 'vite';

const OUT_DIR = 'dist';
const FILES = ['player.js', 'player.css'];

/** Writes `<file>.gz` beside each output, so the server never compresses per request. */
function gzipCopies() {
  return {
    name: 'panocast-gzip-copies',
    apply: 'build',
    closeBundle() {
      for (const file of FILES) {
        const path = resolve(OUT_DIR, file);
        const gz = gzipSync(readFileSync(path), { level: constants.Z_BEST_COMPRESSION });
        writeFileSync(`${path}.gz`, gz);
      }
    },
  };
}

export default defineConfig({
  base: '/player/',
  publicDir: false,
  plugins: [gzipCopies()],
  build: {
    outDir: OUT_DIR,
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: false,
    cssCodeSplit: false,
    chunkSizeWarningLimit: 2048,
    rollupOptions: {
      input: 'src/main.js',
      output: {
        entryFileNames: 'player.js',
        assetFileNames: 'player[extname]',
        inlineDynamicImports: true,
      },
    },
  },
});
