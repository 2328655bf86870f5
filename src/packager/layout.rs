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
    /// orientation (already in the pixels) is signalled as neutral. A cubemap is
    /// signalled as flat video: the HLS and Spherical Video V2 signaling name no
    /// cubemap, and an equirect header on a cubemap would make a player draw it
    /// wrong; panocast's player learns the layout from the stream info.
    pub fn of(stream: &StreamDef) -> Self {
        if stream.cubemap {
            return Self {
                projection: Projection::Flat,
                orientation: Orientation::default(),
            };
        }
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
        def.cubemap = true;
        assert_eq!(
            Layout::of(&def).projection,
            Projection::Flat,
            "a cubemap has no 360 signaling"
        );
    }
}
