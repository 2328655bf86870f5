// Pure player logic: no DOM, no three.js, no hls.js, so `node --test` runs it as is.

/** Projections the server reports (`GET /api/v1/streams/{slug}`, `projection`). */
export const PROJECTIONS = ['flat', 'equirect', 'equirect-stereo-tb', 'equirect-stereo-sbs'];

/** How often an offline or unreachable stream is asked again, in milliseconds. */
export const RETRY_MS = 3000;

/**
 * `url` with `token` added as the `token` query parameter (replacing one already
 * there). Relative URLs stay relative. With no token the URL is returned unchanged.
 */
export function withToken(url, token) {
  if (!token) return url;
  const hashAt = url.indexOf('#');
  const hash = hashAt >= 0 ? url.slice(hashAt) : '';
  const bare = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const queryAt = bare.indexOf('?');
  const path = queryAt >= 0 ? bare.slice(0, queryAt) : bare;
  const params = new URLSearchParams(queryAt >= 0 ? bare.slice(queryAt + 1) : '');
  params.set('token', token);
  return `${path}?${params.toString()}${hash}`;
}

/** Request headers that carry `token`; none without one. */
export function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * What an HTTP status means to a viewer: `ok`, `offline` (a known stream that is not
 * live, or a playlist that is gone), `unauthorized` (401/403), `unknown` or `error`.
 */
export function classifyStatus(status) {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 404 || status === 503) return 'offline';
  return 'error';
}

/** The words shown for each player state. */
export const MESSAGES = {
  connecting: 'connecting…',
  offline: 'stream offline — waiting for it to go live',
  unauthorized: 'not authorized to watch this stream',
  unknown: 'there is no such stream',
  error: 'playback error — retrying',
  unsupported: 'this browser cannot play HLS video',
  blocked: 'tap to play',
};

/**
 * The part of the video texture one eye sees, as a UV transform
 * `{ offsetU, offsetV, scaleU, scaleV }` (u' = offsetU + u·scaleU). `eye` is `left` or
 * `right`; mono views use the left eye. V grows upwards (three.js flips video rows), so
 * the top half of a top-bottom frame is V 0.5–1.
 */
export function eyeUv(projection, eye) {
  const right = eye === 'right';
  switch (projection) {
    case 'equirect-stereo-tb':
      return { offsetU: 0, offsetV: right ? 0 : 0.5, scaleU: 1, scaleV: 0.5 };
    case 'equirect-stereo-sbs':
      return { offsetU: right ? 0.5 : 0, offsetV: 0, scaleU: 0.5, scaleV: 1 };
    default:
      return { offsetU: 0, offsetV: 0, scaleU: 1, scaleV: 1 };
  }
}

export function isStereo(projection) {
  return projection === 'equirect-stereo-tb' || projection === 'equirect-stereo-sbs';
}

export function isSpherical(projection) {
  return projection !== 'flat';
}

/** Keeps the view from flipping over the poles. */
export const MAX_PITCH = 89;

/** Yaw wrapped to (-180, 180] degrees. */
export function wrapYaw(deg) {
  let y = ((deg + 180) % 360 + 360) % 360 - 180;
  if (y === -180) y = 180;
  return y;
}

export function clampPitch(deg) {
  return Math.max(-MAX_PITCH, Math.min(MAX_PITCH, deg));
}

/**
 * The view after dragging by (dx, dy) CSS pixels on a view `heightPx` tall showing
 * `fovDeg` vertically: the image follows the pointer, so dragging right turns left.
 */
export function dragView(view, dx, dy, fovDeg, heightPx) {
  const degPerPx = fovDeg / Math.max(1, heightPx);
  return {
    yaw: wrapYaw(view.yaw - dx * degPerPx),
    pitch: clampPitch(view.pitch + dy * degPerPx),
  };
}

/** "0.8 s" for the overlay; an em dash when unknown. */
export function formatLatency(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) return '—';
  return `${seconds.toFixed(1)} s`;
}

/** "1920×960 · 4.5 Mb/s" for a hls.js level. */
export function levelLabel(level) {
  const size = level.width && level.height ? `${level.width}×${level.height}` : level.name || 'video';
  const rate = level.bitrate ? ` · ${(level.bitrate / 1e6).toFixed(1)} Mb/s` : '';
  return `${size}${rate}`;
}

/**
 * The audio-only variant of a multivariant playlist, as hls.js parsed it (hls.js drops
 * audio-only variants from `hls.levels` when video variants exist, so the player finds
 * it in the MANIFEST_LOADED data and plays its media playlist itself).
 */
export function findAudioOnlyVariant(parsedLevels) {
  return (
    parsedLevels.find(
      (l) => l.audioCodec && !l.videoCodec && !(l.width && l.height) && l.url,
    ) || null
  );
}

/**
 * How a weak device trades picture rate for smooth playback. Each stall halves the
 * share of the main thread that rendering may take (down to `minShare`): on software
 * WebGL, uploading a video frame costs tens of milliseconds, and hls.js loads the parts
 * on the same thread. Every `calmMs` without a stall gives back one step: the share
 * grows by a quarter (up to `maxShare`) and the target latency comes `step` closer to
 * `floor`, since hls.js moves its target back on every stall and never forward again.
 */
export class StallBudget {
  constructor({ maxShare, minShare, floor, step, calmMs }, now) {
    Object.assign(this, { maxShare, minShare, floor, step, calmMs });
    this.share = maxShare;
    this.lastChange = now;
  }

  stalled(now) {
    this.share = Math.max(this.minShare, this.share / 2);
    this.lastChange = now;
  }

  /** After a calm spell: the target latency to move to, or null to leave it. */
  calm(now, targetLatency) {
    if (now - this.lastChange < this.calmMs) return null;
    this.lastChange = now;
    this.share = Math.min(this.maxShare, this.share * 1.25);
    if (!(targetLatency > this.floor)) return null;
    return Math.max(this.floor, targetLatency - this.step);
  }
}
