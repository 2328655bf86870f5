//! How a stream's video maps onto the sphere, as the packager signals it.

use crate::streams::{Orientation, Projection, StreamDef};

/// What the packager writes as 360° signaling: the `st3d`/`sv3d`/`vexu` boxes of every
/// video init segment and `REQ-VIDEO-LAYOUT` in the multivariant playlist (see
/// `docs/360-signaling.md`). Flat video writes neither.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Layout {
    pub projection: Projection,
    pub orientation: Orientation,
}

impl Layout {
    /// The layout a stream's definition asks for.
    pub fn of(stream: &StreamDef) -> Self {
        Self {
            projection: stream.projection,
            orientation: stream.orientation,
        }
    }
}
