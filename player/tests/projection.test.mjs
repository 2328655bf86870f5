// The built-in player on streams panocast reprojects (issue 17), in real headless
// Chromium against the real server and real ffmpeg publishers:
//   - a `cubemap` stream (equi-angular cubemap, 3x2) looks like the equirect stream
//     of the same source, forward, up and across face edges;
//   - a dual-fisheye stream stitched by panoproject shows no seam at the lens
//     boundary (and a stream with a lens turned out of line does, so the measure
//     can fail).
//
//   cargo build && (cd player && node --test tests/projection.test.mjs)
//
// Screenshots go to target/artifacts/player (PANOCAST_ARTIFACTS overrides).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launchChromium } from './support/browser.mjs';
import { ARTIFACTS, Publisher, Server, cachedClip } from './support/server.mjs';

const FOV = 190;
const CONFIG = `
# Every reprojected rendition is encoded: quickly, on this shared machine.
[ladders.fast]
preset = "ultrafast"
rungs = []

[[streams]]
slug = "eq"
key = "eq-secret-key-1"
projection = "equirect"

[[streams]]
slug = "cube"
key = "cube-secret-key-1"
projection = "equirect"
cubemap = true
ladder = "fast"

[[streams]]
slug = "rig"
key = "rig-secret-key-1"
projection = "dual-fisheye"
ladder = "fast"
fisheye = { front = { fov = ${FOV} }, back = { fov = ${FOV} }, overlap = 10 }

# The back lens turned 6 degrees out of line and no cross-fade: a seam to see.
[[streams]]
slug = "bent"
key = "bent-secret-key-1"
projection = "dual-fisheye"
ladder = "fast"
fisheye = { front = { fov = ${FOV} }, back = { fov = ${FOV}, rotation = 6 }, overlap = 0 }
`;

const VIEWPORT = { width: 960, height: 540 };

/** A still mandelbrot scene (a camera's kind of detail) as 960x480 equirect. */
const SCENE = 'mandelbrot=s=960x480,trim=end_frame=1,loop=loop=-1:size=1,fps=30';
const ENCODE = ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '14', '-g', '30', '-bf', '0',
  '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-ac', '2'];
const AUDIO = 'sine=frequency=440:sample_rate=48000';

function equirectClip() {
  return cachedClip('mandelbrot-equirect-960x480-6s.flv', {
    video: `${SCENE},format=yuv420p`, audio: AUDIO, seconds: 6, encode: ENCODE,
  });
}

/**
 * A still scene with structure in every direction everywhere (so a seam has
 * something to break, wherever the lens boundary falls), as 960x480 equirect made
 * into two 190-degree fisheye circles side by side by ffmpeg v360.
 */
const TEXTURE = "nullsrc=s=960x480,format=gbrp,geq=r='128+100*sin(Y/7)':g='128+100*cos(X/11+Y/13)'"
  + ":b='128+90*sin((X+Y)/17)',trim=end_frame=1,loop=loop=-1:size=1,fps=30";

function dualFisheyeClip() {
  return cachedClip('texture-dfisheye-960x480-6s.flv', {
    video: `${TEXTURE},v360=input=e:output=dfisheye:h_fov=${FOV}:v_fov=${FOV}:w=960:h=480,format=yuv420p`,
    audio: AUDIO, seconds: 6, encode: ENCODE,
  });
}

let server;
let browser;

before(async () => {
  server = await Server.start(CONFIG);
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

/** Publishes `clip` to each key for as long as `body` runs. */
async function publishing(clip, keys, body) {
  const publishers = keys.map((k) => new Publisher(clip, server.publishUrl(k)));
  try {
    return await body();
  } finally {
    await Promise.all(publishers.map((p) => p.stop()));
  }
}

/** The player at /watch/`slug`, playing, its picture held still. */
async function playing(slug) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('close', () => context.close().catch(() => {}));
  await page.goto(server.url(`/watch/${slug}`));
  await page.waitForFunction(
    () => window.__panocast && window.__panocast.state === 'playing'
      && window.__panocast.video.videoWidth > 0 && window.__panocast.video.currentTime > 0.5,
    null,
    { timeout: 45000, polling: 250 },
  );
  // The scene is still: a paused frame is the stream's picture, and only the view
  // changes between samples.
  await page.evaluate(() => window.__panocast.video.pause());
  return page;
}

/** The view at (yaw, pitch) as a 32x18 grid of mean colours. */
function look(page, yaw, pitch) {
  return page.evaluate(([y, p]) => {
    window.__panocast.setView(y, p);
    return window.__panocast.sample(32, 18);
  }, [yaw, pitch]);
}

/** Mean absolute difference of two sample grids, per channel, 0-255. */
function gridDiff(a, b) {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.grid.length; i++) {
    for (let k = 0; k < 3; k++) {
      sum += Math.abs(a.grid[i][k] - b.grid[i][k]);
      n++;
    }
  }
  return sum / n;
}

async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  console.log(`screenshot: ${path}`);
}

describe('the player on reprojected streams', () => {
  test('a cubemap stream looks like the equirect stream of the same source', async () => {
    await publishing(equirectClip(), ['eq-secret-key-1', 'cube-secret-key-1'], async () => {
      const [eq, cube] = [await playing('eq'), await playing('cube')];
      const info = await cube.evaluate(() => window.__panocast.info);
      assert.equal(info.layout, 'eac-3x2');
      assert.equal(await cube.evaluate(() => document.getElementById('panocast').dataset.projection), 'eac-3x2');
      const size = await cube.evaluate(() => [window.__panocast.video.videoWidth, window.__panocast.video.videoHeight]);
      assert.deepEqual(size, [960, 540], 'the player gets the 16:9 cubemap');

      // Forward (inside the front face), up (the up face, turned in the frame),
      // and views across face edges and corners.
      const views = [[0, 0], [0, 60], [0, 89], [45, 0], [135, -35], [-100, 20], [180, -80]];
      const diffs = [];
      for (const [yaw, pitch] of views) {
        const a = await look(eq, yaw, pitch);
        const b = await look(cube, yaw, pitch);
        assert.ok(a.variance > 200 && b.variance > 200, `a blank canvas at ${yaw}/${pitch}`);
        diffs.push(gridDiff(a, b));
      }
      console.log(`cubemap vs equirect, per view (yaw/pitch): ${views.map((v, i) => `${v.join('/')} ${diffs[i].toFixed(1)}`).join(', ')}`);
      for (let i = 0; i < views.length; i++) {
        assert.ok(diffs[i] < 12, `at yaw/pitch ${views[i].join('/')} the cubemap differs by ${diffs[i].toFixed(1)}`);
      }
      // The measure can fail: another part of the sphere is far off.
      const elsewhere = gridDiff(await look(eq, 90, 0), await look(cube, 0, 0));
      console.log(`  (equirect at yaw 90 vs cubemap at yaw 0: ${elsewhere.toFixed(1)})`);
      assert.ok(elsewhere > 3 * Math.max(...diffs), `a different view differs by only ${elsewhere.toFixed(1)}`);

      await look(cube, 30, 30);
      await screenshot(cube, 'cubemap-yaw30-pitch30');
      for (const page of [eq, cube]) {
        assert.deepEqual(page.problems, []);
        await page.close();
      }
    });
  });

  test('a stitched dual-fisheye stream shows no seam at the lens boundary', async () => {
    await publishing(dualFisheyeClip(), ['rig-secret-key-1', 'bent-secret-key-1'], async () => {
      const measured = {};
      for (const slug of ['rig', 'bent']) {
        const page = await playing(slug);
        // Looking along the boundary: the lenses face yaw 0 and 180, so their seam
        // is the vertical line through the middle of the view at yaw 90 and -90.
        const sides = [];
        for (const yaw of [90, -90]) {
          sides.push(await page.evaluate(seamContrast, yaw));
        }
        measured[slug] = sides;
        await page.evaluate(() => window.__panocast.setView(90, 0));
        await screenshot(page, `seam-${slug}-yaw90`);
        assert.deepEqual(page.problems, []);
        await page.close();
      }
      const fmt = (s) => s.map((m) => `seam ${m.seam.toFixed(1)} / elsewhere ${m.elsewhere.toFixed(1)}`).join('; ');
      console.log(`column contrast at the lens boundary (yaw 90; yaw -90): stitched ${fmt(measured.rig)}; lens out of line ${fmt(measured.bent)}`);
      for (const m of measured.rig) {
        assert.ok(m.seam <= 1.5 * m.elsewhere + 2, `a visible seam: ${m.seam.toFixed(1)} across it, ${m.elsewhere.toFixed(1)} elsewhere`);
      }
      // The measure can fail: a lens out of line shows.
      assert.ok(
        measured.bent.some((m) => m.seam > 1.5 * m.elsewhere + 2),
        `the misaligned lens shows no seam: ${fmt(measured.bent)}`,
      );
    });
  });
});

/**
 * Runs in the page: the view at yaw `yaw`, level, read back whole. `seam` is the
 * mean difference (0-255, over the channels and the middle rows) between the pixel
 * columns 3 px either side of the view's centre line; `elsewhere` the median of the
 * same measure at eight other places across the view.
 */
function seamContrast(yaw) {
  const hook = window.__panocast;
  hook.setView(yaw, 0);
  hook.view.render();
  const gl = hook.renderer.getContext();
  const w = gl.drawingBufferWidth;
  const h = gl.drawingBufferHeight;
  const px = new Uint8Array(w * h * 4);
  gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
  const across = (x) => {
    let sum = 0;
    let n = 0;
    for (let y = Math.floor(h * 0.2); y < Math.floor(h * 0.8); y++) {
      for (let k = 0; k < 3; k++) {
        sum += Math.abs(px[(y * w + x - 3) * 4 + k] - px[(y * w + x + 3) * 4 + k]);
        n++;
      }
    }
    return sum / n;
  };
  const centre = Math.floor(w / 2);
  const others = [];
  for (let i = 1; i <= 9; i++) {
    const x = Math.floor((i * w) / 10);
    if (Math.abs(x - centre) > w / 20) others.push(across(x));
  }
  others.sort((a, b) => a - b);
  return { seam: across(centre), elsewhere: others[Math.floor(others.length / 2)] };
}
