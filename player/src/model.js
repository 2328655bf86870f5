// Pure player logic: no DOM, no three.js, no hls.js, so `node --test` runs it as is.

/** Projections the server reports (`GET /api/v1/streams/{slug}`, `projection`). */
export const PROJECTIONS = ['flat', 'equirect', 'equirect-stereo-tb', 'equirect-stereo-sbs'];

/** The layout of a stream with `cubemap` set: an equi-angular cubemap, 3x2. */
export const CUBEMAP = 'eac-3x2';

/**
 * What the player draws for a stream: the stream info's `layout` (what the server
 * delivers: the projection players receive, or the cubemap the playlists cannot
 * signal), else, from servers that do not say, its `projection`.
 */
export function shownLayout(info) {
  return (info && (info.layout || info.projection)) || 'equirect';
}

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

/** Heatmap cells: 36 of yaw by 18 of pitch, 10° each (src/analytics/heatmap.rs). */
export const HEAT_YAW_BINS = 36;
export const HEAT_PITCH_BINS = 18;
/** The player reports where the viewer looked this often. */
export const HEAT_BEACON_MS = 10000;

/**
 * The heatmap cell of a view, `[pitch row, yaw column]`: row 0 looks straight down,
 * column 0 starts at the frame centre (yaw 0) and yaw grows to the right.
 */
export function heatCell(yawDeg, pitchDeg) {
  const yaw = ((yawDeg % 360) + 360) % 360;
  const pitch = Math.max(-90, Math.min(89.999, pitchDeg));
  return [
    Math.min(HEAT_PITCH_BINS - 1, Math.floor((pitch + 90) / 10)),
    Math.min(HEAT_YAW_BINS - 1, Math.floor(yaw / 10)),
  ];
}

/** Seconds looked per cell since the last `take()`. */
export class HeatAccumulator {
  constructor() {
    this.reset();
  }

  reset() {
    this.bins = Array.from({ length: HEAT_PITCH_BINS }, () => new Array(HEAT_YAW_BINS).fill(0));
    this.total = 0;
  }

  add(yawDeg, pitchDeg, seconds) {
    if (!(seconds > 0) || !Number.isFinite(yawDeg) || !Number.isFinite(pitchDeg)) return;
    const [p, y] = heatCell(yawDeg, pitchDeg);
    this.bins[p][y] += seconds;
    this.total += seconds;
  }

  /** The beacon body (`{ bins }`) and a fresh start; `null` when nothing was looked at. */
  take() {
    if (this.total <= 0) return null;
    const body = { bins: this.bins };
    this.reset();
    return body;
  }
}

/**
 * The viewer session a beacon belongs to: the `sid` claim of a playback token, else the
 * anonymous id in the playlist URLs (`/hls/<slug>/s/<sid>/…`, handed out by redirect).
 */
export function viewerSessionId(token, urls) {
  if (token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(payload));
      if (typeof claims.sid === 'string' && claims.sid) return claims.sid;
    } catch {
      // Not a JWT we can read: no session to report to.
    }
    return null;
  }
  for (const url of urls) {
    const m = /\/hls\/[^/]+\/s\/([^/?#]+)\//.exec(url || '');
    if (m) return m[1];
  }
  return null;
}
