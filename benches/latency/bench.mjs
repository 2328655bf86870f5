// Glass-to-glass latency of live panocast streams in real players (issue 14, item 3).
//
// A publisher draws the wall clock into every frame (stamp_publisher.py: raw frames
// into ffmpeg, libx264 zerolatency, 1280x640 at 30 fps, 1 s GOP, over RTMP); headless
// Chromium plays the stream and, every 50 ms, reads the stamp of the frame the
// <video> shows back from a canvas. Latency = the page's wall clock minus the stamp
// (same machine, same clock). Printed per setup and player: startup (start → first
// stamped frame), p50/p99 latency, stalls (episodes of ≥ 200 ms without the video
// clock moving) and the HTTP protocol the player's requests went over.
//
// Setups are server configurations (BENCH_SETUPS, space-separated
// `proto:part_ms[:hold_back_parts]`): proto `h1` (plain HTTP/1.1) or `h2` (HTTPS,
// HTTP/2 by ALPN, the server's local CA). Browsers never speak h2c, so it is not
// a setup here. Players (BENCH_PLAYERS): `hls.js` (stock, lowLatencyMode), `hls.js-
// catchup` (the same with maxLiveSyncPlaybackRate 1.5: a player setting), `shaka`
// (lowLatencyMode), `panocast` (the built-in player at /watch). Each player is
// measured alone, one after the other, on a stream that is already live.
//
//   benches/latency/run.sh                 (see there for the environment)

import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { launchChromium } from '../../player/tests/support/browser.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const PAGES = join(REPO, 'tests', 'players', 'pages');
const MODULES = join(REPO, 'tests', 'players', 'node_modules');
const BIN = process.env.PANOCAST_BIN || join(REPO, 'target', 'release', 'panocast');
const SETUPS = (process.env.BENCH_SETUPS || 'h1:200 h2:200 h1:100 h1:200:2').split(/\s+/).filter(Boolean);
const PLAYERS = (process.env.BENCH_PLAYERS || 'hls.js hls.js-catchup shaka panocast').split(/\s+/).filter(Boolean);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_S || 8) * 1000;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_S || 25) * 1000;
const KEY = 'latency-bench-key-1';
const PLAYER_DIST = process.env.BENCH_PLAYER_DIST || '';

const FILES = {
  '/hls.html': join(PAGES, 'hls.html'),
  '/shaka.html': join(PAGES, 'shaka.html'),
  '/lib/hls.js': join(MODULES, 'hls.js/dist/hls.min.js'),
  '/lib/shaka.js': join(MODULES, 'shaka-player/dist/shaka-player.compiled.js'),
};

const log = (m) => process.stderr.write(`[latency ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startSite() {
  const http = createServer((req, res) => {
    const file = FILES[new URL(req.url, 'http://x').pathname];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => http.listen(0, '127.0.0.1', () => ok({ http, base: `http://127.0.0.1:${http.address().port}` })));
}

/** Starts panocast for one setup; resolves with its URLs once it printed them. */
function startServer(setup) {
  const dir = mkdtempSync(join(tmpdir(), 'panocast-latency-'));
  let config = `[hls]\npart_target_ms = ${setup.partMs}\n`;
  if (setup.holdBack) config += `part_hold_back_parts = ${setup.holdBack}\n`;
  config += `\n[[streams]]\nslug = "lat"\nkey = "${KEY}"\nprojection = "equirect"\n`;
  if (setup.proto === 'h2') config += '\n[tls]\nmode = "local-ca"\nhttps = "127.0.0.1:0"\n';
  writeFileSync(join(dir, 'panocast.toml'), config);
  const child = spawn(BIN, ['serve', '--config', join(dir, 'panocast.toml'), '--http', '127.0.0.1:0',
    '--rtmp', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  const lines = createInterface({ input: child.stdout });
  return new Promise((ok, fail) => {
    const urls = {};
    const timer = setTimeout(() => fail(new Error('panocast printed no URLs within 20 s')), 20000);
    child.once('exit', (code) => fail(new Error(`panocast exited (${code})`)));
    lines.on('line', (line) => {
      const m = line.match(/RTMP ingest:\s+(\S+)/);
      if (m) urls.rtmp = m[1];
      const p = line.match(/playback:\s+(http:\/\/[^/]+)/);
      if (p) urls.http = p[1];
      const s = line.match(/https:\s+(https:\/\/[^/]+)\/watch/);
      if (s) urls.https = s[1];
      if (urls.rtmp && urls.http && (setup.proto !== 'h2' || urls.https)) {
        clearTimeout(timer);
        ok({ child, dir, ...urls, base: setup.proto === 'h2' ? urls.https : urls.http });
      }
    });
  });
}

async function firstAnswer(url, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const r = await fetch(url).catch(() => null);
    if (r && r.status === 200) return;
    await sleep(50);
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

/** Installed in the page: reads the stamp of the shown frame every 50 ms. */
function probe() {
  const BITS = 40;
  const MOD = 2 ** BITS;
  const state = { samples: [], stalls: [], first: null, started: performance.now(), protocol: null };
  const canvas = document.createElement('canvas');
  canvas.width = 1280;
  canvas.height = 128;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let lastTime = -1;
  let frozenSince = null;
  setInterval(() => {
    const v = document.querySelector('video');
    if (!v || v.readyState < 2 || !v.videoWidth) return;
    const now = performance.now();
    if (state.first !== null && !v.paused) {
      if (v.currentTime === lastTime) {
        if (frozenSince === null) frozenSince = now;
      } else {
        if (frozenSince !== null && now - frozenSince >= 200) state.stalls.push(now - frozenSince);
        frozenSince = null;
      }
    }
    lastTime = v.currentTime;
    ctx.drawImage(v, 0, 0, v.videoWidth, v.videoHeight / 5, 0, 0, 1280, 128);
    const d = ctx.getImageData(0, 0, 1280, 128).data;
    let stamp = 0;
    for (let i = 0; i < BITS; i++) {
      const x = i * 32 + 16;
      const a = d[(32 * 1280 + x) * 4] > 128 ? 1 : 0;
      const b = d[(96 * 1280 + x) * 4] > 128 ? 1 : 0;
      if (a === b) return; // not a clean stamp (a frame still being decoded, a seek)
      stamp = stamp * 2 + a;
    }
    const latency = (((Date.now() % MOD) - stamp) % MOD + MOD) % MOD;
    if (state.first === null) state.first = now - state.started;
    state.samples.push({ at: now, latency });
  }, 50);
  window.latencyProbe = state;
  window.latencyReport = (fromMs) => {
    const entries = performance.getEntriesByType('resource').filter((e) => e.name.includes('/hls/'));
    const protocol = entries.length ? entries[entries.length - 1].nextHopProtocol : null;
    const stillFrozen = frozenSince !== null ? performance.now() - frozenSince : 0;
    return {
      first: state.first,
      latencies: state.samples.filter((s) => s.at - state.started >= fromMs).map((s) => s.latency),
      stalls: state.stalls.concat(stillFrozen >= 200 ? [stillFrozen] : []),
      protocol,
    };
  };
}

function pct(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function measure(browser, site, server, player) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const src = `${server.base}/hls/lat/index.m3u8`;
  try {
    if (player === 'panocast') {
      await page.addInitScript(probe);
      if (PLAYER_DIST) {
        await page.route('**/player/player.js*', (route) =>
          route.fulfill({ path: join(PLAYER_DIST, 'player.js'), contentType: 'text/javascript' }));
      }
      await page.goto(`${server.base}/watch/lat`);
    } else {
      await page.goto(`${site.base}/${player === 'shaka' ? 'shaka' : 'hls'}.html`);
      await page.evaluate(probe);
      if (player === 'hls.js-catchup') {
        // The stock page with one setting changed: catch up on the live edge.
        await page.evaluate(() => {
          const Original = window.Hls;
          window.Hls = class extends Original { constructor(c) { super({ ...c, maxLiveSyncPlaybackRate: 1.5 }); } };
          Object.assign(window.Hls, Original);
        });
      }
      await page.evaluate((s) => window.start(s), src);
    }
    await sleep(WARMUP_MS + MEASURE_MS);
    const r = await page.evaluate((from) => window.latencyReport(from), WARMUP_MS);
    const errors = await page.evaluate(() => window.playerErrors || []);
    // The built-in player's own view at the end: where hls.js aims, and how often the
    // player had to move on from a stall.
    const own = player === 'panocast' ? await page.evaluate(() => {
      const p = window.__panocast;
      return p ? { target: p.targetLatency, latency: p.latency, jumps: p.liveJumps, recoveries: p.stallRecoveries } : null;
    }) : null;
    return { ...r, errors, own };
  } finally {
    await context.close();
  }
}

function parseSetup(text) {
  const [proto, partMs, holdBack] = text.split(':');
  if (!['h1', 'h2'].includes(proto) || !(Number(partMs) > 0)) throw new Error(`bad setup ${text}: proto:part_ms[:hold_back_parts]`);
  return { name: text, proto, partMs: Number(partMs), holdBack: holdBack ? Number(holdBack) : null };
}

async function main() {
  const setups = SETUPS.map(parseSetup);
  const site = await startSite();
  const browser = await launchChromium();
  const rows = [];
  try {
    for (const setup of setups) {
      log(`setup ${setup.name}: starting panocast and the publisher`);
      const server = await startServer(setup);
      const publisher = spawn('python3', [join(HERE, 'stamp_publisher.py'), `${server.rtmp}/${KEY}`], { stdio: ['ignore', 'inherit', 'inherit'] });
      try {
        await firstAnswer(`${server.http}/hls/lat/index.m3u8`, 30000);
        await sleep(3000);
        for (const player of PLAYERS) {
          log(`setup ${setup.name}: ${player}`);
          const r = await measure(browser, site, server, player);
          const row = {
            setup: setup.name, player, protocol: r.protocol,
            startup_ms: r.first === null ? null : Math.round(r.first),
            p50_ms: Math.round(pct(r.latencies, 50)), p99_ms: Math.round(pct(r.latencies, 99)),
            samples: r.latencies.length, stalls: r.stalls.length,
            longest_stall_ms: r.stalls.length ? Math.round(Math.max(...r.stalls)) : 0,
            errors: r.errors, own: r.own,
          };
          rows.push(row);
          console.log(JSON.stringify(row));
        }
      } finally {
        publisher.kill('SIGTERM');
        server.child.kill('SIGTERM');
        await new Promise((ok) => server.child.once('exit', ok));
        rmSync(server.dir, { recursive: true, force: true });
      }
    }
  } finally {
    await browser.close();
    site.http.close();
  }
  console.log('\nsetup          player          proto     startup   p50     p99    stalls (longest)');
  for (const r of rows) {
    console.log(`${r.setup.padEnd(15)}${r.player.padEnd(16)}${String(r.protocol).padEnd(10)}`
      + `${String(r.startup_ms).padStart(6)} ms${String(r.p50_ms).padStart(6)} ms${String(r.p99_ms).padStart(6)} ms`
      + `  ${r.stalls} (${r.longest_stall_ms} ms)`
      + `${r.own ? `  target ${Number(r.own.target).toFixed(2)} s, hls.js latency ${Number(r.own.latency).toFixed(2)} s, jumps ${r.own.jumps}, recoveries ${r.own.recoveries}` : ''}`
      + `${r.errors.length ? `  errors: ${r.errors.join('; ')}` : ''}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
