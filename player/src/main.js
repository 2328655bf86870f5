// The page at /watch/<slug>: asks the server what the stream is, plays it and wraps it
// around the viewer. The server renders <div id="panocast" data-slug="…"> and this
// bundle; everything else is built here. At /watch/vod/<asset> the server renders
// data-asset with the asset's projection and view instead, and the player plays the
// on-demand HLS with a seek bar (no live-edge catching up, no offline polling).

import './player.css';

import {
  MESSAGES,
  RETRY_MS,
  authHeaders,
  classifyStatus,
  dragView,
  formatLatency,
  HEAT_BEACON_MS,
  HeatAccumulator,
  isSpherical,
  levelLabel,
  shownLayout,
  StallBudget,
  viewerSessionId,
  withToken,
} from './model.js';
import { LIVE_SYNC_ON_STALL_INCREASE_S, Playback, canUseHlsJs } from './playback.js';
import { MIN_RENDER_SHARE, RENDER_SHARE, SphereView, deviceQuaternion } from './view.js';

const AUDIO_ONLY = 'audio';
const AUTO = 'auto';
/** How long a playing picture may stand still before the player asks if the stream ended. */
const STALL_MS = 6000;
/** Further behind live than this, the player jumps to the live edge. */
const MAX_LATENCY_S = 3;
/** Time to let a jump settle before the next. */
const JUMP_PAUSE_MS = 5000;
/** Smooth playback for this long gives back a step of render rate and latency. */
const CALM_MS = 15000;

/** `m:ss` (or `h:mm:ss`) of `seconds`. */
function formatClock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.appendChild(c);
  return node;
}

class Player {
  constructor(root) {
    this.slug = root.dataset.slug;
    /** An on-demand asset (`as_…`) rather than a live stream. */
    this.asset = root.dataset.asset || '';
    this.vod = Boolean(this.asset);
    this.token = new URLSearchParams(location.search).get('token') || '';
    /** What the overlay shows: connecting, offline, unauthorized, unknown, error, playing. */
    this.state = 'connecting';
    this.info = null;
    this.playback = null;
    this.view = null;
    this.audioOnly = false;
    this.retryTimer = null;
    this.buildDom(root);
    this.exposeTestHook();
    this.refresh();
    setInterval(() => this.updateStats(), 500);
    this.startHeatmap();
  }

  /**
   * The 360 heatmap: every 250 ms the time since the last look goes to the cell the
   * view points at (while playing), and every 10 s the cells go to the server's beacon
   * endpoint for this viewer session. The view is the dragged or set one; a headset's
   * or phone's own motion is not in it yet.
   */
  startHeatmap() {
    this.heat = new HeatAccumulator();
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      const seconds = Math.min(1, (now - last) / 1000);
      last = now;
      if (this.state === 'playing' && this.view && !this.video.paused) {
        this.heat.add(this.view.view.yaw, this.view.view.pitch, seconds);
      }
    }, 250);
    setInterval(() => this.sendHeatmap(), HEAT_BEACON_MS);
  }

  sendHeatmap() {
    const hls = this.playback && this.playback.hls;
    const urls = hls ? (hls.levels || []).map((l) => l.uri) : [];
    const sid = viewerSessionId(this.token, urls);
    const body = this.heat.take();
    if (!sid || !body) return;
    fetch(`/api/v1/viewer-sessions/${encodeURIComponent(sid)}/heatmap`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      keepalive: true,
    }).catch(() => {});
  }

  buildDom(root) {
    this.stage = el('div', { class: 'pc-stage' });
    this.video = el('video', {
      class: 'pc-video',
      crossorigin: 'anonymous',
      playsinline: '',
      'webkit-playsinline': '',
      muted: '',
      autoplay: '',
    });
    this.video.muted = true;
    this.stage.appendChild(this.video);

    this.message = el('div', { class: 'pc-message', role: 'status', text: MESSAGES.connecting });
    this.audioPanel = el('div', { class: 'pc-audio-only', text: 'audio only', hidden: '' });
    this.liveBadge = el('span', { class: 'pc-live', text: 'OFFLINE' });
    this.latencyText = el('span', { class: 'pc-latency', title: 'latency behind live' });
    this.renditionText = el('span', { class: 'pc-rendition' });
    this.top = el('div', { class: 'pc-top' }, [
      this.liveBadge,
      this.latencyText,
      this.renditionText,
    ]);

    this.muteButton = el('button', { class: 'pc-button', type: 'button', text: 'Unmute' });
    this.muteButton.addEventListener('click', () => this.toggleMute());
    this.quality = el('select', { class: 'pc-quality', 'aria-label': 'quality', hidden: '' });
    this.quality.addEventListener('change', () => this.chooseQuality(this.quality.value));
    this.vrButton = el('button', { class: 'pc-button', type: 'button', text: 'Enter VR', hidden: '' });
    this.vrButton.addEventListener('click', () => this.enterVr());
    this.motionButton = el('button', { class: 'pc-button', type: 'button', text: 'Motion', hidden: '' });
    this.motionButton.addEventListener('click', () => this.askMotion());
    this.fullscreenButton = el('button', { class: 'pc-button', type: 'button', text: 'Fullscreen' });
    this.fullscreenButton.addEventListener('click', () => this.toggleFullscreen());
    this.seek = el('input', {
      class: 'pc-seek',
      type: 'range',
      min: '0',
      max: '0',
      step: '0.1',
      value: '0',
      'aria-label': 'position',
      hidden: '',
    });
    this.seek.addEventListener('input', () => {
      this.video.currentTime = Number(this.seek.value);
    });
    this.clock = el('span', { class: 'pc-clock', hidden: '' });
    this.video.addEventListener('timeupdate', () => this.updateSeek());
    this.video.addEventListener('durationchange', () => this.updateSeek());
    this.bar = el('div', { class: 'pc-bar' }, [
      this.muteButton,
      this.seek,
      this.clock,
      this.quality,
      this.motionButton,
      this.vrButton,
      this.fullscreenButton,
    ]);

    this.root = root;
    root.classList.add('pc-root');
    root.append(this.stage, this.audioPanel, this.message, this.top, this.bar);
    this.message.addEventListener('click', () => {
      if (this.state === 'blocked') this.video.play().then(() => this.setState('playing'));
    });
    this.video.addEventListener('playing', () => {
      if (this.playback) this.setState('playing');
    });
    window.addEventListener('resize', () => this.view && this.view.resize());
    document.addEventListener('fullscreenchange', () => {
      this.fullscreenButton.textContent = document.fullscreenElement ? 'Exit fullscreen' : 'Fullscreen';
      if (this.view) this.view.resize();
    });
  }

  setState(state) {
    this.state = state;
    const text = state === 'playing' ? '' : MESSAGES[state] || state;
    this.message.textContent = text;
    this.message.hidden = !text;
    this.root.dataset.state = state;
    const playingText = this.vod ? '▶ VOD' : '● LIVE';
    this.liveBadge.textContent = state === 'playing' ? playingText : this.vod ? 'VOD' : 'OFFLINE';
    this.liveBadge.classList.toggle('pc-on', state === 'playing');
  }

  /** The seek bar and clock follow the video (on-demand only). */
  updateSeek() {
    if (!this.vod) return;
    const duration = this.video.duration;
    if (!Number.isFinite(duration) || duration <= 0) return;
    this.seek.hidden = false;
    this.clock.hidden = false;
    this.seek.max = String(duration);
    if (document.activeElement !== this.seek) this.seek.value = String(this.video.currentTime);
    this.clock.textContent = `${formatClock(this.video.currentTime)} / ${formatClock(duration)}`;
  }

  /** Asks the server about the stream and plays it if it is live; else retries. */
  async refresh() {
    clearTimeout(this.retryTimer);
    if (this.vod) {
      const d = this.root.dataset;
      this.info = {
        projection: d.projection,
        orientation: { yaw: Number(d.yaw) || 0, pitch: Number(d.pitch) || 0, roll: Number(d.roll) || 0 },
        playback_url: `/vod/${encodeURIComponent(this.asset)}/index.m3u8`,
        live: true,
      };
      this.setupView();
      this.startPlayback();
      return;
    }
    let response;
    try {
      response = await fetch(withToken(this.infoUrl(), this.token), {
        headers: authHeaders(this.token),
        cache: 'no-store',
      });
    } catch {
      this.setState('error');
      this.retryLater();
      return;
    }
    const kind = classifyStatus(response.status);
    if (kind !== 'ok') {
      this.setState(kind === 'offline' ? 'unknown' : kind);
      if (kind !== 'unauthorized') this.retryLater();
      return;
    }
    this.info = await response.json();
    this.setupView();
    if (!this.info.live) {
      this.setState('offline');
      this.retryLater();
      return;
    }
    this.startPlayback();
  }

  retryLater() {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.refresh(), RETRY_MS);
  }

  setupView() {
    if (this.view || this.flat !== undefined) return;
    const projection = shownLayout(this.info);
    this.flat = !isSpherical(projection);
    this.root.dataset.projection = projection;
    if (this.flat) return;
    // A stream that bakes its orientation into the pixels is already turned: turning
    // it again by the same angles would be twice.
    const o = this.info.bake_orientation ? {} : this.info.orientation || {};
    this.view = new SphereView(this.stage, this.video, projection, o);
    this.bindLookAround();
    this.view.xrSupported().then((ok) => {
      this.vrButton.hidden = !ok;
    });
    // Phones and headsets turn the view as they move; where the browser asks the user
    // first (iOS), that takes a tap on "Motion".
    const handheld = window.matchMedia && window.matchMedia('(pointer: coarse)').matches;
    if (handheld && window.DeviceOrientationEvent) {
      if (typeof DeviceOrientationEvent.requestPermission === 'function') {
        this.motionButton.hidden = false;
      } else {
        this.listenMotion();
      }
    }
  }

  startPlayback({ startLevel = -1, audioOnly = false } = {}) {
    if (this.playback) this.playback.destroy();
    this.currentLevel = null;
    this.audioOnly = audioOnly;
    this.audioPanel.hidden = !audioOnly;
    this.stage.hidden = audioOnly;
    const url = audioOnly && this.audioOnlyUrl ? this.audioOnlyUrl : this.info.playback_url;
    if (!canUseHlsJs() && !this.video.canPlayType('application/vnd.apple.mpegurl')) {
      this.setState('unsupported');
      return;
    }
    this.setState('connecting');
    this.budget = new StallBudget(
      {
        maxShare: RENDER_SHARE,
        minShare: MIN_RENDER_SHARE,
        // The playlist's PART-HOLD-BACK, set once the first live playlist is read.
        floor: NaN,
        step: LIVE_SYNC_ON_STALL_INCREASE_S,
        calmMs: CALM_MS,
      },
      performance.now(),
    );
    this.applyRenderShare();
    this.playback = new Playback(
      this.video,
      url,
      this.token,
      {
        onLevels: (levels, hasAudioOnly) => {
          if (!audioOnly) {
            this.levels = levels;
            this.hasAudioOnly = hasAudioOnly;
            if (this.playback.audioOnlyUrl) this.audioOnlyUrl = this.playback.audioOnlyUrl;
          }
          this.fillQualityMenu();
        },
        onLevel: (level) => {
          this.currentLevel = level;
          this.updateStats();
        },
        onBlocked: () => this.setState('blocked'),
        onStall: () => {
          this.budget.stalled(performance.now());
          this.applyRenderShare();
        },
        onFatal: (kind) => {
          this.playback.destroy();
          this.playback = null;
          this.setState(kind === 'offline' ? 'offline' : kind);
          if (kind !== 'unauthorized' && kind !== 'unsupported') this.retryLater();
        },
      },
      { startLevel },
    );
  }

  fillQualityMenu() {
    const options = [el('option', { value: AUTO, text: 'Auto' })];
    (this.levels || []).forEach((level, i) => {
      options.push(el('option', { value: String(i), text: levelLabel(level) }));
    });
    if (this.hasAudioOnly) options.push(el('option', { value: AUDIO_ONLY, text: 'Audio only' }));
    this.quality.replaceChildren(...options);
    this.quality.value = this.audioOnly ? AUDIO_ONLY : this.chosenLevel ?? AUTO;
    this.quality.hidden = options.length < 2;
  }

  chooseQuality(value) {
    if (value === AUDIO_ONLY) {
      this.chosenLevel = AUDIO_ONLY;
      this.startPlayback({ audioOnly: true });
      return;
    }
    const index = value === AUTO ? -1 : Number(value);
    this.chosenLevel = value;
    if (this.audioOnly) {
      // Back from audio only: a new start, on the chosen rendition.
      this.startPlayback({ startLevel: index });
    } else if (this.playback) {
      this.playback.setLevel(index);
    }
  }

  applyRenderShare() {
    if (this.view && this.budget) this.view.renderShare = this.budget.share;
  }

  updateStats() {
    if (!this.vod) this.watchStall();
    if (!this.vod && this.state === 'playing' && this.playback && !this.video.paused) {
      const now = performance.now();
      this.budget.floor = this.playback.leastTargetLatency;
      const target = this.budget.calm(now, this.playback.targetLatency);
      if (target !== null) this.playback.targetLatency = target;
      this.applyRenderShare();
      if (!(now - this.lastJump < JUMP_PAUSE_MS) && this.playback.jumpToLive(MAX_LATENCY_S)) {
        this.lastJump = now;
        this.liveJumps = (this.liveJumps || 0) + 1;
      }
    }
    const latency = this.playback ? this.playback.latency : NaN;
    this.latencyText.textContent = this.state === 'playing' && !this.vod ? formatLatency(latency) : '';
    let rendition = '';
    if (this.state === 'playing') {
      if (this.audioOnly) rendition = 'audio only';
      else if (this.currentLevel) rendition = levelLabel(this.currentLevel);
    }
    this.renditionText.textContent = rendition;
    this.muteButton.textContent = this.video.muted ? 'Unmute' : 'Mute';
  }

  /**
   * A publisher that stops leaves its last playlists behind: when the picture has not
   * moved for a while, ask the server whether the stream is still live and go back to
   * waiting for it if not.
   */
  watchStall() {
    const now = performance.now();
    if (this.state !== 'playing' || this.video.currentTime !== this.lastTime) {
      this.lastTime = this.video.currentTime;
      this.lastProgress = now;
      return;
    }
    if (now - this.lastProgress < STALL_MS || this.checkingStall) return;
    this.checkingStall = true;
    this.lastProgress = now;
    fetch(withToken(this.infoUrl(), this.token), { headers: authHeaders(this.token), cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((info) => {
        if (info && !info.live && this.playback) {
          this.playback.destroy();
          this.playback = null;
          this.setState('offline');
          this.retryLater();
        }
      })
      .catch(() => {})
      .finally(() => {
        this.checkingStall = false;
      });
  }

  infoUrl() {
    return `/api/v1/streams/${encodeURIComponent(this.slug)}`;
  }

  toggleMute() {
    this.video.muted = !this.video.muted;
    if (!this.video.muted && this.video.paused) this.video.play().catch(() => {});
    this.updateStats();
  }

  toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else if (this.root.requestFullscreen) {
      this.root.requestFullscreen().catch(() => {});
    } else if (this.video.webkitEnterFullscreen) {
      this.video.webkitEnterFullscreen(); // iPhone: the video element only
    }
  }

  async enterVr() {
    try {
      await this.view.enterVr();
    } catch (e) {
      this.message.textContent = `could not enter VR: ${e.message}`;
      this.message.hidden = false;
    }
  }

  bindLookAround() {
    const canvas = this.view.renderer.domElement;
    const pointers = new Map();
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    });
    canvas.addEventListener('pointermove', (e) => {
      const last = pointers.get(e.pointerId);
      if (!last) return;
      const next = dragView(this.view.view, e.clientX - last.x, e.clientY - last.y, this.view.camera.fov, canvas.clientHeight);
      this.view.setView(next.yaw, next.pitch);
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    });
    const end = (e) => pointers.delete(e.pointerId);
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  async askMotion() {
    try {
      if ((await DeviceOrientationEvent.requestPermission()) === 'granted') {
        this.motionButton.hidden = true;
        this.listenMotion();
      }
    } catch {
      this.motionButton.hidden = true;
    }
  }

  listenMotion() {
    let alpha0 = null;
    window.addEventListener('deviceorientation', (e) => {
      if (e.alpha === null || e.beta === null || e.gamma === null || !this.view) return;
      // Start from the heading the device has now, so the view does not jump.
      if (alpha0 === null) alpha0 = e.alpha;
      const screenDeg = (screen.orientation && screen.orientation.angle) || window.orientation || 0;
      this.view.setDeviceQuaternion(deviceQuaternion(e.alpha - alpha0, e.beta, e.gamma, screenDeg));
    });
  }

  /** For end-to-end tests: state, elements and a deterministic way to turn the view. */
  exposeTestHook() {
    const player = this;
    window.__panocast = {
      get state() {
        return player.state;
      },
      get video() {
        return player.video;
      },
      get view() {
        return player.view;
      },
      get renderer() {
        return player.view && player.view.renderer;
      },
      get camera() {
        return player.view && player.view.camera;
      },
      get latency() {
        return player.playback ? player.playback.latency : null;
      },
      get hls() {
        return player.playback && player.playback.hls;
      },
      get liveJumps() {
        return player.liveJumps || 0;
      },
      get stallRecoveries() {
        return (player.playback && player.playback.stallRecoveries) || 0;
      },
      get targetLatency() {
        return player.playback ? player.playback.targetLatency : null;
      },
      get renderShare() {
        return player.view ? player.view.renderShare : null;
      },
      get audioOnly() {
        return player.audioOnly;
      },
      get info() {
        return player.info;
      },
      /** Sends the heatmap beacon now instead of at the next 10 s tick. */
      sendHeatmap() {
        player.sendHeatmap();
      },
      setView(yawDeg, pitchDeg) {
        player.view.setDeviceQuaternion(null);
        player.view.setView(yawDeg, pitchDeg);
      },
      getView() {
        return player.view && { ...player.view.view };
      },
      sample(cols, rows) {
        return player.view ? player.view.sample(cols, rows) : null;
      },
      chooseQuality(value) {
        player.quality.value = value;
        player.chooseQuality(value);
      },
    };
  }
}

const root = document.getElementById('panocast');
if (root) new Player(root);
