//! Schemas of request fields whose rules the derive cannot spell (item rules of
//! arrays, types defined elsewhere, one pattern shared by several fields). Each states
//! what `crate::catalog::StreamFields::validate` enforces; a field that breaks it is
//! a 422.

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, SchemaType, Type,
};

/// The characters `char::is_whitespace` accepts (what `str::trim` removes), as
/// inclusive ranges. Spelled out because `\s` means a slightly different set in
/// ECMAScript, Python and Rust regexes, and a schema's pattern is read by all three.
const WHITE_SPACE: [(char, char); 10] = [
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// A pattern matching strings with at least one character that is not white space.
fn not_blank() -> String {
    let mut class = String::from("[^");
    for (first, last) in WHITE_SPACE {
        class.push_str(&format!("\\u{:04x}", u32::from(first)));
        if last != first {
            class.push_str(&format!("-\\u{:04x}", u32::from(last)));
        }
    }
    class.push(']');
    class
}

/// A stream's `title`: 1–200 characters, not only white space; `null` means the
/// default (the slug) or, in a patch, unchanged.
pub fn title() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "1-200 characters, not only white space; `null` or absent: the slug at \
             creation, unchanged in a patch",
        ))
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(not_blank()))
}

/// A scheduled event's `title`: 1–200 characters, not only white space.
pub fn event_title() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("1-200 characters, not only white space"))
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(not_blank()))
}

/// A stream's `tags`: at most 20, each 1–32 characters, not only white space.
pub fn tags() -> ArrayBuilder {
    ArrayBuilder::new()
        .description(Some(
            "at most 20 tags of 1-32 characters, each not only white space",
        ))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(32))
                .pattern(Some(not_blank())),
        )
        .max_items(Some(20))
}

/// [`tags`] where `null` (unchanged) is allowed too.
pub fn tags_patch() -> ArrayBuilder {
    tags().schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
}

/// An `orientation`: degrees in -360..=360, each 0 when absent, no other field.
pub fn orientation() -> ObjectBuilder {
    let angle = |what: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(-360))
            .maximum(Some(360))
            .description(Some(what))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Initial view direction in degrees."))
        .property("yaw", angle("degrees to the right; 0 when absent"))
        .property("pitch", angle("degrees up; 0 when absent"))
        .property("roll", angle("degrees clockwise; 0 when absent"))
        .additional_properties(Some(
            AdditionalProperties::<utoipa::openapi::Schema>::FreeForm(false),
        ))
}

/// [`orientation`] where `null` (unchanged) is allowed too.
pub fn orientation_patch() -> ObjectBuilder {
    orientation().schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
}

/// An upload's `projection`: a stream's projections except `dual-fisheye` (an
/// upload is packaged as it is, never stitched).
pub fn upload_projection() -> ObjectBuilder {
    use crate::streams::Projection;
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            [
                Projection::Flat,
                Projection::Equirect,
                Projection::EquirectStereoTb,
                Projection::EquirectStereoSbs,
            ]
            .map(Projection::as_str),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_is_what_trim_removes() {
        let listed = |c: char| WHITE_SPACE.iter().any(|&(a, b)| (a..=b).contains(&c));
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", u32::from(c));
        }
        assert_eq!(
            not_blank(),
            "[^\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\
             \\u202f\\u205f\\u3000]"
        );
    }
}
