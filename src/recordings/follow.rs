//! What a recording takes from a stream's published output: every init segment and
//! part of the recorded renditions, in order, once. The packager is not touched: the
//! follower reads the same windows HTTP delivery reads (cloning [`Bytes`] references,
//! never copying media) each time the output changes, so recording can neither slow
//! nor break the live path.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::media::TrackKind;
use crate::packager::output::{source_rendition_name, OutputState, Rendition};

/// Something to write.
#[derive(Clone, Debug)]
pub enum Item {
    Init {
        rendition: String,
        id: u32,
        data: Bytes,
    },
    /// A segment starts; its parts follow.
    Segment {
        rendition: String,
        msn: u64,
        init_id: u32,
        discontinuity: bool,
        pdt_ms: i64,
    },
    Part {
        rendition: String,
        data: Bytes,
        seconds: f64,
        independent: bool,
    },
}

#[derive(Default)]
struct Cursor {
    /// Segments below this msn belong to an earlier live session.
    from: u64,
    /// The segment being taken and how many of its parts were.
    current: Option<(u64, usize)>,
    inits: HashSet<u32>,
}

/// Follows one live session of one stream's output.
pub struct Follower {
    rungs: bool,
    cursors: HashMap<String, Cursor>,
    /// Segments that aged out of a window before they were taken (the follower was
    /// starved for longer than the window).
    pub lost_segments: u64,
}

impl Follower {
    /// Starts at `state` as it is when the session starts. A window still showing the
    /// previous session (ended, kept until the first new media) is skipped up to its
    /// next segment; anything else in the output is this session's.
    pub fn new(state: &OutputState, rungs: bool) -> Self {
        let cursors = state
            .renditions
            .iter()
            .filter(|r| r.window.is_ended())
            .map(|r| {
                let cursor = Cursor {
                    from: r.window.next_msn(),
                    ..Cursor::default()
                };
                (r.name.clone(), cursor)
            })
            .collect();
        Self {
            rungs,
            cursors,
            lost_segments: 0,
        }
    }

    /// Whether rendition `r` is recorded: the source video and audio, and the rungs
    /// when asked for.
    fn records(&self, r: &Rendition) -> bool {
        self.rungs || r.name == source_rendition_name(r.kind)
    }

    /// What was published since the last call.
    pub fn collect(&mut self, state: &OutputState) -> Vec<Item> {
        let mut items = Vec::new();
        for r in &state.renditions {
            if !self.records(r) {
                continue;
            }
            let cursor = self.cursors.entry(r.name.clone()).or_default();
            let segments = r.window.segments().chain(r.window.open_segment());
            for seg in segments {
                if seg.msn < cursor.from {
                    continue;
                }
                let skip = match cursor.current {
                    Some((msn, _)) if seg.msn < msn => continue,
                    Some((msn, taken)) if seg.msn == msn => taken,
                    previous => {
                        let expected = previous.map_or(seg.msn, |(msn, _)| msn + 1);
                        let lost = seg.msn.saturating_sub(expected);
                        self.lost_segments += lost;
                        if !cursor.inits.contains(&seg.init_id) {
                            if let Some(data) = r.window.init(seg.init_id) {
                                items.push(Item::Init {
                                    rendition: r.name.clone(),
                                    id: seg.init_id,
                                    data: data.clone(),
                                });
                                cursor.inits.insert(seg.init_id);
                            }
                        }
                        items.push(Item::Segment {
                            rendition: r.name.clone(),
                            msn: seg.msn,
                            init_id: seg.init_id,
                            discontinuity: seg.discontinuity || lost > 0,
                            pdt_ms: unix_ms(seg.program_date_time),
                        });
                        0
                    }
                };
                for part in seg.parts.iter().skip(skip) {
                    items.push(Item::Part {
                        rendition: r.name.clone(),
                        data: part.data.clone(),
                        seconds: part.duration,
                        independent: part.independent,
                    });
                }
                cursor.current = Some((seg.msn, seg.parts.len().max(skip)));
            }
        }
        items
    }
}

/// Whether `name` is a rendition a recording without rungs keeps.
pub fn is_source(name: &str) -> bool {
    name == source_rendition_name(TrackKind::Video)
        || name == source_rendition_name(TrackKind::Audio)
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packager::publish::rendition as add_rendition;
    use crate::packager::window::WindowConfig;

    const WINDOW: WindowConfig = WindowConfig {
        part_target: 0.2,
        segment_target: 1.0,
        window_segments: 3,
        part_hold_back_parts: 3.0,
    };

    fn part(state: &mut OutputState, name: &str, byte: u8, independent: bool) {
        let r = add_rendition(state, name, TrackKind::Video, WINDOW);
        if !r.window.has_init() {
            r.window.set_init(Bytes::from_static(b"init"));
        }
        r.window
            .add_part(Bytes::from(vec![byte]), 0.2, independent, SystemTime::now());
    }

    fn end_segment(state: &mut OutputState, name: &str) {
        add_rendition(state, name, TrackKind::Video, WINDOW)
            .window
            .end_segment();
    }

    fn parts(items: &[Item]) -> Vec<u8> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Part { data, .. } => Some(data[0]),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_part_is_taken_once_in_order() {
        let mut state = OutputState::default();
        let mut f = Follower::new(&state, false);
        part(&mut state, "video", 1, true);
        part(&mut state, "video", 2, false);
        let first = f.collect(&state);
        assert!(matches!(first[0], Item::Init { id: 0, .. }));
        assert!(matches!(first[1], Item::Segment { msn: 0, .. }));
        assert_eq!(parts(&first), vec![1, 2]);
        assert!(f.collect(&state).is_empty());
        part(&mut state, "video", 3, false);
        end_segment(&mut state, "video");
        part(&mut state, "video", 4, true);
        let next = f.collect(&state);
        assert_eq!(parts(&next), vec![3, 4]);
        assert!(next
            .iter()
            .any(|i| matches!(i, Item::Segment { msn: 1, .. })));
        assert_eq!(f.lost_segments, 0);
    }

    #[test]
    fn rungs_are_left_out_unless_asked_for() {
        let mut state = OutputState::default();
        let mut f = Follower::new(&state, false);
        part(&mut state, "r720", 9, true);
        part(&mut state, "video", 1, true);
        assert_eq!(parts(&f.collect(&state)), vec![1]);
        let mut all = Follower::new(&OutputState::default(), true);
        assert_eq!(parts(&all.collect(&state)).len(), 2);
    }

    #[test]
    fn the_previous_sessions_ended_window_is_not_recorded() {
        let mut state = OutputState::default();
        part(&mut state, "video", 1, true);
        add_rendition(&mut state, "video", TrackKind::Video, WINDOW)
            .window
            .end_playlist();
        let mut f = Follower::new(&state, false);
        assert!(f.collect(&state).is_empty());
        let r = add_rendition(&mut state, "video", TrackKind::Video, WINDOW);
        r.window.restart();
        part(&mut state, "video", 2, true);
        assert_eq!(parts(&f.collect(&state)), vec![2]);
    }

    #[test]
    fn segments_that_aged_out_unseen_are_counted_and_mark_a_discontinuity() {
        let mut state = OutputState::default();
        let mut f = Follower::new(&state, false);
        part(&mut state, "video", 1, true);
        f.collect(&state);
        for b in 2..8 {
            end_segment(&mut state, "video");
            part(&mut state, "video", b, true);
        }
        let items = f.collect(&state);
        assert!(f.lost_segments > 0);
        assert!(items.iter().any(|i| matches!(
            i,
            Item::Segment {
                discontinuity: true,
                ..
            }
        )));
    }
}
