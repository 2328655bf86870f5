// Getting the stream into the <video>: hls.js in low-latency mode, or the browser's own
// HLS (Safari) where Media Source Extensions are missing. Every request carries the
// page's token.

import Hls from 'hls.js';

import { authHeaders, classifyStatus, findAudioOnlyVariant, withToken } from './model.js';

/**
 * hls.js settings for panocast's LL-HLS: blocking reloads and parts, catch up by
 * playing faster when more than the target latency behind, and the token on every
 * request (query parameter for servers and proxies that only see URLs, and a Bearer
 * header). Playlists that are 404 are not retried here: the player goes back to
 * polling the stream's state instead.
 */
/** How far hls.js moves its target latency back at each stall. */
export const LIVE_SYNC_ON_STALL_INCREASE_S = 0.25;

export function hlsConfig(token) {
  return {
    lowLatencyMode: true,
    // The ES module build of hls.js has no inline worker, and fMP4 needs no
    // transmuxing: everything runs on the main thread.
    enableWorker: false,
    backBufferLength: 10,
    // Catch up by playing up to 1.5× when behind the target, and after a stall move
    // the target back by a part or so, not by hls.js's default whole second (which
    // after two stalls on a busy phone puts a 0.6 s stream at 2.6 s for good).
    maxLiveSyncPlaybackRate: 1.5,
    liveSyncOnStallIncrease: LIVE_SYNC_ON_STALL_INCREASE_S,
    liveDurationInfinity: true,
    xhrSetup(xhr, url) {
      xhr.open('GET', withToken(url, token), true);
      const headers = authHeaders(token);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    },
    fetchSetup(context, init) {
      const headers = new Headers(init.headers || {});
      for (const [name, value] of Object.entries(authHeaders(token))) headers.set(name, value);
      return new Request(withToken(context.url, token), { ...init, headers });
    },
  };
}

/**
 * The least latency the player aims for is the live playlist's PART-HOLD-BACK: three
 * parts by default (0.6 s at 200 ms parts), what the server recommends, and what
 * hls.js aims at in low-latency mode. A busy phone that stalls there is moved back by
 * `LIVE_SYNC_ON_STALL_INCREASE_S` per stall and comes forward again after a calm spell
 * (`StallBudget` in model.js), so it pays for its own hiccups without holding every
 * other viewer a second behind. (Held at 1.0 s until the latency bench showed the
 * desktop player steady at 0.6 s: benches/latency/.)
 */

/**
 * How long a live picture may wait for data before the player moves to the live sync
 * position. A part that is merely late arrives well within this; what lasts longer is
 * a browser whose main thread froze for a second (a busy phone, software WebGL): hls.js
 * then resumes loading video from near the live edge, leaving a hole at the playhead,
 * while audio waits for video to catch up, and nothing plays until the playhead moves.
 */
const STALL_RECOVER_MS = 600;
/** Stall recoveries are at least this far apart, so a starved network does not thrash. */
const STALL_RECOVER_PAUSE_MS = 2000;

export const canUseHlsJs = () => Hls.isSupported();

/**
 * One attempt at playing `url`. Calls `events.onLevels(levels, audioOnly)` once the
 * multivariant playlist is read, `events.onLevel(level)` when the rendition changes and
 * `events.onFatal(kind)` (`offline`, `unauthorized`, `error`) when this attempt is over,
 * and `events.onStall()` each time playback ran out of data.
 */
export class Playback {
  constructor(video, url, token, events, { startLevel = -1 } = {}) {
    this.video = video;
    this.events = events;
    this.hls = null;
    this.audioOnlyUrl = null;
    if (Hls.isSupported()) {
      const hls = new Hls({ ...hlsConfig(token), startLevel });
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_LOADED, (_e, data) => {
        const audio = findAudioOnlyVariant(data.levels || []);
        this.audioOnlyUrl = audio ? audio.url : null;
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        // hls.js sends MANIFEST_PARSED from inside its own MANIFEST_LOADED handler, so
        // ours (which finds the audio-only variant) runs after this: report later.
        queueMicrotask(() => {
          if (this.hls !== hls) return;
          events.onLevels(hls.levels, Boolean(this.audioOnlyUrl));
          video.play().catch(() => events.onBlocked && events.onBlocked());
        });
      });
      hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => {
        const details = data.details;
        const hint = (details && (details.partHoldBack || details.holdBack)) || 0;
        if (details && details.live && hint > 0) this.holdBack = hint;
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => events.onLevel(hls.levels[data.level]));
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && events.onStall) events.onStall();
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
          return;
        }
        const status = data.response && data.response.code;
        const kind = status ? classifyStatus(status) : 'error';
        events.onFatal(kind === 'ok' ? 'error' : kind);
      });
      this.watchWaiting(video);
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Native HLS sends no headers of ours: the token goes in the URL only.
      video.src = withToken(url, token);
      video.addEventListener('loadedmetadata', this.nativeLoaded = () => {
        events.onLevels([], false);
        video.play().catch(() => events.onBlocked && events.onBlocked());
      });
      video.addEventListener('error', this.nativeError = () => events.onFatal('offline'));
    } else {
      events.onFatal('unsupported');
    }
  }

  /** Seconds behind the live edge, as hls.js measures it. */
  get latency() {
    return this.hls ? this.hls.latency : NaN;
  }

  /** The live playlist's PART-HOLD-BACK (HOLD-BACK without parts), once read. */
  get leastTargetLatency() {
    return this.holdBack || NaN;
  }

  /** The latency hls.js steers towards (from PART-HOLD-BACK in low-latency mode). */
  get targetLatency() {
    return this.hls ? this.hls.targetLatency : NaN;
  }

  set targetLatency(seconds) {
    if (this.hls) this.hls.targetLatency = seconds;
  }

  /**
   * Seeks to hls.js's live sync position when playback has fallen more than
   * `maxLatency` seconds behind the live edge (after long stalls, or a start while the
   * browser was busy): hls.js only catches up by playing faster, which with the short
   * LL-HLS buffer may never happen. Returns whether it jumped.
   */
  jumpToLive(maxLatency) {
    const hls = this.hls;
    if (!hls) return false;
    const position = hls.liveSyncPosition;
    if (!(hls.latency > maxLatency) || !(position > this.video.currentTime)) return false;
    this.video.currentTime = position;
    return true;
  }

  /**
   * Moves a stalled live picture to the live sync position after STALL_RECOVER_MS of
   * waiting (see there); hls.js's own gap handling only skips holes that the buffer
   * already shows a way past.
   */
  watchWaiting(video) {
    /** How often this playback was moved on from a stall, for diagnostics. */
    this.stallRecoveries = 0;
    let timer = null;
    let lastRecovery = -Infinity;
    const cancel = () => {
      clearTimeout(timer);
      timer = null;
    };
    this.onWaiting = () => {
      if (timer !== null || video.paused) return;
      const stalledAt = video.currentTime;
      timer = setTimeout(() => {
        timer = null;
        const now = performance.now();
        if (video.paused || video.currentTime !== stalledAt || now - lastRecovery < STALL_RECOVER_PAUSE_MS) return;
        if (this.jumpToLive(0.3)) {
          lastRecovery = now;
          this.stallRecoveries += 1;
        }
      }, STALL_RECOVER_MS);
    };
    this.onProgress = cancel;
    video.addEventListener('waiting', this.onWaiting);
    video.addEventListener('playing', this.onProgress);
    video.addEventListener('pause', this.onProgress);
    this.cancelStallTimer = cancel;
  }

  /** Index into the levels, -1 for automatic choice. */
  setLevel(index) {
    if (this.hls) {
      this.hls.currentLevel = index;
    }
  }

  get autoLevel() {
    return this.hls ? this.hls.autoLevelEnabled : true;
  }

  destroy() {
    if (this.hls) {
      this.cancelStallTimer();
      this.video.removeEventListener('waiting', this.onWaiting);
      this.video.removeEventListener('playing', this.onProgress);
      this.video.removeEventListener('pause', this.onProgress);
      this.hls.destroy();
      this.hls = null;
    } else {
      this.video.removeEventListener('loadedmetadata', this.nativeLoaded);
      this.video.removeEventListener('error', this.nativeError);
      this.video.removeAttribute('src');
      this.video.load();
    }
  }
}
