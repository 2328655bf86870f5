//! HTTPS and RTMPS over real TLS: the real binary, clients that trust only the CA the
//! server generated (or the test's own CA for certificate files), real ffmpeg.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use common::*;

const KEY: &str = "tls-test-stream-key";

fn stream_config() -> String {
    format!(
        r#"
[[streams]]
slug = "cam"
key = "{KEY}"
projection = "equirect"
"#
    )
}

/// The port of the first `https://` URL the banner printed.
fn https_port(server: &Server) -> u16 {
    banner_port(server, "https://127.0.0.1:")
}

fn banner_port(server: &Server, prefix: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = server.log_lines().iter().find_map(|line| {
            let rest = &line[line.find(prefix)? + prefix.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        });
        if let Some(port) = found {
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "the banner printed no {prefix} URL"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn roots(ca_pem: &[u8]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(ca_pem) {
        roots.add(cert).expect("CA certificate");
    }
    roots
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

/// A TLS client trusting only `ca_pem`, offering `alpn`.
fn connector(ca_pem: &[u8], alpn: &[&[u8]]) -> TlsConnector {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots(ca_pem))
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

async fn handshake(connector: &TlsConnector, port: u16, name: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from(name.to_string()).expect("server name");
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

/// SHA-256 of the leaf certificate the server presented.
fn served_fingerprint(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let (_, session) = stream.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a server certificate");
    ring::digest::digest(&ring::digest::SHA256, leaf.as_ref())
        .as_ref()
        .to_vec()
}

/// One HTTP/1.1 request on an open keep-alive connection; the status and body.
async fn http1_get(stream: &mut TlsStream<TcpStream>, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head[9..12].parse().expect("status");
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                return (status, body);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "connection closed before the response was complete");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads the CA certificate the way a device does: over plain HTTP.
async fn download_ca(server: &Server) -> Vec<u8> {
    let resp = client()
        .get(server.url("/ca.crt"))
        .send()
        .await
        .expect("GET /ca.crt");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-x509-ca-cert")
    );
    let pem = resp.bytes().await.expect("body").to_vec();
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    pem
}

fn https_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_only_the_local_ca_plays_the_stream_over_tls13_and_h2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "{}\n[tls]\nmode = \"local-ca\"\nhttps = \"127.0.0.1:0\"\n",
        stream_config()
    );
    let server = Server::start_in(dir.path(), &config, &[]);
    let port = https_port(&server);
    let ca = download_ca(&server).await;

    // The handshake itself: TLS 1.3, h2 chosen by ALPN, for the names a LAN uses.
    let tls = connector(&ca, &[b"h2", b"http/1.1"]);
    for name in ["localhost", "127.0.0.1"] {
        let stream = handshake(&tls, port, name).await;
        let (_, session) = stream.get_ref();
        assert_eq!(
            session.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    }

    let _publisher = Publisher::start(source_file(), &server.publish_url(KEY), true);
    let https = https_client(&ca);
    let index_url = format!("https://localhost:{port}/hls/cam/index.m3u8");
    let index = wait_ok(&https, &index_url, Duration::from_secs(20)).await;
    assert_eq!(index.content_type, "application/vnd.apple.mpegurl");
    assert!(
        index.text().contains("#EXT-X-STREAM-INF"),
        "{}",
        index.text()
    );
    let version = https.get(&index_url).send().await.expect("GET").version();
    assert_eq!(version, reqwest::Version::HTTP_2);

    // The page headsets are sent to, as a secure context would load it.
    let page = get(&https, &format!("https://localhost:{port}/watch/cam")).await;
    assert_eq!(page.status, 200);
    let tls_page = get(&https, &format!("https://localhost:{port}/tls")).await;
    assert!(tls_page.content_type.starts_with("text/html"));
    assert!(tls_page.text().contains("Quest") && tls_page.text().contains("Vision Pro"));

    // Plain HTTP on loopback is not redirected.
    let plain = get(&client(), &server.url("/hls/cam/index.m3u8")).await;
    assert_eq!(plain.status, 200);

    // ffmpeg reads the LL-HLS over HTTPS, verifying against the CA file.
    let ca_file = dir.path().join("downloaded-ca.crt");
    std::fs::write(&ca_file, &ca).expect("write CA");
    let video_url = format!("https://localhost:{port}/hls/cam/video.m3u8");
    let probed = ffprobe_https(&ca_file, &video_url);
    assert!(probed.contains("codec_name=h264"), "{probed}");
    // And plays it: two seconds of video packets from the multivariant playlist down.
    let played = ffmpeg_https_packets(&ca_file, &index_url);
    assert!(
        played >= 30,
        "ffmpeg read {played} video packets over HTTPS"
    );

    // The same ffmpeg refuses a server it cannot verify (so the check above meant it).
    let other = tempfile::tempdir().expect("temp dir");
    let wrong_ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("cert")
        .cert
        .pem();
    let wrong = other.path().join("wrong.crt");
    std::fs::write(&wrong, wrong_ca).expect("write");
    assert!(!ffprobe_https(&wrong, &video_url).contains("codec_name=h264"));
}

/// How many video packets ffmpeg reads from the first two seconds of `url`, verifying
/// the server against `ca_file` (framemd5 prints one line per packet).
fn ffmpeg_https_packets(ca_file: &Path, url: &str) -> usize {
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-tls_verify",
            "1",
            "-ca_file",
        ])
        .arg(ca_file)
        .args(["-rw_timeout", "15000000", "-i", url])
        .args([
            "-t", "2", "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg over HTTPS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

/// ffprobe's streams of `url`, verifying the server against `ca_file`.
fn ffprobe_https(ca_file: &Path, url: &str) -> String {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-tls_verify", "1", "-ca_file"])
        .arg(ca_file)
        .args([
            "-show_entries",
            "stream=codec_name",
            "-of",
            "default=nw=1",
            "-rw_timeout",
            "15000000",
        ])
        .arg(url)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A CA of the test's own and a leaf for localhost it signs; PEM (cert, key).
struct TestCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "panocast test CA");
        let cert = params.self_signed(&key).expect("CA");
        TestCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn leaf(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }
}

fn fingerprint_of_pem(pem: &str) -> Vec<u8> {
    let der = rustls_pemfile_certs(pem.as_bytes()).remove(0);
    ring::digest::digest(&ring::digest::SHA256, der.as_ref())
        .as_ref()
        .to_vec()
}

/// Replaces `path` the way deploy tools do: write beside, rename over.
fn replace(path: &Path, contents: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, contents).expect("write");
    std::fs::rename(&temp, path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_files_serve_the_next_handshake_and_open_connections_keep_answering() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let (first_cert, first_key) = ca.leaf();
    let (cert_path, key_path) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&cert_path, &first_cert).expect("cert");
    std::fs::write(&key_path, &first_key).expect("key");
    let config = format!(
        "[tls]\nmode = \"files\"\ncert = {:?}\nkey = {:?}\nhttps = \"127.0.0.1:0\"\nreload_interval_ms = 200\n",
        cert_path.display().to_string(),
        key_path.display().to_string()
    );
    let server = Server::start_in(dir.path(), &config, &[]);
    let port = https_port(&server);
    let tls = connector(ca.pem.as_bytes(), &[b"http/1.1"]);

    let mut open = handshake(&tls, port, "localhost").await;
    assert_eq!(served_fingerprint(&open), fingerprint_of_pem(&first_cert));
    assert_eq!(http1_get(&mut open, "/healthz").await.0, 200);

    // A broken replacement is refused, logged, and the certificate in use stays.
    replace(
        &cert_path,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("TLS certificate not reloaded"))
    {
        assert!(
            Instant::now() < deadline,
            "the bad certificate was not reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = handshake(&tls, port, "localhost").await;
    assert_eq!(served_fingerprint(&during), fingerprint_of_pem(&first_cert));

    // The real replacement: key first, then the certificate.
    let (second_cert, second_key) = ca.leaf();
    replace(&key_path, &second_key);
    replace(&cert_path, &second_cert);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = handshake(&tls, port, "localhost").await;
        if served_fingerprint(&fresh) == fingerprint_of_pem(&second_cert) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The connection opened before the change is still there and answers.
    assert_eq!(http1_get(&mut open, "/healthz").await.0, 200);
    assert_eq!(served_fingerprint(&open), fingerprint_of_pem(&first_cert));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stalled_handshakes_are_closed_without_hurting_other_clients() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = "[limits]\nhttp_header_timeout_ms = 1000\n\n[tls]\nmode = \"local-ca\"\nhttps = \"127.0.0.1:0\"\n";
    let server = Server::start_in(dir.path(), config, &[]);
    let port = https_port(&server);
    let ca = download_ca(&server).await;

    // Not TLS at all.
    let mut garbage = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    // A ClientHello record header that promises 512 bytes and never sends them.
    let mut stalled = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("write");
    // Says nothing.
    let mut silent = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");

    // Meanwhile a real client is served.
    let https = https_client(&ca);
    let ok = get(&https, &format!("https://localhost:{port}/healthz")).await;
    assert_eq!(ok.status, 200);

    let started = Instant::now();
    for (what, socket) in [
        ("garbage", &mut garbage),
        ("stalled", &mut stalled),
        ("silent", &mut silent),
    ] {
        let mut sink = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut sink)).await;
        assert!(
            closed.is_ok(),
            "the {what} connection is still open after 5 s"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let still = get(&https, &format!("https://localhost:{port}/healthz")).await;
    assert_eq!(still.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_rtmps_and_the_stream_plays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "{}\n[rtmp_ingest]\nhandshake_timeout_ms = 1000\n\n[tls]\nmode = \"local-ca\"\nhttps = \"127.0.0.1:0\"\nrtmps = \"127.0.0.1:0\"\n",
        stream_config()
    );
    let server = Server::start_in(dir.path(), &config, &[]);
    let rtmps = banner_port(&server, "rtmps://127.0.0.1:");
    // A TLS handshake that stalls holds the port no longer than an RTMP one may.
    let mut stalled = TcpStream::connect(("127.0.0.1", rtmps))
        .await
        .expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("write");
    let url = format!("rtmps://127.0.0.1:{rtmps}/live/{KEY}");
    let _publisher = Publisher::start(source_file(), &url, true);

    let client = client();
    let video = server.url("/hls/cam/video.m3u8");
    wait_for_segments(&client, &video, 1, Duration::from_secs(25)).await;
    let stream = get_json(&client, &server.url("/api/v1/streams/cam")).await;
    assert_eq!(stream["live"], true, "{stream}");
    assert_eq!(stream["ingest"]["status"], "live", "{stream}");

    // Plain RTMP bytes on the RTMPS port are not a publisher.
    let mut plain = TcpStream::connect(("127.0.0.1", rtmps))
        .await
        .expect("connect");
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 1536]);
    plain.write_all(&c0c1).await.expect("write");
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "plain RTMP on the RTMPS port was not closed"
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "a stalled TLS handshake on the RTMPS port was not closed"
    );
    assert!(server
        .log_lines()
        .iter()
        .any(|l| l.contains("TLS handshake not finished within 1s")));
}

#[test]
fn a_certificate_that_does_not_load_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let (cert, _) = ca.leaf();
    let (_, other_key) = ca.leaf();
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert_path, cert).expect("write");
    std::fs::write(&key_path, other_key).expect("write");
    let config = |cert: &Path, key: &Path| {
        format!(
            "[tls]\nmode = \"files\"\ncert = {:?}\nkey = {:?}\nhttps = \"127.0.0.1:0\"\n",
            cert.display().to_string(),
            key.display().to_string()
        )
    };
    let mismatched = serve_until_exit(&config(&cert_path, &key_path), Duration::from_secs(20));
    assert!(!mismatched.status.success());
    assert!(
        mismatched
            .output
            .contains("key does not match the certificate"),
        "{}",
        mismatched.output
    );
    let missing = serve_until_exit(
        &config(&dir.path().join("nope.pem"), &key_path),
        Duration::from_secs(20),
    );
    assert!(!missing.status.success());
    assert!(missing.output.contains("nope.pem"), "{}", missing.output);
    // Neither message carries key material.
    assert!(!mismatched.output.contains("PRIVATE KEY") && !missing.output.contains("PRIVATE KEY"));
}

/// A free loopback port (bound and released; pebble binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Debian's pebble, killed on drop.
struct Pebble(std::process::Child);

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acme_order_against_pebble_completes_over_http01_and_the_served_cert_chains_to_its_root()
{
    let dir = tempfile::tempdir().expect("temp dir");
    // pebble speaks ACME over HTTPS only: a certificate for its own listener, from a CA
    // our server is told to trust (`acme_ca_root`).
    let listener_ca = TestCa::new();
    let (pebble_cert, pebble_key) = listener_ca.leaf();
    let (cert_path, key_path, root_path) = (
        dir.path().join("pebble.crt"),
        dir.path().join("pebble.key"),
        dir.path().join("pebble-listener-ca.crt"),
    );
    std::fs::write(&cert_path, &pebble_cert).expect("write");
    std::fs::write(&key_path, &pebble_key).expect("write");
    std::fs::write(&root_path, &listener_ca.pem).expect("write");
    let (acme_port, management_port) = (free_port(), free_port());

    let config = format!(
        "[tls]\nmode = \"acme\"\nacme_directory = \"https://localhost:{acme_port}/dir\"\n\
         domains = [\"localhost\"]\ncontact = [\"mailto:ops@example.com\"]\n\
         acme_ca_root = {:?}\nhttps = \"127.0.0.1:0\"\nreload_interval_ms = 200\n",
        root_path.display().to_string()
    );
    let server = Server::start_in(dir.path(), &config, &[]);
    // The banner names the certificate's domain.
    let https = banner_port(&server, "https://localhost:");
    let http_port: u16 = server
        .http
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("http port");

    // HTTP-01 is validated for real: pebble fetches the token from our plain HTTP port.
    let pebble_config = dir.path().join("pebble-config.json");
    let pebble_json = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{management_port}"),
        "certificate": cert_path,
        "privateKey": key_path,
        "httpPort": http_port,
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    std::fs::write(&pebble_config, pebble_json.to_string()).expect("write");
    let pebble_log = dir.path().join("pebble.log");
    let _pebble = Pebble(
        std::process::Command::new("pebble")
            .arg("-config")
            .arg(&pebble_config)
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::fs::File::create(&pebble_log).expect("pebble log"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pebble (apt package pebble)"),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("ACME certificate issued"))
    {
        assert!(Instant::now() < deadline, "no ACME certificate within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The root pebble issued from (generated at its start, served by its management
    // interface), and a client that trusts only it.
    let management = https_client(listener_ca.pem.as_bytes());
    let root = management
        .get(format!("https://localhost:{management_port}/roots/0"))
        .send()
        .await
        .expect("GET pebble root")
        .bytes()
        .await
        .expect("root");
    let tls = connector(&root, &[b"h2"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        let tcp = TcpStream::connect(("127.0.0.1", https))
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        match tls.connect(name, tcp).await {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the ACME certificate is not served: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let pebble_said = std::fs::read_to_string(&pebble_log).unwrap_or_default();
    assert!(
        pebble_said.contains(&format!(
            "http://localhost:{http_port}/.well-known/acme-challenge/"
        )) && pebble_said.contains("set VALID by completed challenge"),
        "pebble did not validate HTTP-01 against us:\n{pebble_said}"
    );

    // State in the data directory: the account and the key are private.
    let acme_dir = dir.path().join("data/tls/acme");
    let names: Vec<String> = std::fs::read_dir(&acme_dir)
        .expect("acme dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("account-") && n.ends_with(".json")),
        "{names:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(acme_dir.join("server.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A restart serves the stored certificate at once and orders nothing.
    let mut server = server;
    server.terminate(Duration::from_secs(10));
    let again = Server::start_in(dir.path(), &config, &[]);
    let stream = handshake(&tls, banner_port(&again, "https://localhost:"), "localhost").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // The served certificate already chains to pebble's root (the placeholder would
    // not), so it was the stored one; and no order was placed for it.
    let log = again.log_lines();
    assert!(
        !log.iter()
            .any(|l| l.contains("ACME certificate issued") || l.contains("ACME account created")),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_from_another_address_is_redirected_to_https_and_loopback_is_not() {
    // A client from a non-loopback address of this machine is what a headset on the LAN
    // looks like to the server. (The rule itself is unit-tested in src/tls/redirect.rs.)
    let Some(lan) = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .find(|i| !i.is_loopback() && i.ip().is_ipv4())
        .map(|i| i.ip())
    else {
        eprintln!("no non-loopback IPv4 address here; the redirect rule is covered by unit tests");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "{}\n[tls]\nmode = \"local-ca\"\nhttps = \"0.0.0.0:0\"\n",
        stream_config()
    );
    let server = Server::start_in_on(dir.path(), &config, &[], "0.0.0.0:0");
    let http_port: u16 = server
        .http
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("http port");
    let https = banner_port(&server, "https://localhost:");

    let from_lan = reqwest::Client::builder()
        .local_address(lan)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let resp = from_lan
        .get(format!("http://{lan}:{http_port}/watch/cam?x=1"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("https://{lan}:{https}/watch/cam?x=1").as_str())
    );
    // The CA and its instructions stay on plain HTTP: a device fetches them before it
    // trusts the HTTPS certificate.
    let ca = from_lan
        .get(format!("http://{lan}:{http_port}/ca.crt"))
        .send()
        .await
        .expect("GET");
    assert_eq!(ca.status(), 200);
    // The redirect target works for that client once it trusts the CA.
    let ca_pem = ca.bytes().await.expect("CA");
    let follow = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("CA"))
        .local_address(lan)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let page = follow
        .get(format!("http://{lan}:{http_port}/watch/cam"))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
    assert_eq!(page.url().scheme(), "https");

    // This machine's own clients keep plain HTTP.
    let local = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = local
        .get(format!("http://127.0.0.1:{http_port}/watch/cam"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
}
