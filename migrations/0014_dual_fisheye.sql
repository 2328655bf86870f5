-- Dual-fisheye streams and baked orientation (issue 17 item 2). Portable SQL, like 0001.

-- The lenses of a dual-fisheye stream as JSON: {"front": {fov, center_x, center_y,
-- radius, rotation}, "back": {...}, "overlap": degrees}; what is left out takes the
-- defaults (two circles side by side, front on the right, 190 degree lenses).
ALTER TABLE streams ADD COLUMN fisheye TEXT NOT NULL DEFAULT '{}';
-- TRUE: the orientation is turned into the pictures and signalled as neutral.
ALTER TABLE streams ADD COLUMN bake_orientation BOOLEAN NOT NULL DEFAULT FALSE;
