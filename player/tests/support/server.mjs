// The real panocast binary and a real ffmpeg publisher, for the browser tests.
// Mirrors tests/common/mod.rs: free ports on 127.0.0.1, URLs read from what the server
// prints at start.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The server binary `cargo test` built; PANOCAST_BIN overrides it. */
export const PANOCAST_BIN = process.env.PANOCAST_BIN || join(REPO, 'target/debug/panocast');

/** Where screenshots go; PANOCAST_ARTIFACTS overrides it. */
export const ARTIFACTS = process.env.PANOCAST_ARTIFACTS || join(REPO, 'target/artifacts/player');

/** A running `panocast serve` on free loopback ports. */
export class Server {
  /** `env` adds variables for the server (PANOCAST_ADMIN_PASSWORD, say). */
  static async start(config, env = {}) {
    if (!existsSync(PANOCAST_BIN)) {
      throw new Error(`${PANOCAST_BIN} does not exist: run cargo build (or set PANOCAST_BIN)`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'panocast-player-e2e-'));
    const configPath = join(dir, 'panocast.toml');
    writeFileSync(configPath, config);
    const child = spawn(
      PANOCAST_BIN,
      ['serve', '--config', configPath, '--http', '127.0.0.1:0', '--rtmp', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...env } },
    );
    const lines = createInterface({ input: child.stdout });
    const urls = await new Promise((resolveUrls, reject) => {
      let http = null;
      let rtmp = null;
      const timer = setTimeout(() => reject(new Error('panocast printed no URLs within 20 s')), 20000);
      child.once('exit', (code) => reject(new Error(`panocast exited (${code}) before printing its URLs`)));
      // Keep reading after the URLs so the server never blocks on a full pipe.
      lines.on('line', (line) => {
        const obs = line.split('OBS server:')[1];
        if (obs) rtmp = obs.trim().replace(/\/live$/, '');
        const playback = line.split('playback:')[1];
        if (playback) {
          const url = playback.trim();
          http = url.slice(0, url.indexOf('/hls/'));
        }
        if (http && rtmp) {
          clearTimeout(timer);
          resolveUrls({ http, rtmp });
        }
      });
    });
    return new Server(child, dir, urls);
  }

  constructor(child, dir, { http, rtmp }) {
    this.child = child;
    this.dir = dir;
    this.http = http;
    this.rtmp = rtmp;
  }

  url(path) {
    return `${this.http}${path}`;
  }

  publishUrl(key) {
    return `${this.rtmp}/live/${key}`;
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A real ffmpeg publishing over RTMP with `args`, killed by `stop`. */
class FfmpegPublisher {
  constructor(ffmpeg, args) {
    this.child = spawn(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-re', ...args],
      { stdio: ['ignore', 'ignore', 'inherit'] });
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGKILL');
      await exited;
    }
  }
}

/** A real ffmpeg (`ffmpeg` from PATH unless named) pushing `file` over RTMP in real time, looped forever. */
export class Publisher extends FfmpegPublisher {
  constructor(file, url, ffmpeg = 'ffmpeg') {
    super(ffmpeg, ['-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', url]);
  }
}

/**
 * An ffmpeg that encodes a test pattern and a tone as it publishes (x264 zerolatency,
 * 1 s GOP, no B-frames, AAC), as OBS does: one continuous timeline for as long as it
 * runs. A looped file (`Publisher`) jumps its video clock by more than a frame at
 * every loop, which players see as a hole to stall on, so tests that watch playback
 * for longer than a clip use this.
 */
export class LivePublisher extends FfmpegPublisher {
  constructor(url, { size = '640x320', rate = 30, ffmpeg = 'ffmpeg' } = {}) {
    super(ffmpeg, [
      '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`,
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(rate),
      '-bf', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
      '-f', 'flv', url,
    ]);
  }
}

/**
 * `name` under target/player-e2e, encoded once by `ffmpeg` (from PATH unless named)
 * from two lavfi inputs (`video`, `audio`) with `encode` (codec arguments), and kept
 * for later runs. Written to a temporary name first, so a killed run leaves no half file.
 */
export function cachedClip(name, { video, audio, seconds, encode, ffmpeg = 'ffmpeg' }) {
  const dir = join(REPO, 'target/player-e2e');
  const path = join(dir, name);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const ext = name.slice(name.lastIndexOf('.'));
  const tmp = `${path}.${process.pid}.tmp${ext}`;
  const r = spawnSync(
    ffmpeg,
    ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', video, '-f', 'lavfi', '-i', audio,
      '-t', String(seconds), ...encode, tmp],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (r.status !== 0) throw new Error(`encoding ${name} failed (${r.error || r.status})`);
  renameSync(tmp, path);
  return path;
}

/**
 * A 1920×960 equirect-shaped testsrc2 clip, H.264 (libx264, 1 s GOP) + 48 kHz AAC.
 */
export function sourceClip() {
  return cachedClip('source-1920x960-gop30-8s.flv', {
    video: 'testsrc2=size=1920x960:rate=30',
    audio: 'sine=frequency=440:sample_rate=48000',
    seconds: 8,
    encode: ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '128k', '-ac', '2'],
  });
}

/**
 * The static ffmpeg 7 (PyPI imageio-ffmpeg, installed by scripts/ffmpeg7.sh into the
 * build tree) whose FLV muxer sends HEVC over Enhanced RTMP; Debian's ffmpeg 5.1 cannot.
 */
export function ffmpeg7() {
  const r = spawnSync('bash', [join(REPO, 'scripts/ffmpeg7.sh')], {
    cwd: REPO,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`scripts/ffmpeg7.sh failed (${r.error || r.status})`);
  return r.stdout.trim();
}

/**
 * A 1280×640 HEVC clip (x265 ultrafast, 1 s GOP) + AAC, encoded with `ffmpeg` (ffmpeg 7).
 */
export function hevcClip(ffmpeg) {
  return cachedClip('hevc-1280x640-gop30-6s.mkv', {
    video: 'testsrc2=size=1280x640:rate=30',
    audio: 'sine=frequency=440:sample_rate=48000',
    seconds: 6,
    encode: ['-c:v', 'libx265', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
      '-x265-params', 'keyint=30:min-keyint=30:log-level=error',
      '-c:a', 'aac', '-b:a', '96k', '-ac', '2'],
    ffmpeg,
  });
}
