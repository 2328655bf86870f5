//! RTMP ingest against real publishers: ffmpeg 5.1 (libx264 + native AAC) and raw
//! sockets sending garbage. Each test runs its own server on 127.0.0.1:0 with a
//! recording sink.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use panocast::ingest::rtmp::{serve, RtmpConfig};
use panocast::media::{AccessUnit, MediaEvent, TrackKind, WallClockAnchor};
use panocast::streams::events::EventBus;
use panocast::streams::owner::StreamContext;
use panocast::streams::registry::StreamRegistry;
use panocast::streams::worker::{MediaSink, SinkFactory};
use panocast::streams::{StreamDef, StreamDirectory};
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::RtmpMessage;
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const KEY: &str = "s3cret-key-0001";
const SLUG: &str = "test-360";
/// The key `tests/data/capture-rtmp.sh` publishes the golden sessions with.
const GOLDEN_KEY: &str = "capture-key";

/// What the sink saw, in order.
#[derive(Debug, Clone)]
enum Seen {
    Begin,
    Event(MediaEvent),
    End,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn snapshot(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|s| f(s)).count()
    }

    fn video_units(&self) -> usize {
        self.count(|s| matches!(s, Seen::Event(MediaEvent::Unit(u)) if u.kind == TrackKind::Video))
    }

    async fn wait_for(&self, what: &str, f: impl Fn(&Recorder) -> bool) {
        for _ in 0..200 {
            if f(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

struct RecordingSink(Recorder);

impl MediaSink for RecordingSink {
    fn set_stream(&mut self, _stream: &Arc<StreamDef>) {}
    fn end_live_session(&mut self) {}
    fn playable_msn(&self) -> Option<u64> {
        None
    }
    fn close(&mut self, _gone: bool) {}
    fn begin_session(&mut self, _anchor: WallClockAnchor) {
        self.0 .0.lock().unwrap().push(Seen::Begin);
    }
    fn push(&mut self, event: MediaEvent) {
        self.0 .0.lock().unwrap().push(Seen::Event(event));
    }
    fn end_session(&mut self) {
        self.0 .0.lock().unwrap().push(Seen::End);
    }
}

struct RecordingFactory(Recorder);

impl SinkFactory for RecordingFactory {
    fn create(&self, stream: &Arc<StreamDef>) -> Box<dyn MediaSink> {
        assert_eq!(stream.slug, SLUG);
        Box::new(RecordingSink(self.0.clone()))
    }
}

/// The one stream these tests publish, with its key.
struct OneStream(Arc<StreamDef>);

#[async_trait::async_trait]
impl StreamDirectory for OneStream {
    async fn by_publish_key(&self, stream_key: &str) -> Option<Arc<StreamDef>> {
        (stream_key == KEY || stream_key == GOLDEN_KEY).then(|| Arc::clone(&self.0))
    }
    async fn by_slug(&self, slug: &str) -> Option<Arc<StreamDef>> {
        (slug == SLUG).then(|| Arc::clone(&self.0))
    }
}

struct Server {
    addr: SocketAddr,
    recorder: Recorder,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("panocast=debug")
            .try_init();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorder = Recorder::default();
        let mut def = StreamDef::new(SLUG);
        def.id = "st_test".to_owned();
        let directory = Arc::new(OneStream(Arc::new(def)));
        let config = RtmpConfig {
            app: "live".to_owned(),
            handshake_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(2),
        };
        let shutdown = CancellationToken::new();
        let streams = StreamRegistry::new(StreamContext {
            factory: Arc::new(RecordingFactory(recorder.clone())),
            bus: EventBus::new(),
            rtsp: panocast::config::Config::default().rtsp_settings(),
            shutdown: shutdown.clone(),
            tasks: tokio_util::task::TaskTracker::new(),
            max_live_streams: 16,
            stream_memory_bytes: panocast::streams::memory::DEFAULT_BUDGET,
        });
        let task = tokio::spawn(serve(
            listener,
            directory,
            streams,
            config,
            Arc::new(panocast::limits::Limits::new(
                &panocast::config::LimitsConfig::default(),
            )),
            shutdown.clone(),
        ));
        Server {
            addr,
            recorder,
            shutdown,
            task,
        }
    }

    fn url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.addr)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap();
    }
}

/// ffmpeg publishing test video (B-frames on, libx264 defaults) and a 440 Hz tone.
fn ffmpeg(url: &str, seconds: u32) -> tokio::process::Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x320:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-g", "30", "-c:a", "aac", "-f", "flv", url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg must be installed")
}

async fn exit_within(child: &mut tokio::process::Child, secs: u64) -> ExitStatus {
    tokio::time::timeout(Duration::from_secs(secs), child.wait())
        .await
        .expect("ffmpeg did not exit in time")
        .unwrap()
}

fn units(seen: &[Seen], kind: TrackKind) -> Vec<AccessUnit> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(MediaEvent::Unit(u)) if u.kind == kind => Some(u.clone()),
            _ => None,
        })
        .collect()
}

/// Reads until the server closes; panics if it keeps the connection open.
async fn expect_closed_by_server(mut socket: TcpStream, within: Duration) {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => panic!("server kept the connection open"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// A finished client handshake on a fresh connection.
async fn handshaken(addr: SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let mut client = Handshake::new(PeerType::Client);
    socket
        .write_all(&client.generate_outbound_p0_and_p1().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during handshake");
        match client.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).await.unwrap()
            }
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                socket.write_all(&response_bytes).await.unwrap();
                return socket;
            }
        }
    }
}

async fn short_publish_works(server: &Server) {
    let before = server.recorder.video_units();
    let mut ff = ffmpeg(&server.url(KEY), 1);
    assert!(exit_within(&mut ff, 20).await.success());
    server
        .recorder
        .wait_for("media from a later publish", |r| {
            r.video_units() >= before + 20
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_delivers_h264_and_aac() {
    let server = Server::start().await;
    let mut ff = ffmpeg(&server.url(KEY), 4);
    let status = exit_within(&mut ff, 30).await;
    assert!(status.success(), "ffmpeg failed: {status}");
    server
        .recorder
        .wait_for("end_session", |r| r.count(|s| matches!(s, Seen::End)) == 1)
        .await;
    let seen = server.recorder.snapshot();

    assert!(matches!(seen.first(), Some(Seen::Begin)));
    assert!(matches!(seen.last(), Some(Seen::End)));
    let video_configs: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Event(MediaEvent::VideoConfig(c)) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(video_configs.len(), 1);
    let vc = &video_configs[0];
    assert_eq!((vc.width(), vc.height()), (640, 320));
    assert!(
        vc.codec_string().starts_with("avc1.64"),
        "{}",
        vc.codec_string()
    );
    assert_eq!(vc.frame_rate(), Some(30.0));
    let audio_configs: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Event(MediaEvent::AudioConfig(c)) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(audio_configs.len(), 1);
    assert_eq!(audio_configs[0].sample_rate, 48_000);
    assert_eq!(audio_configs[0].codec_string(), "mp4a.40.2");

    let video = units(&seen, TrackKind::Video);
    let audio = units(&seen, TrackKind::Audio);
    assert!(
        (115..=125).contains(&video.len()),
        "{} video units",
        video.len()
    );
    assert!(
        (180..=195).contains(&audio.len()),
        "{} audio units",
        audio.len()
    );

    let keyframes: Vec<usize> = video
        .iter()
        .enumerate()
        .filter(|(_, u)| u.keyframe)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(keyframes.first(), Some(&0));
    for i in (0..video.len()).step_by(30) {
        assert!(
            keyframes.contains(&i),
            "no keyframe at frame {i}: {keyframes:?}"
        );
    }
    assert!(keyframes.len() <= 5, "{keyframes:?}");

    assert!(
        video.iter().any(|u| u.pts > u.dts),
        "no B-frame reordering seen"
    );
    for track in [&video, &audio] {
        assert!(track.windows(2).all(|w| w[0].dts <= w[1].dts));
        assert!(track.iter().all(|u| u.timebase == 1000 && u.pts >= u.dts));
        assert!(track.windows(2).all(|w| w[0].received <= w[1].received));
    }
    // Every video unit is AVCC with 4-byte lengths.
    for u in &video {
        let mut pos = 0;
        while pos < u.data.len() {
            let len = u32::from_be_bytes(u.data[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 4 + len;
        }
        assert_eq!(pos, u.data.len());
    }
    // 4 s of media: the last video dts is near 3.97 s.
    let last = video.last().unwrap();
    assert!(
        (3800..=4100).contains(&(last.dts - video[0].dts)),
        "{}",
        last.dts
    );
    server.stop().await;
}

/// The golden sessions of `tests/data/` (ffmpeg 5.1 H.264, ffmpeg 7 enhanced-RTMP
/// HEVC, OBS Studio 29 H.264 with B-frames and its audio header first), written to the
/// socket as fast as it takes them: the server answers a handshake whose C2 echoes
/// another server's S1, holds the media sent right behind `publish` until the key is
/// checked, and delivers every frame of the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_sessions_replay_through_the_server() {
    let server = Server::start().await;
    // Video units, keyframes and audio units each session holds
    // (src/ingest/rtmp/golden.rs checks them against the encoders' settings).
    for (i, (name, counts)) in [
        ("ffmpeg-5.1.9-rtmp-h264-aac.bin", (75, 3, 142)),
        ("ffmpeg-7.0.2-rtmp-enhanced-hevc-aac.bin", (75, 3, 142)),
        ("obs-studio-29.0.2-rtmp-h264-aac.bin", (92, 4, 141)),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        let before = server.recorder.snapshot().len();
        let socket = TcpStream::connect(server.addr).await.unwrap();
        let (mut rx, mut tx) = socket.into_split();
        // Replies are read and dropped, so the server never waits on a full socket.
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = rx.read_to_end(&mut sink).await;
        });
        tx.write_all(&bytes).await.unwrap();
        server
            .recorder
            .wait_for("the end of the replayed session", |r| {
                r.count(|s| matches!(s, Seen::End)) == i + 1
            })
            .await;
        let seen = server.recorder.snapshot()[before..].to_vec();
        let video = units(&seen, TrackKind::Video);
        let audio = units(&seen, TrackKind::Audio);
        let keyframes = video.iter().filter(|u| u.keyframe).count();
        assert_eq!((video.len(), keyframes, audio.len()), counts, "{name}");
        assert!(video.windows(2).all(|w| w[0].dts <= w[1].dts), "{name}");
        assert!(audio.windows(2).all(|w| w[0].dts <= w[1].dts), "{name}");
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_refused() {
    let server = Server::start().await;
    let mut ff = ffmpeg(&server.url("not-the-key"), 2);
    let status = exit_within(&mut ff, 20).await;
    assert!(!status.success(), "ffmpeg published with a wrong key");
    // Give the server a moment: nothing may reach the sink.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.recorder.snapshot().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_handshakes_are_closed() {
    let server = Server::start().await;
    let within = Duration::from_secs(4);

    // Not RTMP at all: wrong version byte.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    expect_closed_by_server(s, within).await;

    // Random bytes behind a valid version byte: taken as an old-style C1, then no C2.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut junk = vec![3u8];
    let mut x: u32 = 0x9e37_79b9;
    junk.extend((0..3000).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    s.write_all(&junk).await.unwrap();
    expect_closed_by_server(s, within).await;

    // Truncated handshake: C0 and half of C1, then silence.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&[3u8; 700]).await.unwrap();
    expect_closed_by_server(s, within).await;

    // Handshake, then chunk-stream garbage.
    let mut s = handshaken(server.addr).await;
    s.write_all(&[0xff; 2048]).await.unwrap();
    expect_closed_by_server(s, within).await;

    // Handshake, then an `@setDataFrame` with no arguments: rml_rtmp 0.8 panics on it.
    let mut s = handshaken(server.addr).await;
    let payload = RtmpMessage::Amf0Data {
        values: vec![Amf0Value::Utf8String("@setDataFrame".to_owned())],
    }
    .into_message_payload(RtmpTimestamp::new(0), 0)
    .unwrap();
    let packet = ChunkSerializer::new()
        .serialize(&payload, true, false)
        .unwrap();
    s.write_all(&packet.bytes).await.unwrap();
    expect_closed_by_server(s, within).await;

    // A silent connection is closed after the handshake timeout.
    let s = TcpStream::connect(server.addr).await.unwrap();
    expect_closed_by_server(s, within).await;

    assert!(server.recorder.snapshot().is_empty());
    short_publish_works(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_takes_over() {
    let server = Server::start().await;
    let mut first = ffmpeg(&server.url(KEY), 10);
    server
        .recorder
        .wait_for("the first publisher's media", |r| r.video_units() >= 30)
        .await;
    let mut second = ffmpeg(&server.url(KEY), 3);
    // The first is cut off long before its 10 s are up.
    let first_status = exit_within(&mut first, 5).await;
    assert!(!first_status.success(), "first ffmpeg was not disconnected");
    assert!(exit_within(&mut second, 20).await.success());
    server
        .recorder
        .wait_for("end_session", |r| r.count(|s| matches!(s, Seen::End)) == 1)
        .await;

    let seen = server.recorder.snapshot();
    let begins: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Seen::Begin))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(begins.len(), 2);
    assert!(matches!(seen.last(), Some(Seen::End)));
    // The first session's end is the takeover, not an end_session call.
    assert!(!seen[..begins[1]].iter().any(|s| matches!(s, Seen::End)));
    let after = &seen[begins[1]..];
    assert!(after
        .iter()
        .any(|s| matches!(s, Seen::Event(MediaEvent::VideoConfig(_)))));
    let video = units(after, TrackKind::Video);
    assert!(
        (80..=95).contains(&video.len()),
        "{} video units",
        video.len()
    );
    assert!(video[0].keyframe);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_publishers() {
    let server = Server::start().await;
    let mut ff = ffmpeg(&server.url(KEY), 10);
    server
        .recorder
        .wait_for("media", |r| r.video_units() >= 10)
        .await;
    let recorder = server.recorder.clone();
    server.stop().await;
    assert!(!exit_within(&mut ff, 5).await.success());
    assert!(matches!(recorder.snapshot().last(), Some(Seen::End)));
}
