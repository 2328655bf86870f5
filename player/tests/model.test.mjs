// The player's pure logic, without a browser.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  authHeaders,
  classifyStatus,
  dragView,
  eyeUv,
  findAudioOnlyVariant,
  formatLatency,
  isSpherical,
  isStereo,
  levelLabel,
  shownLayout,
  StallBudget,
  wrapYaw,
  withToken,
} from '../src/model.js';

test('the token is added to relative and absolute URLs, once', () => {
  assert.equal(withToken('/hls/cam/index.m3u8', 'abc'), '/hls/cam/index.m3u8?token=abc');
  assert.equal(
    withToken('http://h:1/hls/cam/video.m3u8?_HLS_msn=4&_HLS_part=1', 'a b'),
    'http://h:1/hls/cam/video.m3u8?_HLS_msn=4&_HLS_part=1&token=a+b',
  );
  assert.equal(withToken('/x?token=old#frag', 'new'), '/x?token=new#frag');
  assert.equal(withToken('/x', ''), '/x');
  assert.deepEqual(authHeaders('abc'), { Authorization: 'Bearer abc' });
  assert.deepEqual(authHeaders(''), {});
});

test('statuses become what the viewer is told', () => {
  assert.equal(classifyStatus(200), 'ok');
  assert.equal(classifyStatus(401), 'unauthorized');
  assert.equal(classifyStatus(403), 'unauthorized');
  assert.equal(classifyStatus(404), 'offline');
  assert.equal(classifyStatus(500), 'error');
});

test('each eye sees its half of a stereo frame; mono sees all of it', () => {
  assert.deepEqual(eyeUv('equirect', 'left'), { offsetU: 0, offsetV: 0, scaleU: 1, scaleV: 1 });
  // Top-bottom: left eye on top, and V grows upwards.
  assert.deepEqual(eyeUv('equirect-stereo-tb', 'left'), { offsetU: 0, offsetV: 0.5, scaleU: 1, scaleV: 0.5 });
  assert.deepEqual(eyeUv('equirect-stereo-tb', 'right'), { offsetU: 0, offsetV: 0, scaleU: 1, scaleV: 0.5 });
  assert.deepEqual(eyeUv('equirect-stereo-sbs', 'left'), { offsetU: 0, offsetV: 0, scaleU: 0.5, scaleV: 1 });
  assert.deepEqual(eyeUv('equirect-stereo-sbs', 'right'), { offsetU: 0.5, offsetV: 0, scaleU: 0.5, scaleV: 1 });
});

test('the player draws the layout the server delivers, else the projection', () => {
  assert.equal(shownLayout({ projection: 'equirect', layout: 'eac-3x2' }), 'eac-3x2');
  assert.equal(shownLayout({ projection: 'dual-fisheye', layout: 'equirect' }), 'equirect');
  assert.equal(shownLayout({ projection: 'equirect-stereo-tb' }), 'equirect-stereo-tb', 'an older server');
  assert.ok(isSpherical('eac-3x2') && !isStereo('eac-3x2'));
});

test('yaw wraps, pitch stops short of the poles, and the image follows the pointer', () => {
  assert.equal(wrapYaw(190), -170);
  assert.equal(wrapYaw(-180), 180);
  assert.equal(wrapYaw(540), 180);
  const v = dragView({ yaw: 0, pitch: 0 }, -100, 0, 75, 750);
  assert.equal(v.yaw, 10);
  assert.equal(dragView({ yaw: 0, pitch: 80 }, 0, 1000, 75, 750).pitch, 89);
});

test('overlay texts', () => {
  assert.equal(formatLatency(0.8123), '0.8 s');
  assert.equal(formatLatency(NaN), '—');
  assert.equal(levelLabel({ width: 1920, height: 960, bitrate: 4500000 }), '1920×960 · 4.5 Mb/s');
});

test('the audio-only variant is found among the parsed variants', () => {
  const levels = [
    { url: 'video.m3u8', videoCodec: 'avc1.640028', audioCodec: 'mp4a.40.2', width: 1920, height: 960 },
    { url: 'audio.m3u8', audioCodec: 'mp4a.40.2' },
  ];
  assert.equal(findAudioOnlyVariant(levels).url, 'audio.m3u8');
  assert.equal(findAudioOnlyVariant(levels.slice(0, 1)), null);
});

test('stalls cut the render share and calm spells give it and the latency back', () => {
  const budget = new StallBudget({ maxShare: 0.3, minShare: 0.08, floor: 1, step: 0.25, calmMs: 15000 }, 0);
  assert.equal(budget.share, 0.3);
  budget.stalled(1000);
  assert.equal(budget.share, 0.15);
  budget.stalled(2000);
  budget.stalled(3000);
  assert.equal(budget.share, 0.08);
  // Not calm long enough yet.
  assert.equal(budget.calm(17999, 1.75), null);
  assert.equal(budget.share, 0.08);
  assert.equal(budget.calm(18000, 1.75), 1.5);
  assert.equal(budget.share, 0.1);
  assert.equal(budget.calm(33000, 1.1), 1);
  assert.equal(budget.calm(48000, 1), null);
  for (let t = 63000; t < 200000; t += 15000) budget.calm(t, 1);
  assert.equal(budget.share, 0.3);
});

test('before the playlist names its PART-HOLD-BACK the target latency is left alone', () => {
  const budget = new StallBudget({ maxShare: 0.3, minShare: 0.08, floor: NaN, step: 0.25, calmMs: 15000 }, 0);
  budget.stalled(1000);
  // Calm, but no floor known: the share comes back, the target stays where hls.js put it.
  assert.equal(budget.calm(16000, 0.85), null);
  assert.equal(budget.share, 0.15 * 1.25);
  // The floor read from the playlist (0.6 s): one step at a time, never below it.
  budget.floor = 0.6;
  assert.equal(budget.calm(31000, 1.35), 1.1);
  assert.equal(budget.calm(46000, 0.75), 0.6);
  assert.equal(budget.calm(61000, 0.6), null);
});

test('heatmap cells: yaw from the frame centre to the right, pitch from straight down', async () => {
  const { heatCell } = await import('../src/model.js');
  assert.deepEqual(heatCell(0, 0), [9, 0]);
  assert.deepEqual(heatCell(95, 0), [9, 9]);
  assert.deepEqual(heatCell(-90, 0), [9, 27]);
  assert.deepEqual(heatCell(180, -90), [0, 18]);
  assert.deepEqual(heatCell(359.9, 90), [17, 35]);
});

test('the accumulator hands out one beacon body per period, none when idle', async () => {
  const { HeatAccumulator } = await import('../src/model.js');
  const heat = new HeatAccumulator();
  assert.equal(heat.take(), null);
  heat.add(-90, 5, 0.25);
  heat.add(-90, 5, 0.25);
  heat.add(10, 0, 0);
  const body = heat.take();
  assert.equal(body.bins.length, 18);
  assert.equal(body.bins[9].length, 36);
  assert.equal(body.bins[9][27], 0.5);
  assert.equal(heat.take(), null);
});

test('the session of a beacon: the token claim, else the path segment', async () => {
  const { viewerSessionId } = await import('../src/model.js');
  const claims = Buffer.from(JSON.stringify({ sub: 'u', sid: 'vs_1' })).toString('base64url');
  assert.equal(viewerSessionId(`h.${claims}.s`, []), 'vs_1');
  assert.equal(viewerSessionId('garbage', []), null);
  assert.equal(viewerSessionId('', ['http://x/hls/cam/s/a12/video.m3u8']), 'a12');
  assert.equal(viewerSessionId('', ['http://x/hls/cam/video.m3u8']), null);
});
