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
    /// The layout a stream's definition asks for: what players receive, so a
    /// dual-fisheye source signals the equirect it is stitched into, and a baked
    /// orientation (already in the pixels) is signalled as neutral.
    pub fn of(stream: &StreamDef) -> Self {
        Self {
            projection: stream.projection.delivered(),
            orientation: if stream.bake_orientation {
                Orientation::default()
            } else {
                stream.orientation
            },
        }
    }
}
