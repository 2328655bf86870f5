//! Posters: a JPEG of each live stream, renewed every [`LIVE_EVERY`], and one of each
//! on-demand asset, made when it becomes ready and kept in its folder.
//!
//! - [`pick`]: which keyframe (the newest published source part; a segment at a tenth
//!   of a presentation);
//! - [`encode`]: that keyframe alone decoded, scaled and JPEG-encoded by GStreamer.
//!
//! One task does all of it, one poster at a time on a blocking thread, so posters
//! never compete with each other for the two cores and never run on the runtime or
//! the live path. Live posters are held in memory (a few tens of kilobytes each);
//! asset posters are `<asset>/poster.jpg`.

pub mod encode;
pub mod pick;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::assets::events::{AssetBus, AssetEvent};
use crate::assets::store::AssetStore;
use crate::assets::{files, AssetState};
use crate::catalog::Catalog;
use crate::packager::Outputs;
use crate::streams::Projection;
use encode::Shape;

/// How often a live stream's poster is renewed.
pub const LIVE_EVERY: Duration = Duration::from_secs(10);
/// How often the live outputs are looked at: a stream that goes live gets its first
/// poster within about this long of its first keyframe.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Asset posters asked for and not yet made, at most.
const ASSET_BACKLOG: usize = 256;

/// File name of an asset's poster in its folder.
pub const FILE_NAME: &str = "poster.jpg";

/// A JPEG and its entity tag.
#[derive(Clone, Debug)]
pub struct Poster {
    pub jpeg: Bytes,
    /// Quoted, as in the `ETag` header.
    pub etag: String,
}

impl Poster {
    pub fn new(jpeg: Bytes) -> Self {
        let digest = Sha256::digest(&jpeg);
        let etag = format!("\"{}\"", hex(&digest[..12]));
        Self { jpeg, etag }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Live {
    poster: Poster,
    made: Instant,
    at: (u64, usize),
}

/// Where an asset's poster is.
pub fn asset_path(data_dir: &Path, asset_id: &str) -> PathBuf {
    files::dir(data_dir, asset_id).join(FILE_NAME)
}

fn shape(projection: Projection) -> Shape {
    if projection == Projection::Equirect {
        Shape::TwoToOne
    } else {
        Shape::KeepAspect
    }
}

/// The posters, and a way to ask for an asset's.
pub struct Posters {
    live: Mutex<HashMap<String, Live>>,
    wanted: mpsc::Sender<String>,
    /// Assets asked for since the start whose poster was attempted (an audio-only
    /// asset has none; it is not retried at every request).
    tried: Mutex<HashSet<String>>,
    data_dir: PathBuf,
}

/// What the poster task works from.
pub struct Sources {
    pub outputs: Arc<Outputs>,
    pub catalog: Arc<Catalog>,
    pub assets: AssetStore,
    pub bus: AssetBus,
}

impl Posters {
    /// The posters of `data_dir`'s assets and of the live outputs, made by a task
    /// that runs until `shutdown`.
    pub fn start(data_dir: PathBuf, sources: Sources, shutdown: CancellationToken) -> Arc<Self> {
        let (wanted, asked) = mpsc::channel(ASSET_BACKLOG);
        let posters = Arc::new(Self {
            live: Mutex::new(HashMap::new()),
            wanted,
            tried: Mutex::new(HashSet::new()),
            data_dir,
        });
        let events = sources.bus.subscribe();
        tokio::spawn(Arc::clone(&posters).run(sources, events, asked, shutdown));
        posters
    }

    /// The newest poster of stream `slug`, if one was made.
    pub fn live(&self, slug: &str) -> Option<Poster> {
        self.lock().get(slug).map(|l| l.poster.clone())
    }

    /// The poster of asset `id`, if it has one; when it has none, one is asked for
    /// (an asset made before posters were, or whose poster failed).
    pub async fn asset(&self, id: &str) -> std::io::Result<Option<Poster>> {
        match tokio::fs::read(asset_path(&self.data_dir, id)).await {
            Ok(jpeg) => Ok(Some(Poster::new(Bytes::from(jpeg)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = self.wanted.try_send(id.to_string());
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(
        self: Arc<Self>,
        sources: Sources,
        mut events: tokio::sync::broadcast::Receiver<AssetEvent>,
        mut asked: mpsc::Receiver<String>,
        shutdown: CancellationToken,
    ) {
        let mut look = tokio::time::interval(LOOK_EVERY);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = look.tick() => self.renew_live(&sources).await,
                event = events.recv() => match event {
                    Ok(AssetEvent::Ready { asset_id }) => self.make_asset(&sources, &asset_id).await,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "posters fell behind the asset bus");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                Some(id) = asked.recv() => {
                    let first = self.tried.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone());
                    if first && !asset_path(&self.data_dir, &id).exists() {
                        self.make_asset(&sources, &id).await;
                    }
                }
            }
        }
    }

    /// A new poster for every live stream whose poster is [`LIVE_EVERY`] old (or
    /// missing) and that has published a newer keyframe; posters of deleted streams
    /// are dropped.
    async fn renew_live(&self, sources: &Sources) {
        self.lock()
            .retain(|slug, _| sources.catalog.get_slug(slug).is_some());
        for (slug, output) in sources.outputs.all() {
            let previous = self.lock().get(&slug).map(|l| (l.made, l.at));
            if previous.is_some_and(|(made, _)| made.elapsed() < LIVE_EVERY) {
                continue;
            }
            let Some(keyframe) = pick::live(&output.lock()) else {
                continue;
            };
            if previous.is_some_and(|(_, at)| at == keyframe.at) {
                continue;
            }
            let Some(stream) = sources.catalog.get_slug(&slug) else {
                continue;
            };
            let shape = shape(stream.projection);
            let (init, part) = (keyframe.init, keyframe.part);
            let made = tokio::task::spawn_blocking(move || encode::jpeg(&init, &part, shape)).await;
            match made {
                Ok(Ok(jpeg)) => {
                    let live = Live {
                        poster: Poster::new(Bytes::from(jpeg)),
                        made: Instant::now(),
                        at: keyframe.at,
                    };
                    self.lock().insert(slug, live);
                }
                Ok(Err(e)) => tracing::warn!(stream = %slug, error = %e, "no live poster"),
                Err(e) => tracing::warn!(stream = %slug, error = %e, "live poster stopped"),
            }
        }
    }

    /// The poster of asset `id`, from its on-demand HLS.
    async fn make_asset(&self, sources: &Sources, id: &str) {
        let asset = match sources.assets.get(id).await {
            Ok(Some(asset)) if asset.state == AssetState::Ready => asset,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(asset = %id, error = %e, "cannot read the asset for its poster");
                return;
            }
        };
        let hls = crate::recordings::hls_dir(&self.data_dir, id);
        let out = asset_path(&self.data_dir, id);
        let shape = shape(asset.projection);
        let made = tokio::task::spawn_blocking(move || asset_poster(&hls, &out, shape)).await;
        match made {
            Ok(Ok(())) => tracing::info!(asset = %id, "asset poster made"),
            Ok(Err(e)) => tracing::warn!(asset = %id, error = %e, "no asset poster"),
            Err(e) => tracing::warn!(asset = %id, error = %e, "asset poster stopped"),
        }
    }
}

/// Writes the poster of the presentation in `hls` to `out` (blocking).
fn asset_poster(hls: &Path, out: &Path, shape: Shape) -> Result<(), String> {
    let read_text =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let index = read_text(&hls.join(crate::recordings::finalise::INDEX))?;
    let playlist = pick::vod_rendition(&index).ok_or("no video rendition")?;
    let media = read_text(&hls.join(playlist))?;
    let seg = pick::vod_segment(&media).ok_or("no segment")?;
    let jpeg = encode::jpeg(
        &read(&hls.join(seg.init))?,
        &read(&hls.join(seg.segment))?,
        shape,
    )
    .map_err(|e| e.to_string())?;
    crate::recordings::disk::write_whole(out, &jpeg).map_err(|e| e.to_string())
}
