//! Writes what the follower took into the recording's folder, blocking (it runs on a
//! blocking thread, never on the runtime or the media thread):
//!
//! ```text
//! <asset>/hls/live-index.m3u8         the live multivariant playlist, newest
//! <asset>/hls/<rendition>/journal     see [`super::journal`]
//! <asset>/hls/<rendition>/init-<id>.mp4
//! <asset>/hls/<rendition>/seg-<msn>.m4s   its parts appended as they come
//! ```
//!
//! Bytes go to their file before the journal line that names them. A `kill -9` loses
//! at most the part being written (what `write` returned is in the page cache); the
//! files are flushed to the device (`fdatasync`) as each segment ends, so a power cut
//! loses at most the segment in progress.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::follow::Item;
use super::journal::Entry;

/// File name of the saved live multivariant playlist.
pub const LIVE_INDEX: &str = "live-index.m3u8";
/// File name of a rendition's journal.
pub const JOURNAL: &str = "journal";

pub fn init_name(id: u32) -> String {
    format!("init-{id}.mp4")
}

pub fn segment_name(msn: u64) -> String {
    format!("seg-{msn}.m4s")
}

struct Open {
    journal: File,
    segment: Option<File>,
}

/// The recording's folder, being written.
pub struct Disk {
    dir: PathBuf,
    open: HashMap<String, Open>,
}

impl Disk {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            open: HashMap::new(),
        }
    }

    fn rendition(&mut self, name: &str) -> io::Result<&mut Open> {
        if !self.open.contains_key(name) {
            let dir = self.dir.join(name);
            fs::create_dir_all(&dir)?;
            let journal = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(JOURNAL))?;
            self.open.insert(
                name.to_string(),
                Open {
                    journal,
                    segment: None,
                },
            );
        }
        self.open
            .get_mut(name)
            .ok_or_else(|| io::Error::other("rendition not open"))
    }

    /// Writes `items` in order.
    pub fn write(&mut self, items: Vec<Item>) -> io::Result<()> {
        for item in items {
            match item {
                Item::Init {
                    rendition,
                    id,
                    data,
                } => {
                    let path = self.dir.join(&rendition).join(init_name(id));
                    let open = self.rendition(&rendition)?;
                    write_whole(&path, &data)?;
                    open.journal.write_all(Entry::Init(id).line().as_bytes())?;
                }
                Item::Segment {
                    rendition,
                    msn,
                    init_id,
                    discontinuity,
                    pdt_ms,
                } => {
                    let path = self.dir.join(&rendition).join(segment_name(msn));
                    let open = self.rendition(&rendition)?;
                    if let Some(done) = open.segment.take() {
                        done.sync_data()?;
                        open.journal.sync_data()?;
                    }
                    // Truncated: a segment file is only ever this session's parts.
                    open.segment = Some(File::create(path)?);
                    let entry = Entry::Segment {
                        msn,
                        init_id,
                        discontinuity,
                        pdt_ms,
                    };
                    open.journal.write_all(entry.line().as_bytes())?;
                }
                Item::Part {
                    rendition,
                    data,
                    seconds,
                    independent,
                } => {
                    let open = self.rendition(&rendition)?;
                    let Some(segment) = open.segment.as_mut() else {
                        // The follower always starts a segment before its parts.
                        continue;
                    };
                    segment.write_all(&data)?;
                    let entry = Entry::Part {
                        bytes: data.len() as u64,
                        seconds,
                        independent,
                    };
                    open.journal.write_all(entry.line().as_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// Keeps the newest live multivariant playlist: the on-demand one is made from it,
    /// so it carries the same codecs and 360 signaling.
    pub fn save_multivariant(&self, text: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        write_whole(&self.dir.join(LIVE_INDEX), text)
    }

    /// Flushes everything to the device.
    pub fn finish(mut self) -> io::Result<()> {
        for (_, open) in self.open.drain() {
            if let Some(segment) = open.segment {
                segment.sync_data()?;
            }
            open.journal.sync_data()?;
        }
        Ok(())
    }
}

/// Writes `data` as `path` whole: a temp file renamed, so `path` is complete or absent.
pub fn write_whole(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = crate::assets::files::temp_of(path);
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_data()?;
    fs::rename(&tmp, path)
}
