// One build for everything the server embeds:
//   - the 360 player: `dist/player.js` + `dist/player.css`, fixed names (src/api/player.rs
//     embeds them and versions them with ?v=), loaded on demand by pages that play;
//   - the web app: portal (`/`), console (`/admin`) and API docs (`/api/v1/docs`), as
//     content-hashed files under `dist/web/` (src/api/web.rs embeds the whole folder
//     through build.rs and caches them immutable) plus `dist/web/entries.json`, which
//     names each page's script and stylesheets for the server-rendered HTML shell.
// Every output gets a `.gz` copy, so the server never compresses per request.
// Before bundling, the API paths the web app calls are checked against the committed
// OpenAPI document (`openapi.json`, kept current by a Rust test), so the front end fails
// to build when it names a route the server does not have.
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

import { defineConfig } from 'vite';

import { checkApiPaths } from './scripts/check-api-paths.mjs';

const OUT_DIR = 'dist';
const WEB = 'web';
const GZIP = /\.(js|css|json|svg|html|map)$/;

/** Every file under `dir`, recursively. */
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** Writes `<file>.gz` beside each output, and prints the portal's first-page weight. */
function gzipCopies() {
  return {
    name: 'panocast-gzip-copies',
    apply: 'build',
    closeBundle() {
      const sizes = new Map();
      for (const path of walk(resolve(OUT_DIR))) {
        if (!GZIP.test(path) || path.endsWith('.gz')) continue;
        const gz = gzipSync(readFileSync(path), { level: constants.Z_BEST_COMPRESSION });
        writeFileSync(`${path}.gz`, gz);
        sizes.set(path.slice(resolve(OUT_DIR).length + 1), gz.length);
      }
      const entries = JSON.parse(readFileSync(resolve(OUT_DIR, WEB, 'entries.json'), 'utf8'));
      const portal = entries.portal.scripts.reduce((sum, f) => sum + (sizes.get(f) || 0), 0);
      // The first page of the portal: its entry and the chunks it imports statically,
      // not the player (loaded on demand) nor the console or docs.
      console.log(`portal first page: ${(portal / 1024).toFixed(1)} KB of gzipped JavaScript`);
    },
  };
}

/**
 * Writes `web/entries.json`: for each web page, the scripts it loads (entry first, then
 * its static imports, which the shell preloads) and its stylesheets.
 */
function entriesManifest() {
  return {
    name: 'panocast-entries',
    apply: 'build',
    generateBundle(_options, bundle) {
      const entries = {};
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk' || !chunk.isEntry || chunk.name === 'player') continue;
        const scripts = [];
        const styles = new Set();
        const visit = (file) => {
          if (scripts.includes(file)) return;
          scripts.push(file);
          const c = bundle[file];
          for (const css of c.viteMetadata?.importedCss ?? []) styles.add(css);
          for (const imported of c.imports) visit(imported);
        };
        visit(chunk.fileName);
        entries[chunk.name] = { scripts, styles: [...styles] };
      }
      this.emitFile({ type: 'asset', fileName: `${WEB}/entries.json`, source: JSON.stringify(entries, null, 1) });
    },
  };
}

/** Fails the build when the web app calls an API path the OpenAPI document lacks. */
function apiPaths() {
  return {
    name: 'panocast-api-paths',
    apply: 'build',
    buildStart() {
      const problems = checkApiPaths();
      if (problems.length) this.error(`the web app calls paths openapi.json lacks:\n${problems.join('\n')}`);
    },
  };
}

export default defineConfig({
  base: '/',
  publicDir: false,
  plugins: [apiPaths(), entriesManifest(), gzipCopies()],
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: OUT_DIR,
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: false,
    cssCodeSplit: true,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: {
        player: 'src/main.js',
        portal: 'src/portal/main.jsx',
        console: 'src/console/main.jsx',
        docs: 'src/docs/main.js',
      },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'player' ? 'player.js' : `${WEB}/[name]-[hash].js`),
        chunkFileNames: `${WEB}/[name]-[hash].js`,
        assetFileNames: (asset) =>
          asset.names?.includes('player.css') ? 'player.css' : `${WEB}/[name]-[hash][extname]`,
      },
    },
  },
});
