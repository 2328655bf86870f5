//! A real camera exchange, recorded by `tests/data/capture-rtsp.sh` (gst-rtsp-server
//! answering ffmpeg over RTSP-over-TCP, every byte both ways), replayed to the RTSP
//! ingest: a loopback "camera" answers each of the puller's requests with the
//! recorded answer to the same method (CSeq rewritten), then sends the recorded
//! interleaved RTP at its recorded pace. What reaches the stream's sink is checked
//! against what the camera sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::media::{MediaEvent, TrackKind, WallClockAnchor};
use crate::streams::definition::RtspPull;
use crate::streams::events::EventBus;
use crate::streams::owner::StreamContext;
use crate::streams::registry::StreamRegistry;
use crate::streams::worker::{MediaSink, SinkFactory};
use crate::streams::{StreamDef, StreamSource};

use super::RtspTransport;

const GST_RTSP_SERVER_H264: &str = "gst-rtsp-server-1.22.0-h264-aac.bin";

/// One message of the recorded exchange.
struct Message {
    /// Milliseconds after the client connected.
    at_ms: u64,
    bytes: Vec<u8>,
}

/// The recorded exchange, split into messages.
struct Exchange {
    /// Answers of the camera by the method they answered, in order.
    answers: HashMap<String, VecDeque<Message>>,
    /// Interleaved frames (`$`, channel, length, RTP or RTCP) sent after PLAY.
    media: Vec<Message>,
    /// When PLAY was answered.
    play_ms: u64,
}

/// Splits one direction's byte stream into RTSP messages and interleaved frames;
/// each with the time of the record it started in.
fn split(records: &[(u64, &[u8])]) -> Vec<Message> {
    let mut all = Vec::new();
    let mut starts = Vec::new();
    for (at, data) in records {
        starts.push((all.len(), *at));
        all.extend_from_slice(data);
    }
    let at_of = |pos: usize| {
        starts
            .iter()
            .rev()
            .find(|(start, _)| *start <= pos)
            .map_or(0, |(_, at)| *at)
    };
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < all.len() {
        let len = message_len(&all[pos..]).expect("a whole message in the capture");
        out.push(Message {
            at_ms: at_of(pos),
            bytes: all[pos..pos + len].to_vec(),
        });
        pos += len;
    }
    out
}

/// Length of the RTSP message or interleaved frame at the start of `b`, once whole.
fn message_len(b: &[u8]) -> Option<usize> {
    if b.first() == Some(&b'$') {
        let len = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
        return (b.len() >= 4 + len).then_some(4 + len);
    }
    let head = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let body = header(&b[..head], "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    (b.len() >= head + body).then_some(head + body)
}

fn header(message: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(message).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn method(request: &[u8]) -> String {
    String::from_utf8_lossy(request)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn load(name: &str) -> Exchange {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut client, mut camera) = (Vec::new(), Vec::new());
    let mut pos = 0;
    while pos + 9 <= bytes.len() {
        let at = u64::from(u32::from_be_bytes(
            bytes[pos + 1..pos + 5].try_into().unwrap(),
        ));
        let len = u32::from_be_bytes(bytes[pos + 5..pos + 9].try_into().unwrap()) as usize;
        let data = &bytes[pos + 9..pos + 9 + len];
        match bytes[pos] {
            b'C' => client.push((at, data)),
            _ => camera.push((at, data)),
        }
        pos += 9 + len;
    }
    let methods: HashMap<String, String> = split(&client)
        .iter()
        .filter(|m| m.bytes[0] != b'$')
        .filter_map(|m| Some((header(&m.bytes, "cseq")?, method(&m.bytes))))
        .collect();
    let mut exchange = Exchange {
        answers: HashMap::new(),
        media: Vec::new(),
        play_ms: 0,
    };
    for m in split(&camera) {
        if m.bytes[0] == b'$' {
            exchange.media.push(m);
            continue;
        }
        let answered = header(&m.bytes, "cseq")
            .and_then(|c| methods.get(&c).cloned())
            .unwrap_or_default();
        if answered == "PLAY" {
            exchange.play_ms = m.at_ms;
        }
        exchange.answers.entry(answered).or_default().push_back(m);
    }
    exchange
}

/// `answer` with its CSeq set to `cseq`.
fn with_cseq(answer: &[u8], cseq: &str) -> Vec<u8> {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..head_end])
        .lines()
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("cseq:") {
                format!("CSeq: {cseq}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&answer[head_end..]);
    out
}

/// Serves the exchange to one client, then closes.
async fn replay(listener: TcpListener, mut exchange: Exchange) {
    let Ok((socket, _)) = listener.accept().await else {
        return;
    };
    let (mut rx, tx) = socket.into_split();
    let tx = Arc::new(tokio::sync::Mutex::new(tx));
    let mut buf = Vec::new();
    let mut read = [0u8; 4096];
    let mut media = Some(std::mem::take(&mut exchange.media));
    let mut streaming = None;
    loop {
        while let Some(len) = message_len(&buf) {
            let request: Vec<u8> = buf.drain(..len).collect();
            if request[0] == b'$' {
                continue; // the client's RTCP
            }
            let cseq = header(&request, "cseq").unwrap_or_default();
            let m = method(&request);
            let answer = match exchange.answers.get_mut(&m).and_then(VecDeque::pop_front) {
                Some(a) => with_cseq(&a.bytes, &cseq),
                None => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n").into_bytes(),
            };
            let _ = tx.lock().await.write_all(&answer).await;
            if m == "PLAY" {
                if let Some(frames) = media.take() {
                    let (tx, play_ms) = (Arc::clone(&tx), exchange.play_ms);
                    streaming = Some(tokio::spawn(async move {
                        let start = tokio::time::Instant::now();
                        for f in frames {
                            let due = Duration::from_millis(f.at_ms.saturating_sub(play_ms));
                            tokio::time::sleep_until(start + due).await;
                            if tx.lock().await.write_all(&f.bytes).await.is_err() {
                                return;
                            }
                        }
                    }));
                }
            }
        }
        let n = tokio::select! {
            n = rx.read(&mut read) => n.unwrap_or(0),
            _ = async {
                match streaming.as_mut() {
                    Some(s) => { let _ = s.await; }
                    None => std::future::pending().await,
                }
            } => 0,
        };
        if n == 0 {
            // Everything recorded was sent (or the client left): the camera hangs up.
            let _ = tx.lock().await.shutdown().await;
            return;
        }
        buf.extend_from_slice(&read[..n]);
    }
}

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
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl MediaSink for Recorder {
    fn set_stream(&mut self, _stream: &Arc<StreamDef>) {}
    fn begin_session(&mut self, _anchor: WallClockAnchor) {
        self.0.lock().unwrap().push(Seen::Begin);
    }
    fn push(&mut self, event: MediaEvent) {
        self.0.lock().unwrap().push(Seen::Event(event));
    }
    fn end_session(&mut self) {
        self.0.lock().unwrap().push(Seen::End);
    }
    fn end_live_session(&mut self) {}
    fn playable_msn(&self) -> Option<u64> {
        None
    }
    fn close(&mut self, _gone: bool) {}
}

struct RecorderFactory(Recorder);

impl SinkFactory for RecorderFactory {
    fn create(&self, _stream: &Arc<StreamDef>) -> Box<dyn MediaSink> {
        Box::new(self.0.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gst_rtsp_server_exchange_replays_into_the_expected_media_units() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("panocast=debug")
        .try_init();
    let exchange = load(GST_RTSP_SERVER_H264);
    let rtp_frames = exchange.media.len();
    assert!(rtp_frames > 100, "{rtp_frames} interleaved frames");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let camera = tokio::spawn(replay(listener, exchange));

    let recorder = Recorder::default();
    let shutdown = CancellationToken::new();
    let registry = StreamRegistry::new(StreamContext {
        factory: Arc::new(RecorderFactory(recorder.clone())),
        bus: EventBus::new(),
        rtsp: crate::config::Config::default().rtsp_settings(),
        shutdown: shutdown.clone(),
        tasks: tokio_util::task::TaskTracker::new(),
        max_live_streams: 4,
        stream_memory_bytes: crate::streams::memory::DEFAULT_BUDGET,
    });
    let mut def = StreamDef::new("golden-cam");
    def.id = "st_golden".to_owned();
    def.source = StreamSource::RtspPull(RtspPull {
        url: format!("rtsp://127.0.0.1:{port}/cam"),
        transport: RtspTransport::Tcp,
        username: None,
        password: None,
    });
    registry.start_pullers([&Arc::new(def)]);

    // The camera hangs up once it has sent its 3 s; the puller ends the session.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !recorder.snapshot().iter().any(|s| matches!(s, Seen::End)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no end of session: {} events",
            recorder.snapshot().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let _ = camera.await;

    let seen = recorder.snapshot();
    assert!(
        matches!(seen.first(), Some(Seen::Begin)),
        "{:?}",
        seen.first()
    );
    let configs: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Event(MediaEvent::VideoConfig(c)) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(configs.len(), 1);
    assert_eq!((configs[0].width(), configs[0].height()), (320, 160));
    assert!(
        configs[0].codec_string().starts_with("avc1.42"),
        "{}",
        configs[0].codec_string()
    );
    let audio_configs = seen
        .iter()
        .filter(|s| matches!(s, Seen::Event(MediaEvent::AudioConfig(_))))
        .count();
    assert_eq!(audio_configs, 1);
    let units = |kind| -> Vec<_> {
        seen.iter()
            .filter_map(|s| match s {
                Seen::Event(MediaEvent::Unit(u)) if u.kind == kind => Some(u.clone()),
                _ => None,
            })
            .collect()
    };
    let (video, audio) = (units(TrackKind::Video), units(TrackKind::Audio));
    let keyframes = video.iter().filter(|u| u.keyframe).count();
    // 3 s at 25 fps with a keyframe every second, and 48 kHz AAC (1024 samples a
    // frame); the counts of what the camera sent (retina reported no lost packet).
    assert_eq!(
        (video.len(), keyframes, audio.len()),
        (77, 4, 145),
        "video units, keyframes, audio units"
    );
    assert!(video[0].keyframe);
    for track in [&video, &audio] {
        assert!(track.windows(2).all(|w| w[0].dts < w[1].dts));
    }
}
