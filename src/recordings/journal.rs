//! The journal of one recorded rendition: one text line per thing written, appended
//! after the bytes it describes are in their file, so the journal never names bytes
//! that are not on disk. Reading it back gives the segments as far as they were
//! written; a line cut by a crash (no newline) is ignored.
//!
//! ```text
//! init <id>                                   init-<id>.mp4 is complete
//! seg <msn> <init id> <discontinuity 0|1> <program date time, Unix ms>
//! part <bytes> <seconds> <independent 0|1>    appended to seg-<msn>.m4s
//! ```

use std::fmt::Write as _;

/// A journal line.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Init(u32),
    Segment {
        msn: u64,
        init_id: u32,
        discontinuity: bool,
        pdt_ms: i64,
    },
    Part {
        bytes: u64,
        seconds: f64,
        independent: bool,
    },
}

impl Entry {
    /// The line, with its newline.
    pub fn line(&self) -> String {
        let mut s = String::new();
        let _ = match self {
            Entry::Init(id) => writeln!(s, "init {id}"),
            Entry::Segment {
                msn,
                init_id,
                discontinuity,
                pdt_ms,
            } => writeln!(
                s,
                "seg {msn} {init_id} {} {pdt_ms}",
                u8::from(*discontinuity)
            ),
            Entry::Part {
                bytes,
                seconds,
                independent,
            } => writeln!(s, "part {bytes} {seconds:.6} {}", u8::from(*independent)),
        };
        s
    }

    fn parse(line: &str) -> Option<Entry> {
        let mut words = line.split(' ');
        let flag = |w: Option<&str>| match w {
            Some("0") => Some(false),
            Some("1") => Some(true),
            _ => None,
        };
        let entry = match words.next()? {
            "init" => Entry::Init(words.next()?.parse().ok()?),
            "seg" => Entry::Segment {
                msn: words.next()?.parse().ok()?,
                init_id: words.next()?.parse().ok()?,
                discontinuity: flag(words.next())?,
                pdt_ms: words.next()?.parse().ok()?,
            },
            "part" => Entry::Part {
                bytes: words.next()?.parse().ok()?,
                seconds: words
                    .next()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)?,
                independent: flag(words.next())?,
            },
            _ => return None,
        };
        words.next().is_none().then_some(entry)
    }
}

/// A recorded segment as the journal tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub msn: u64,
    pub init_id: u32,
    pub discontinuity: bool,
    pub pdt_ms: i64,
    /// Seconds of its complete parts.
    pub duration: f64,
    /// Bytes of its complete parts: the segment file's length.
    pub bytes: u64,
    pub parts: usize,
}

/// What a rendition's journal says was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    pub inits: Vec<u32>,
    pub segments: Vec<Segment>,
}

impl Recorded {
    /// Reads a journal's text. Stops at the first line that is not understood, or at a
    /// last line without its newline (cut by a crash): what follows cannot be trusted.
    pub fn parse(text: &str) -> Recorded {
        let mut out = Recorded::default();
        for line in text.split_inclusive('\n') {
            let Some(line) = line.strip_suffix('\n') else {
                break;
            };
            let Some(entry) = Entry::parse(line) else {
                tracing::warn!("recording journal: unreadable line, the rest is ignored");
                break;
            };
            match entry {
                Entry::Init(id) => out.inits.push(id),
                Entry::Segment {
                    msn,
                    init_id,
                    discontinuity,
                    pdt_ms,
                } => out.segments.push(Segment {
                    msn,
                    init_id,
                    discontinuity,
                    pdt_ms,
                    duration: 0.0,
                    bytes: 0,
                    parts: 0,
                }),
                Entry::Part { bytes, seconds, .. } => {
                    if let Some(seg) = out.segments.last_mut() {
                        seg.duration += seconds;
                        seg.bytes += bytes;
                        seg.parts += 1;
                    }
                }
            }
        }
        // A segment opened but without a complete part holds nothing playable.
        out.segments.retain(|s| s.parts > 0);
        out
    }

    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(entries: &[Entry]) -> String {
        entries.iter().map(Entry::line).collect()
    }

    #[test]
    fn a_journal_reads_back_what_was_written() {
        let text = journal(&[
            Entry::Init(0),
            Entry::Segment {
                msn: 4,
                init_id: 0,
                discontinuity: false,
                pdt_ms: 1_700_000_000_000,
            },
            Entry::Part {
                bytes: 100,
                seconds: 0.2,
                independent: true,
            },
            Entry::Part {
                bytes: 50,
                seconds: 0.2,
                independent: false,
            },
            Entry::Segment {
                msn: 5,
                init_id: 0,
                discontinuity: true,
                pdt_ms: 1_700_000_000_400,
            },
            Entry::Part {
                bytes: 70,
                seconds: 0.25,
                independent: true,
            },
        ]);
        let r = Recorded::parse(&text);
        assert_eq!(r.inits, vec![0]);
        assert_eq!(r.segments.len(), 2);
        assert_eq!(
            (r.segments[0].msn, r.segments[0].bytes, r.segments[0].parts),
            (4, 150, 2)
        );
        assert!((r.segments[0].duration - 0.4).abs() < 1e-9);
        assert!(r.segments[1].discontinuity);
        assert_eq!(r.bytes(), 220);
        assert!((r.duration() - 0.65).abs() < 1e-9);
    }

    #[test]
    fn a_line_cut_by_a_crash_and_what_follows_garbage_are_ignored() {
        let mut text = journal(&[
            Entry::Init(0),
            Entry::Segment {
                msn: 0,
                init_id: 0,
                discontinuity: false,
                pdt_ms: 0,
            },
            Entry::Part {
                bytes: 10,
                seconds: 0.2,
                independent: true,
            },
        ]);
        text.push_str("part 99");
        let r = Recorded::parse(&text);
        assert_eq!(r.segments[0].parts, 1);
        let r = Recorded::parse(&format!("{text}\npart x y z\n"));
        assert_eq!(r.segments[0].bytes, 10);
        for bad in [
            "part 1 NaN 1\n",
            "part 1 -1 1\n",
            "seg 1 0 2 0\n",
            "init\n",
            "seg 1 0 0 0 9\n",
        ] {
            assert_eq!(Recorded::parse(bad), Recorded::default(), "{bad}");
        }
    }

    #[test]
    fn a_segment_without_parts_is_dropped() {
        let text = journal(&[Entry::Segment {
            msn: 3,
            init_id: 0,
            discontinuity: false,
            pdt_ms: 0,
        }]);
        assert!(Recorded::parse(&text).segments.is_empty());
    }
}
