//! The webhook receiver of `tests/webhook_receiver/receiver.py`: a real HTTP server that
//! verifies every delivery with PyPI `standardwebhooks` (installed into a venv under
//! the target dir on first use) and writes what it got to a file the test reads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The venv's python with `standardwebhooks` at the pinned version.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    static INSTALLING: Mutex<()> = Mutex::new(());
    PYTHON.get_or_init(|| {
        let _one = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let requirements = root.join("tests/webhook_receiver/requirements.txt");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap_or(Path::new("target"))
            .to_path_buf();
        let venv = target.join("venv-webhooks");
        let python = venv.join("bin/python");
        let marker = venv.join("installed-requirements.txt");
        let wanted = std::fs::read(&requirements).expect("requirements file");
        let ready = std::fs::read(&marker).is_ok_and(|m| m == wanted)
            && Command::new(&python)
                .args(["-c", "import standardwebhooks"])
                .status()
                .is_ok_and(|s| s.success());
        if !ready {
            let run = |cmd: &mut Command| {
                let status = cmd.status().expect("run python");
                assert!(status.success(), "{cmd:?} failed");
            };
            run(Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv));
            run(Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements));
            std::fs::write(&marker, &wanted).expect("marker");
        }
        python
    })
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub webhook_id: String,
    /// What the receiver answered: 204 (verified), 400 (signature did not verify), 500
    /// (told to fail).
    pub answer: u16,
    pub verified: bool,
    /// The verified body (`type`, `timestamp`, `data`).
    pub payload: Value,
}

/// A running receiver, killed on drop.
pub struct Receiver {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    pub fn start() -> Receiver {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("received.jsonl");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_receiver/receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the webhook receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("receiver output");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("receiver printed {line:?}"));
        Receiver {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// The URL deliveries go to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Sets what the receiver does next (see receiver.py: `secret`, `fail_next`,
    /// `retry_after`).
    pub async fn control(&self, c: &reqwest::Client, body: Value) {
        let r = c
            .post(format!("http://127.0.0.1:{}/_control", self.port))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("control the receiver");
        assert_eq!(r.status().as_u16(), 204);
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| Received {
                webhook_id: v["webhook_id"].as_str().unwrap_or_default().to_string(),
                answer: v["answer"].as_u64().unwrap_or(0) as u16,
                verified: v["verified"].as_bool().unwrap_or(false),
                payload: v["payload"].clone(),
            })
            .collect()
    }

    /// Verified deliveries so far.
    pub fn verified(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.verified).collect()
    }

    /// Waits until `done` holds for what was received, for at most `limit`.
    pub async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver never got {what}; it got:\n{got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
