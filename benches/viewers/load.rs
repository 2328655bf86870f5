//! The load tool of `benches/viewers/run.sh`: keep-alive HTTP/1.1 clients on tokio,
//! light enough to share two cores with the server it measures, printing one summary
//! block and one JSON line.
//!
//! ```text
//! viewers-load viewers --addr 127.0.0.1:PORT --path /hls/bench/index.m3u8 \
//!     --viewers 2000 [--seconds 20] [--warmup 5] [--pid SERVER_PID]... [--threads 1]
//! viewers-load fetch --addr 127.0.0.1:PORT --path /part.m4s \
//!     --connections 500 [--seconds 10] [--warmup 2] [--pid SERVER_PID]...
//! ```
//!
//! `viewers`: N simulated LL-HLS viewers, one connection each, looping the blocking
//! playlist reload (`_HLS_msn`/`_HLS_part` of the preload hint) and then the part it
//! announced, as hls.js does in low-latency mode. For every part, the first viewer's
//! playlist response marks its release (times are the kernel's receive stamps, so the
//! tool's own queueing does not count); each held viewer's delay behind that first one
//! is the release spread (p50/p99 over every held viewer and part in the window), and
//! the per-part spread is the last held viewer's delay. A viewer whose request went
//! out after the release (it was still fetching the part before) was not held: it is
//! counted in `held_share`, not in the spread.
//!
//! `fetch`: C connections looping `GET path` (wrk's model), for requests/s and the
//! latency distribution.
//!
//! Both read the CPU time (utime + stime) and RSS of the `--pid` processes from /proc
//! over the measured window, so the server's CPU per request comes out with no
//! sampling profiler; the tool's own CPU is printed beside it.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

#[derive(Clone, Debug)]
struct Args {
    mode: String,
    addr: String,
    path: String,
    clients: usize,
    seconds: f64,
    warmup: f64,
    pids: Vec<u32>,
    threads: usize,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut it = std::env::args().skip(1);
    let Some(mode) = it.next() else {
        return Ok(None);
    };
    if mode != "viewers" && mode != "fetch" {
        return Err(format!("unknown mode {mode} (viewers or fetch)"));
    }
    let mut args = Args {
        mode,
        addr: String::new(),
        path: String::new(),
        clients: 100,
        seconds: 10.0,
        warmup: 3.0,
        pids: Vec::new(),
        threads: 1,
    };
    while let Some(arg) = it.next() {
        let value = it.next().ok_or(format!("{arg} needs a value"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|e| format!("{arg}: {e}"));
        match arg.as_str() {
            "--addr" => args.addr = value,
            "--path" => args.path = value,
            "--viewers" | "--connections" => args.clients = number(&value)? as usize,
            "--seconds" => args.seconds = number(&value)?,
            "--warmup" => args.warmup = number(&value)?,
            "--pid" => args.pids.push(number(&value)? as u32),
            "--threads" => args.threads = (number(&value)? as usize).max(1),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.addr.is_empty() || args.path.is_empty() {
        return Err("--addr and --path are required".into());
    }
    Ok(Some(args))
}

fn main() {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            eprintln!("usage: viewers-load viewers|fetch --addr HOST:PORT --path PATH [...] (see load.rs)");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("viewers: {e}");
            std::process::exit(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("viewers: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match args.mode.as_str() {
            "viewers" => run_viewers(&args).await,
            _ => run_fetch(&args).await,
        }
    });
    std::process::exit(code);
}

// --- HTTP/1.1 client ------------------------------------------------------------

/// One keep-alive connection; reconnects after the server closes it.
struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// Bytes of `buf` already read from the socket.
    filled: usize,
}

struct Answer {
    status: u16,
    location: Option<String>,
    /// The body, when asked for.
    body: Vec<u8>,
    length: usize,
    /// When the kernel received the response's last bytes (SO_TIMESTAMPNS), if the
    /// answer needed a read: the viewer's release time, whatever the tool was busy with.
    arrived: Option<f64>,
}

impl Conn {
    fn new(addr: &str) -> Self {
        Conn {
            addr: addr.to_string(),
            stream: None,
            buf: vec![0; 64 * 1024],
            filled: 0,
        }
    }

    async fn get(&mut self, path: &str, keep_body: bool) -> io::Result<Answer> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            receive_timestamps(&s)?;
            self.stream = Some(s);
            self.filled = 0;
        }
        let result = self.exchange(path, keep_body).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, path: &str, keep_body: bool) -> io::Result<Answer> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut arrived = None;
        // Head.
        let (head_len, status, length, location, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buf[..self.filled]) {
                Ok(httparse::Status::Complete(n)) => {
                    let mut length = None;
                    let mut location = None;
                    let mut close = false;
                    for h in response.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            length = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok());
                        } else if h.name.eq_ignore_ascii_case("location") {
                            location = std::str::from_utf8(h.value).ok().map(str::to_string);
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = h.value.eq_ignore_ascii_case(b"close");
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            return Err(io::Error::other("chunked responses are not read"));
                        }
                    }
                    let length = length.ok_or_else(|| io::Error::other("no content-length"))?;
                    break (n, response.code.unwrap_or(0), length, location, close);
                }
                Ok(httparse::Status::Partial) => {
                    if self.filled == self.buf.len() {
                        return Err(io::Error::other("response head too large"));
                    }
                    let n =
                        read_stamped(stream, &mut self.buf[self.filled..], &mut arrived).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    self.filled += n;
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        };
        // Body: what came with the head, then the rest straight from the socket.
        let mut body = Vec::new();
        let with_head = (self.filled - head_len).min(length);
        if keep_body {
            body.reserve(length);
            body.extend_from_slice(&self.buf[head_len..head_len + with_head]);
        }
        let mut remaining = length - with_head;
        let used = head_len + with_head;
        self.buf.copy_within(used..self.filled, 0);
        self.filled -= used;
        while remaining > 0 {
            let want = remaining.min(self.buf.len());
            let n = read_stamped(stream, &mut self.buf[..want], &mut arrived).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if keep_body {
                body.extend_from_slice(&self.buf[..n]);
            }
            remaining -= n;
        }
        if close {
            self.stream = None;
        }
        Ok(Answer {
            status,
            location,
            body,
            length,
            arrived,
        })
    }
}

/// Asks the kernel to stamp every received packet (read back by [`read_stamped`]).
fn receive_timestamps(stream: &TcpStream) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and an int option of the size given.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `read` through recvmsg, keeping in `arrived` the kernel's receive time (seconds,
/// CLOCK_REALTIME) of the newest data read.
async fn read_stamped(
    stream: &TcpStream,
    buf: &mut [u8],
    arrived: &mut Option<f64>,
) -> io::Result<usize> {
    let fd = stream.as_raw_fd();
    let (n, stamp) = stream
        .async_io(Interest::READABLE, || {
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut control = [0u64; 16];
            // SAFETY: zeroed msghdr is valid; every pointer set below outlives the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            // SAFETY: fd is the stream's open socket; msg points at live buffers.
            let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut stamp = None;
            // SAFETY: walking the control messages the kernel wrote into `control`.
            unsafe {
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_SOCKET
                        && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                    {
                        let ts: libc::timespec = std::ptr::read_unaligned(
                            libc::CMSG_DATA(cmsg).cast::<libc::timespec>(),
                        );
                        stamp = Some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9);
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
            }
            Ok((n as usize, stamp))
        })
        .await?;
    if stamp.is_some() {
        *arrived = stamp;
    }
    Ok(n)
}

// --- server figures from /proc ---------------------------------------------------

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of `pid` in seconds (0 once it is gone).
fn cpu_s(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn rss_kib(pid: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Usage {
    server_cpu: f64,
    own_cpu: f64,
}

impl Usage {
    fn now(pids: &[u32]) -> Usage {
        Usage {
            server_cpu: pids.iter().map(|p| cpu_s(&p.to_string())).sum(),
            own_cpu: cpu_s("self"),
        }
    }
}

fn server_rss(pids: &[u32]) -> u64 {
    pids.iter().map(|p| rss_kib(&p.to_string())).sum()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The `q` quantile (0..=1) of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The measured window, shared by every client: requests count only inside it.
struct Window {
    start: Instant,
    end: Instant,
    stop: AtomicBool,
    requests: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
}

impl Window {
    fn new(warmup: f64, seconds: f64) -> Arc<Window> {
        let start = Instant::now() + Duration::from_secs_f64(warmup);
        Arc::new(Window {
            start,
            end: start + Duration::from_secs_f64(seconds),
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    fn inside(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    fn count(&self, t: Instant, bytes: usize) {
        if self.inside(t) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    fn error(&self, t: Instant) {
        if self.inside(t) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn over(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.end
    }
}

/// Waits for the window, reads the server's figures at both ends and its RSS every
/// 250 ms, then stops the clients.
async fn measure(window: &Window, pids: &[u32]) -> (Usage, Usage, u64, u64, f64) {
    tokio::time::sleep_until(window.start.into()).await;
    let before = Usage::now(pids);
    let rss_before = server_rss(pids);
    let mut rss_peak = rss_before;
    while Instant::now() < window.end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss_peak = rss_peak.max(server_rss(pids));
    }
    let after = Usage::now(pids);
    window.stop.store(true, Ordering::Relaxed);
    let seconds = (window.end - window.start).as_secs_f64();
    (before, after, rss_before, rss_peak, seconds)
}

// --- viewers ---------------------------------------------------------------------

/// The earliest answer of a part's releases.
fn first_of(releases: &[Release]) -> f64 {
    releases
        .iter()
        .map(|r| r.arrived)
        .fold(f64::INFINITY, f64::min)
}

/// `part-M-P.m4s` → (M, P).
fn part_numbers(uri: &str) -> Option<(u64, u32)> {
    let name = uri.rsplit('/').next()?.split('?').next()?;
    let (m, p) = name
        .strip_prefix("part-")?
        .strip_suffix(".m4s")?
        .split_once('-')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

/// The preload hint's URI of a media playlist.
fn preload_hint(playlist: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(playlist).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:") && l.contains("TYPE=PART"))?;
    let (_, rest) = line.split_once("URI=\"")?;
    Some(rest.split('"').next()?.to_string())
}

/// Each release as (msn, part), when the request went out and when its answer
/// arrived (kernel receive time), in wall-clock seconds.
type Releases = Vec<((u64, u32), Release)>;

#[derive(Clone, Copy)]
struct Release {
    sent: f64,
    arrived: f64,
}

fn wall_clock_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Opens the multivariant playlist (following the analytics session redirect) and
/// returns the directory of the first variant's playlist and its name.
async fn first_variant(conn: &mut Conn, path: &str) -> io::Result<(String, String)> {
    let mut base = path.rsplit_once('/').map_or("/", |(d, _)| d).to_string() + "/";
    let mut answer = conn.get(path, true).await?;
    if answer.status == 302 {
        let location = answer.location.clone().unwrap_or_default();
        let target = format!("{base}{location}");
        base = target.rsplit_once('/').map_or("/", |(d, _)| d).to_string() + "/";
        answer = conn.get(&target, true).await?;
    }
    if answer.status != 200 {
        return Err(io::Error::other(format!(
            "multivariant playlist: {}",
            answer.status
        )));
    }
    let text = String::from_utf8_lossy(&answer.body);
    let variant = text
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| io::Error::other("no variant in the multivariant playlist"))?;
    Ok((base, variant.to_string()))
}

async fn viewer(addr: String, path: String, window: Arc<Window>) -> Releases {
    let mut releases = Vec::new();
    let mut conn = Conn::new(&addr);
    while !window.over() {
        if let Err(e) = play(&mut conn, &path, &window, &mut releases).await {
            window.error(Instant::now());
            if window.inside(Instant::now()) {
                eprintln!("viewer: {e}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    releases
}

async fn play(
    conn: &mut Conn,
    path: &str,
    window: &Window,
    releases: &mut Releases,
) -> io::Result<()> {
    let (base, variant) = first_variant(conn, path).await?;
    let playlist = format!("{base}{variant}");
    let dir = playlist
        .rsplit_once('/')
        .map_or("/", |(d, _)| d)
        .to_string()
        + "/";
    let mut answer = conn.get(&playlist, true).await?;
    while !window.over() {
        if answer.status != 200 {
            return Err(io::Error::other(format!("playlist: {}", answer.status)));
        }
        let hint = preload_hint(&answer.body)
            .ok_or_else(|| io::Error::other("no preload hint in the playlist"))?;
        let (msn, part) =
            part_numbers(&hint).ok_or_else(|| io::Error::other("hint is not a part"))?;
        let sent = wall_clock_s();
        answer = conn
            .get(&format!("{playlist}?_HLS_msn={msn}&_HLS_part={part}"), true)
            .await?;
        let released = Instant::now();
        window.count(released, answer.length);
        if answer.status != 200 {
            window.error(released);
            continue;
        }
        if window.inside(released) {
            let arrived = answer.arrived.unwrap_or_else(wall_clock_s);
            releases.push(((msn, part), Release { sent, arrived }));
        }
        let media = conn.get(&format!("{dir}{hint}"), false).await?;
        let now = Instant::now();
        window.count(now, media.length);
        if media.status != 200 {
            window.error(now);
        }
    }
    Ok(())
}

async fn run_viewers(args: &Args) -> i32 {
    let load = load_average();
    let ramp = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    // The window opens after every viewer has had time to connect and settle.
    let window = Window::new(args.warmup + args.clients as f64 / 2000.0, args.seconds);
    for i in 0..args.clients {
        tasks.push(tokio::spawn(viewer(
            args.addr.clone(),
            args.path.clone(),
            Arc::clone(&window),
        )));
        // Connect in small batches rather than in one burst.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let ramp_s = ramp.elapsed().as_secs_f64();
    let (before, after, rss_before, rss_peak, seconds) = measure(&window, &args.pids).await;
    let mut by_part: HashMap<(u64, u32), Vec<Release>> = HashMap::new();
    for task in tasks {
        if let Ok(releases) = task.await {
            for (part, t) in releases {
                by_part.entry(part).or_default().push(t);
            }
        }
    }
    // Parts released at the window's edges were seen by only some viewers: the first
    // two and the last five (a second at 200 ms parts) are left out. The first answer
    // of a part marks its release; the viewers whose request was out before it were
    // held, and their delay behind it is the release spread. The others asked late
    // (still busy with the part before) and are counted apart.
    let mut parts: Vec<Vec<Release>> = by_part.into_values().collect();
    parts.sort_by(|a, b| first_of(a).total_cmp(&first_of(b)));
    let total = parts.len();
    let kept = if total > 7 {
        &parts[2..total - 5]
    } else {
        &[][..]
    };
    let complete = kept.len();
    let partial = total - complete;
    let mut delays = Vec::new();
    let mut spreads = Vec::new();
    let mut late = 0usize;
    for releases in kept {
        let first = first_of(releases);
        let held: Vec<f64> = releases
            .iter()
            .filter(|r| r.sent <= first)
            .map(|r| (r.arrived - first) * 1e3)
            .collect();
        late += releases.len() - held.len();
        spreads.push(held.iter().copied().fold(0.0, f64::max));
        delays.extend(held);
    }
    delays.sort_by(f64::total_cmp);
    spreads.sort_by(f64::total_cmp);
    let requests = window.requests.load(Ordering::Relaxed);
    let errors = window.errors.load(Ordering::Relaxed);
    let server_cpu = after.server_cpu - before.server_cpu;
    let own_cpu = after.own_cpu - before.own_cpu;
    let per_viewer = (delays.len() + late) as f64 / complete.max(1) as f64;
    let held_share = delays.len() as f64 / (delays.len() + late).max(1) as f64;
    let summary = serde_json::json!({
        "mode": "viewers",
        "viewers": args.clients,
        "seconds": seconds,
        "load_average": load,
        "parts": complete,
        "parts_at_edges": partial,
        "viewers_per_part": per_viewer,
        "held_share": held_share,
        "delay_ms_p50": quantile(&delays, 0.5),
        "delay_ms_p99": quantile(&delays, 0.99),
        "delay_ms_max": quantile(&delays, 1.0),
        "spread_ms_p50": quantile(&spreads, 0.5),
        "spread_ms_p99": quantile(&spreads, 0.99),
        "requests_per_s": requests as f64 / seconds,
        "errors": errors,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_request": server_cpu * 1e6 / requests.max(1) as f64,
        "server_rss_kib_before": rss_before,
        "server_rss_kib_peak": rss_peak,
        "tool_cpu_s": own_cpu,
        "ramp_s": ramp_s,
    });
    println!(
        "viewers {:>5}: release delay behind the first viewer p50 {:.1} ms p99 {:.1} ms max {:.1} ms; \
         per-part spread p50 {:.1} ms p99 {:.1} ms ({complete} parts, {per_viewer:.0} viewers each, {:.0}% held); \
         {:.0} req/s, {errors} errors; server CPU {:.2} s ({:.1} µs/req), RSS {} KiB; tool CPU {:.2} s; load {load}",
        args.clients,
        quantile(&delays, 0.5),
        quantile(&delays, 0.99),
        quantile(&delays, 1.0),
        quantile(&spreads, 0.5),
        quantile(&spreads, 0.99),
        held_share * 100.0,
        requests as f64 / seconds,
        server_cpu,
        server_cpu * 1e6 / requests.max(1) as f64,
        rss_peak,
        own_cpu,
    );
    println!("{summary}");
    0
}

// --- fixed-URL fetch ---------------------------------------------------------------

async fn fetcher(addr: String, path: String, window: Arc<Window>) -> Vec<f64> {
    let mut latencies = Vec::new();
    let mut conn = Conn::new(&addr);
    while !window.over() {
        let t0 = Instant::now();
        match conn.get(&path, false).await {
            Ok(answer) => {
                let t1 = Instant::now();
                window.count(t1, answer.length);
                if answer.status != 200 {
                    window.error(t1);
                } else if window.inside(t1) {
                    latencies.push((t1 - t0).as_secs_f64() * 1e3);
                }
            }
            Err(_) => {
                window.error(Instant::now());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    latencies
}

async fn run_fetch(args: &Args) -> i32 {
    let load = load_average();
    let window = Window::new(args.warmup, args.seconds);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        tasks.push(tokio::spawn(fetcher(
            args.addr.clone(),
            args.path.clone(),
            Arc::clone(&window),
        )));
    }
    let (before, after, _, rss_peak, seconds) = measure(&window, &args.pids).await;
    for task in tasks {
        if let Ok(l) = task.await {
            latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(l);
        }
    }
    let mut all = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    all.sort_by(f64::total_cmp);
    let requests = window.requests.load(Ordering::Relaxed);
    let errors = window.errors.load(Ordering::Relaxed);
    let bytes = window.bytes.load(Ordering::Relaxed);
    let server_cpu = after.server_cpu - before.server_cpu;
    let own_cpu = after.own_cpu - before.own_cpu;
    let summary = serde_json::json!({
        "mode": "fetch",
        "connections": args.clients,
        "seconds": seconds,
        "load_average": load,
        "requests_per_s": requests as f64 / seconds,
        "mib_per_s": bytes as f64 / seconds / (1 << 20) as f64,
        "latency_ms_p50": quantile(&all, 0.5),
        "latency_ms_p99": quantile(&all, 0.99),
        "latency_ms_max": quantile(&all, 1.0),
        "errors": errors,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_request": server_cpu * 1e6 / requests.max(1) as f64,
        "server_rss_kib_peak": rss_peak,
        "tool_cpu_s": own_cpu,
    });
    println!(
        "fetch {:>5} connections: {:.0} req/s ({:.0} MiB/s), latency p50 {:.2} ms p99 {:.2} ms, {errors} errors; \
         server CPU {:.2} s ({:.1} µs/req), RSS {} KiB; tool CPU {:.2} s; load {load}",
        args.clients,
        requests as f64 / seconds,
        bytes as f64 / seconds / (1 << 20) as f64,
        quantile(&all, 0.5),
        quantile(&all, 0.99),
        server_cpu,
        server_cpu * 1e6 / requests.max(1) as f64,
        rss_peak,
        own_cpu,
    );
    println!("{summary}");
    0
}
