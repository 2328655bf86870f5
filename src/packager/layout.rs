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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_are_told_what_they_receive() {
        let mut def = StreamDef::new("rig");
        def.projection = Projection::DualFisheye;
        def.orientation.yaw = 40.0;
        let layout = Layout::of(&def);
        assert_eq!(layout.projection, Projection::Equirect);
        assert_eq!(layout.orientation.yaw, 40.0, "signalled");
        def.bake_orientation = true;
        assert_eq!(
            Layout::of(&def).orientation,
            Orientation::default(),
            "baked into the pixels: signalled neutral"
        );
    }
}
