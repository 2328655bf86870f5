//! Records one RTMP publish as the golden files under `tests/data/` hold it: every byte
//! the client sent, from C0 on, while panocast's own handshake and connection answer
//! as the server would (any app is refused but `live`; any stream key is accepted).
//!
//!   cargo run --example rtmp_capture -- OUT.bin
//!
//! prints `rtmp://127.0.0.1:PORT/live` on stdout, takes one connection, and writes OUT
//! when the client disconnects (or after [`MAX_BYTES`]). `tests/data/capture-rtmp.sh`
//! drives it with real encoders.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Instant;

use panocast::ingest::rtmp::connection::{Event, RtmpConnection};
use panocast::ingest::rtmp::handshake::{HandshakeStep, ServerHandshake};

/// Golden files stay small; a capture that grows past this is cut.
const MAX_BYTES: usize = 2 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: rtmp_capture OUT.bin")?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("rtmp://{}/live", listener.local_addr()?);
    std::io::stdout().flush()?;
    let (mut socket, _) = listener.accept()?;
    let mut recorded = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut handshake = ServerHandshake::new();
    let mut connection: Option<RtmpConnection> = None;
    while recorded.len() < MAX_BYTES {
        let n = socket.read(&mut buf)?;
        if n == 0 {
            break;
        }
        recorded.extend_from_slice(&buf[..n]);
        let chunk_bytes = match &mut connection {
            Some(_) => buf[..n].to_vec(),
            None => match handshake.feed(&buf[..n])? {
                HandshakeStep::InProgress { reply } => {
                    socket.write_all(&reply)?;
                    continue;
                }
                HandshakeStep::Done { reply, leftover } => {
                    socket.write_all(&reply)?;
                    connection = Some(RtmpConnection::new("live"));
                    leftover
                }
            },
        };
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let mut finished = false;
        for event in conn.feed(&chunk_bytes, Instant::now())? {
            match event {
                Event::PublishRequested { request_id, .. } => conn.accept_publish(request_id)?,
                Event::PublishFinished => finished = true,
                _ => {}
            }
        }
        socket.write_all(&conn.take_outbound())?;
        if finished {
            break;
        }
    }
    std::fs::write(&out, &recorded)?;
    eprintln!("rtmp_capture: {} bytes in {out}", recorded.len());
    Ok(())
}
