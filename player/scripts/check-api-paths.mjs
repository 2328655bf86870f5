// Every `api.get('/api/v1/…')`-style call in the web app's sources names a path and
// method of the committed OpenAPI document (player/openapi.json). Run by the vite build
// (vite.config.js) so the front end cannot drift from the server's routes; the Rust
// test `web_openapi_copy_is_current` keeps openapi.json equal to what the server serves.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['src/portal', 'src/console', 'src/shared', 'src/docs'];
const CALL = /\bapi\.(get|post|patch|put|del)\(\s*['"`](\/[^'"`?]+)['"`]/g;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** The calls that the document lacks, as `file: METHOD path` lines. */
export function checkApiPaths() {
  const doc = JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8'));
  const problems = [];
  for (const dir of SOURCES) {
    for (const file of walk(join(ROOT, dir)).filter((f) => /\.(js|jsx)$/.test(f))) {
      const text = readFileSync(file, 'utf8');
      for (const [, verb, path] of text.matchAll(CALL)) {
        const method = verb === 'del' ? 'delete' : verb;
        if (!doc.paths?.[path]?.[method]) problems.push(`${file.slice(ROOT.length + 1)}: ${method.toUpperCase()} ${path}`);
      }
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = checkApiPaths();
  for (const p of problems) console.error(p);
  process.exit(problems.length ? 1 : 0);
}
