// three.js rendering of the video: an inside-out sphere per eye (a cubemap's is drawn
// by cubemap.js), look-around state and WebXR. Flat streams never get here: they show
// the <video> element itself.

import {
  Euler,
  Group,
  MathUtils,
  Mesh,
  MeshBasicMaterial,
  PerspectiveCamera,
  Quaternion,
  Scene,
  SphereGeometry,
  SRGBColorSpace,
  Vector3,
  VideoTexture,
  WebGLRenderer,
} from 'three';

import { cubemapSphere } from './cubemap.js';
import { CUBEMAP, clampPitch, eyeUv, isStereo, wrapYaw } from './model.js';

const RADIUS = 500;
/** Vertical field of view in degrees: landscape screens, and portrait (phones held upright). */
const FOV_LANDSCAPE = 75;
const FOV_PORTRAIT = 95;

/** The most of the main thread that rendering may take outside VR. */
export const RENDER_SHARE = 0.3;
/** The least share playback stalls may cut it to (see StallBudget). */
export const MIN_RENDER_SHARE = 0.08;
/** However slow rendering is, the picture moves at least this often (4 fps). */
const MAX_RENDER_INTERVAL_MS = 250;
/** Caps the average so one slow render never stops the picture for long (≥ 5 fps). */
const MAX_RENDER_COST_MS = 60;

/** Layers three.js's WebXR cameras use for each eye (1 = left, 2 = right). */
const LAYER_LEFT = 1;
const LAYER_RIGHT = 2;

/**
 * One inside-out sphere textured with the part of the frame `eye` sees. `scale(-1, 1, 1)`
 * turns the faces inward and un-mirrors the texture seen from the centre.
 */
function eyeSphere(texture, projection, eye) {
  const geometry = new SphereGeometry(RADIUS, 96, 48);
  geometry.scale(-1, 1, 1);
  const { offsetU, offsetV, scaleU, scaleV } = eyeUv(projection, eye);
  const uv = geometry.attributes.uv;
  for (let i = 0; i < uv.count; i++) {
    uv.setXY(i, offsetU + uv.getX(i) * scaleU, offsetV + uv.getY(i) * scaleV);
  }
  return new Mesh(geometry, new MeshBasicMaterial({ map: texture }));
}

/**
 * The 360 view of `video` in `container`. `view` is `{ yaw, pitch, roll }` in degrees:
 * yaw turns right, pitch looks up. The centre of the equirect frame is yaw 0.
 */
export class SphereView {
  constructor(container, video, projection, initial) {
    this.video = video;
    this.projection = projection;
    this.view = { yaw: wrapYaw(initial.yaw || 0), pitch: clampPitch(initial.pitch || 0) };
    this.roll = initial.roll || 0;
    /** Device orientation, as a quaternion, while the device reports one. */
    this.deviceQuaternion = null;
    this.dirty = true;
    this.lastFrameTime = -1;
    this.lastRenderAt = -Infinity;
    /** Moving average of how long one render takes on the main thread, in ms. */
    this.renderCost = 0;
    this.renderShare = RENDER_SHARE;

    this.renderer = new WebGLRenderer({ antialias: false, powerPreference: 'high-performance' });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.xr.enabled = true;
    this.renderer.xr.setReferenceSpaceType('local');
    this.renderer.domElement.className = 'pc-canvas';
    container.appendChild(this.renderer.domElement);

    this.camera = new PerspectiveCamera(FOV_LANDSCAPE, 1, 0.1, RADIUS * 2);
    // The mono view (and a mono stream's only sphere) is the left eye.
    this.camera.layers.enable(LAYER_LEFT);
    this.scene = new Scene();
    this.world = new Group();
    // SphereGeometry puts the frame's centre column on +X; after the flip it is on -X.
    // A quarter turn brings it in front of a camera looking down -Z.
    this.baseYaw = -Math.PI / 2;
    this.world.rotation.y = this.baseYaw;
    this.scene.add(this.world);

    this.texture = new VideoTexture(video);
    this.texture.colorSpace = SRGBColorSpace;
    if (isStereo(projection)) {
      const left = eyeSphere(this.texture, projection, 'left');
      left.layers.set(LAYER_LEFT);
      const right = eyeSphere(this.texture, projection, 'right');
      right.layers.set(LAYER_RIGHT);
      this.world.add(left, right);
    } else if (projection === CUBEMAP) {
      this.world.add(cubemapSphere(this.texture, RADIUS));
    } else {
      this.world.add(eyeSphere(this.texture, projection, 'left'));
    }

    this.resize();
    this.renderer.xr.addEventListener('sessionstart', () => {
      // The headset owns the camera; turn the world so the view starts where it was.
      this.world.rotation.y = this.baseYaw + MathUtils.degToRad(this.view.yaw);
    });
    this.renderer.xr.addEventListener('sessionend', () => {
      this.world.rotation.y = this.baseYaw;
      this.dirty = true;
      this.resize();
    });
    this.renderer.setAnimationLoop(() => this.frame());
  }

  resize() {
    const el = this.renderer.domElement.parentElement;
    const w = Math.max(1, el.clientWidth);
    const h = Math.max(1, el.clientHeight);
    if (this.renderer.xr.isPresenting) return;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.fov = w < h ? FOV_PORTRAIT : FOV_LANDSCAPE;
    this.camera.updateProjectionMatrix();
    this.dirty = true;
  }

  setView(yaw, pitch) {
    this.view = { yaw: wrapYaw(yaw), pitch: clampPitch(pitch) };
    this.dirty = true;
  }

  setDeviceQuaternion(q) {
    this.deviceQuaternion = q;
    this.dirty = true;
  }

  applyCamera() {
    const look = new Quaternion().setFromEuler(
      new Euler(
        MathUtils.degToRad(this.view.pitch),
        MathUtils.degToRad(-this.view.yaw),
        MathUtils.degToRad(this.roll),
        'YXZ',
      ),
    );
    if (this.deviceQuaternion) {
      // Dragging turns around the vertical axis on top of how the device is held.
      const yawOnly = new Quaternion().setFromAxisAngle(
        new Vector3(0, 1, 0),
        MathUtils.degToRad(-this.view.yaw),
      );
      this.camera.quaternion.copy(yawOnly).multiply(this.deviceQuaternion);
    } else {
      this.camera.quaternion.copy(look);
    }
  }

  /**
   * Renders when something changed: a new video frame, the view or the size. Outside
   * VR, rendering may take at most RENDER_SHARE of the main thread: uploading a video
   * frame is synchronous, and on a device without a fast GPU (software WebGL) it takes
   * tens of milliseconds. Rendering every frame there starves hls.js, which loads the
   * parts on the same thread, and playback stalls; a lower frame rate keeps it live.
   */
  frame() {
    if (this.renderer.xr.isPresenting) {
      this.render();
      return;
    }
    const now = performance.now();
    if (!this.dirty && this.video.currentTime === this.lastFrameTime) return;
    const interval = Math.min(MAX_RENDER_INTERVAL_MS, this.renderCost / this.renderShare);
    if (now - this.lastRenderAt < interval) return;
    this.lastRenderAt = now;
    this.render();
    const cost = performance.now() - now;
    this.renderCost = Math.min(MAX_RENDER_COST_MS, this.renderCost * 0.8 + cost * 0.2);
  }

  render() {
    this.lastFrameTime = this.video.currentTime;
    this.dirty = false;
    this.applyCamera();
    this.renderer.render(this.scene, this.camera);
  }

  /**
   * Renders now and reads the drawing buffer back in the same task (no
   * preserveDrawingBuffer needed): a `cols`×`rows` grid of mean colours plus the
   * variance of all channels, for tests and diagnostics.
   */
  sample(cols = 16, rows = 9) {
    this.render();
    const gl = this.renderer.getContext();
    const w = gl.drawingBufferWidth;
    const h = gl.drawingBufferHeight;
    const px = new Uint8Array(w * h * 4);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    const grid = [];
    let sum = 0;
    let sumSq = 0;
    let n = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const acc = [0, 0, 0];
        let cnt = 0;
        const x0 = Math.floor((c * w) / cols);
        const x1 = Math.floor(((c + 1) * w) / cols);
        const y0 = Math.floor((r * h) / rows);
        const y1 = Math.floor(((r + 1) * h) / rows);
        for (let y = y0; y < y1; y += 2) {
          for (let x = x0; x < x1; x += 2) {
            const i = (y * w + x) * 4;
            for (let k = 0; k < 3; k++) {
              acc[k] += px[i + k];
              sum += px[i + k];
              sumSq += px[i + k] * px[i + k];
              n++;
            }
            cnt++;
          }
        }
        grid.push(acc.map((v) => Math.round(v / Math.max(1, cnt))));
      }
    }
    const mean = sum / Math.max(1, n);
    return { width: w, height: h, grid, mean, variance: sumSq / Math.max(1, n) - mean * mean };
  }

  async xrSupported() {
    if (!navigator.xr || !window.isSecureContext) return false;
    try {
      return await navigator.xr.isSessionSupported('immersive-vr');
    } catch {
      return false;
    }
  }

  async enterVr() {
    const session = await navigator.xr.requestSession('immersive-vr', {
      optionalFeatures: ['local-floor'],
    });
    await this.renderer.xr.setSession(session);
    return session;
  }

  dispose() {
    this.renderer.setAnimationLoop(null);
    this.texture.dispose();
    this.renderer.dispose();
    this.renderer.domElement.remove();
  }
}

/**
 * Camera quaternion for a DeviceOrientationEvent (alpha/beta/gamma in degrees) and the
 * screen's rotation in degrees, following the W3C DeviceOrientation spec's example.
 */
export function deviceQuaternion(alpha, beta, gamma, screenDeg) {
  const euler = new Euler(
    MathUtils.degToRad(beta),
    MathUtils.degToRad(alpha),
    MathUtils.degToRad(-gamma),
    'YXZ',
  );
  const q = new Quaternion().setFromEuler(euler);
  // The camera looks out of the back of the device, not out of its top.
  q.multiply(new Quaternion(-Math.sqrt(0.5), 0, 0, Math.sqrt(0.5)));
  q.multiply(new Quaternion().setFromAxisAngle(new Vector3(0, 0, 1), -MathUtils.degToRad(screenDeg)));
  return q;
}
