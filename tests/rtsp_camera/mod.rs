//! A test-only RTSP camera: gst-rtsp-server serving a live 1920x960 H.264 test
//! pattern with AAC audio on 127.0.0.1, optionally behind digest authentication.
//!
//! The camera runs in a child process (this test binary, re-run with one ignored
//! test selected), so "the camera goes away" is a real process exit that closes its
//! sockets, and "the camera stalls" is SIGSTOP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gstreamer_rtsp_server as rtsp_server;
use rtsp_server::prelude::*;
use rtsp_server::{glib, gst, gst_rtsp};

/// The mount point the camera serves.
pub const PATH: &str = "/cam";

const PORT_VAR: &str = "PANOCAST_TEST_CAMERA_PORT";
const AUTH_VAR: &str = "PANOCAST_TEST_CAMERA_AUTH";
const CODEC_VAR: &str = "PANOCAST_TEST_CAMERA_CODEC";
const READY: &str = "camera listening on port ";

/// 30 fps 1920x960 (2:1, equirectangular-shaped), a keyframe every 2 s, no B-frames
/// (zerolatency); 48 kHz stereo AAC. ultrafast keeps CI's two cores free.
const LAUNCH: &str = "( videotestsrc is-live=true \
    ! video/x-raw,width=1920,height=960,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=2000 \
    ! rtph264pay name=pay0 pt=96 config-interval=-1 \
    audiotestsrc is-live=true wave=sine \
    ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
    ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )";

/// The H.265 camera: 640x320 (x265 in real time must leave CI's two cores room), a
/// keyframe every second, zerolatency (no B-frames), parameter sets in band before
/// every IDR as most cameras send them; the same AAC.
const LAUNCH_H265: &str = "( videotestsrc is-live=true \
    ! video/x-raw,format=I420,width=640,height=320,framerate=30/1 \
    ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=800 \
    ! rtph265pay name=pay0 pt=96 config-interval=-1 \
    audiotestsrc is-live=true wave=sine \
    ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
    ! avenc_aac ! rtpmp4gpay name=pay1 pt=97 )";

/// The small H.264 camera of the golden capture (`tests/data/capture-rtsp.sh`):
/// 320x160, a keyframe every second, so a few seconds make a small file.
const LAUNCH_H264_SMALL: &str = "( videotestsrc is-live=true \
    ! video/x-raw,width=320,height=160,framerate=25/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=150 \
    ! rtph264pay name=pay0 pt=96 config-interval=-1 \
    audiotestsrc is-live=true wave=sine \
    ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
    ! avenc_aac bitrate=64000 ! rtpmp4gpay name=pay1 pt=97 )";

/// A running camera process, killed on drop.
pub struct Camera {
    child: Child,
    pub port: u16,
}

impl Camera {
    /// Starts a camera on `port` (0: a free one); with `auth`, only that user and
    /// password may play (digest).
    pub fn start(port: u16, auth: Option<(&str, &str)>) -> Camera {
        Camera::start_codec(port, auth, "h264")
    }

    /// [`Camera::start`] serving `codec`: `h264` or `h265`.
    pub fn start_codec(port: u16, auth: Option<(&str, &str)>, codec: &str) -> Camera {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", "rtsp_camera_process", "--ignored", "--nocapture"])
            .env(PORT_VAR, port.to_string())
            .env(CODEC_VAR, codec)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((user, pass)) = auth {
            cmd.env(AUTH_VAR, format!("{user}:{pass}"));
        }
        let mut child = cmd.spawn().expect("start camera process");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(p) = line.strip_prefix(READY) {
                        break p.trim().parse().expect("port");
                    }
                }
                _ => panic!("camera process exited before listening"),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Camera { child, port }
    }

    /// `rtsp://127.0.0.1:PORT/cam`, with `userinfo` (`user:pass`) when given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(u) => format!("rtsp://{u}@127.0.0.1:{}{PATH}", self.port),
            None => format!("rtsp://127.0.0.1:{}{PATH}", self.port),
        }
    }

    /// Freezes (`true`) or resumes the camera process: its sockets stay open, nothing
    /// is sent.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Kills the camera and waits until it is gone.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let the port leave the kernel's books before a restart binds it again.
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The camera process's body: serve until killed. Panics are fine here, this is a
/// test fixture.
pub fn serve_from_env() {
    let Ok(port) = std::env::var(PORT_VAR) else {
        return;
    };
    gst::init().expect("gstreamer init");
    let main_loop = glib::MainLoop::new(None, false);
    let server = rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port);
    let factory = rtsp_server::RTSPMediaFactory::new();
    match std::env::var(CODEC_VAR).as_deref() {
        Ok("h265") => factory.set_launch(LAUNCH_H265),
        Ok("h264-small") => factory.set_launch(LAUNCH_H264_SMALL),
        _ => factory.set_launch(LAUNCH),
    }
    if let Ok(auth_var) = std::env::var(AUTH_VAR) {
        let (user, pass) = auth_var.split_once(':').expect("user:pass");
        let auth = rtsp_server::RTSPAuth::new();
        let token = rtsp_server::RTSPToken::builder()
            .field(rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
            .build();
        auth.add_digest(user, pass, &token);
        auth.set_supported_methods(gst_rtsp::RTSPAuthMethod::Digest);
        server.set_auth(Some(&auth));
        factory.add_role_from_structure(
            &gst::Structure::builder("viewer")
                .field(rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                .field(rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                .build(),
        );
    }
    server
        .mount_points()
        .expect("mount points")
        .add_factory(PATH, factory);
    let _source = server.attach(None).expect("bind the RTSP port");
    println!("{READY}{}", server.bound_port());
    main_loop.run();
}
