//! From what a person typed to an FTS5 `MATCH` expression, without I/O.
//!
//! The typed text never reaches FTS5 as syntax: it is cut into words here (letters and
//! digits; everything else separates, as the index's `unicode61` tokenizer does), each
//! word is folded (lower case, diacritics removed) and written as a quoted FTS5 string.
//! So `"`, `*`, `NEAR(`, `-`, `OR`, `:` or parentheses are just separators or plain words
//! and can never make the expression invalid.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Words of a query beyond this are ignored (a query is at most 200 characters).
pub const MAX_TERMS: usize = 16;
/// Words shorter than this get no typo alternatives: one edit away from a two-letter
/// word is almost every short word.
pub const MIN_FUZZY_CHARS: usize = 3;

/// The folded words of `text`, at most [`MAX_TERMS`], duplicates removed.
pub fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| !is_word_char(c)) {
        let folded = fold(word);
        if folded.is_empty() || out.contains(&folded) {
            continue;
        }
        out.push(folded);
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// Letters, digits and private-use characters make words (`unicode61`'s default);
/// combining marks stay with their letter so that folding can drop them.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c) || ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// Lower case without diacritics (`Café` → `cafe`), as `unicode61 remove_diacritics 2`
/// folds the index's words, so query words compare with the index's vocabulary. Like
/// the tokenizer, only Latin letters lose their marks (`ブ` stays `ブ`), and lone
/// combining diacritics (U+0300–U+036F) are dropped.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if ('\u{300}'..='\u{36F}').contains(&c) {
            continue;
        }
        let mut parts = std::iter::once(c).nfd();
        match parts.next() {
            Some(base) if is_latin(base) => {
                out.extend(base.to_lowercase());
                out.extend(
                    parts
                        .filter(|p| !is_combining_mark(*p))
                        .flat_map(char::to_lowercase),
                );
            }
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Latin letters: the blocks up to IPA Extensions, and Latin Extended Additional.
fn is_latin(c: char) -> bool {
    c < '\u{250}' || ('\u{1E00}'..='\u{1EFF}').contains(&c)
}

/// `term` as an FTS5 string: in double quotes, inner quotes doubled.
pub fn quote(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// Every term as a whole word or a prefix (`lob` finds "Lobby"), all required.
/// `None` when there is no term.
pub fn exact_expression(terms: &[String]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    Some(
        terms
            .iter()
            .map(|t| format!("{}*", quote(t)))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// Like [`exact_expression`], with each term's `alternatives` (words of the index one
/// edit away) accepted in its place. `None` when no term has an alternative: the
/// expression would find what the exact one found.
pub fn fuzzy_expression(terms: &[String], alternatives: &[Vec<String>]) -> Option<String> {
    if terms.is_empty() || alternatives.iter().all(Vec::is_empty) {
        return None;
    }
    let groups = terms.iter().enumerate().map(|(i, term)| {
        let mut parts = vec![format!("{}*", quote(term))];
        if let Some(alts) = alternatives.get(i) {
            parts.extend(alts.iter().map(|a| quote(a)));
        }
        format!("({})", parts.join(" OR "))
    });
    Some(groups.collect::<Vec<_>>().join(" AND "))
}

/// Whether `a` and `b` differ by at most one insertion, deletion or substitution of
/// a character (Levenshtein distance ≤ 1), in one pass without a distance matrix.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 {
        return false;
    }
    let Some(first_difference) = short.iter().zip(long.iter()).position(|(x, y)| x != y) else {
        // One is a prefix of the other, and at most one character longer.
        return true;
    };
    if short.len() == long.len() {
        short[first_difference + 1..] == long[first_difference + 1..]
    } else {
        short[first_difference..] == long[first_difference + 1..]
    }
}

/// Whether `term` is long enough to look for typo alternatives.
pub fn fuzzy_candidate(term: &str) -> bool {
    term.chars().count() >= MIN_FUZZY_CHARS
}

/// Inputs that break naive `MATCH` building, plus pseudo-random strings (tests here
/// and in [`super::index`]).
#[cfg(test)]
pub(crate) fn hostile_inputs() -> Vec<String> {
    let mut inputs: Vec<String> = [
        "\"",
        "*",
        "NEAR(",
        "a OR",
        "OR",
        "AND",
        "NOT",
        "-",
        "a -b",
        "(",
        ")",
        "a:b",
        "title:x",
        "^a",
        "{title}: x",
        "\"\"\"",
        "a\"b",
        "NEAR(a b, 3)",
        "* *",
        "'",
        "%",
        "_",
        "\\",
        "\0",
        "a\u{0}b",
        "ﬁ",
        "İstanbul",
        "ß",
        "e\u{301}",
        "🎥 360°",
        "\u{202e}abc",
        "a+b",
        "a AND",
        "AND OR NOT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    inputs.push("x".repeat(201));
    // A small xorshift: deterministic strings over a hostile alphabet.
    let alphabet: Vec<char> = "\"*()-^:+ aZé0NEAROT\u{0}\u{301}\u{FFFD}".chars().collect();
    let mut seed = 0x9E37_79B9_u32;
    for _ in 0..300 {
        let mut s = String::new();
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            s.push(alphabet[(seed as usize) % alphabet.len()]);
        }
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        inputs.push(s);
    }
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn words_are_folded_and_split_on_everything_else() {
        assert_eq!(terms("The LOBBY"), t(&["the", "lobby"]));
        assert_eq!(terms("Café Zürich"), t(&["cafe", "zurich"]));
        assert_eq!(terms("music-live, 360°!"), t(&["music", "live", "360"]));
        assert_eq!(terms("lobby lobby Lobby"), t(&["lobby"]));
        assert_eq!(terms("İstanbul Cafe\u{301}"), t(&["istanbul", "cafe"]));
        assert_eq!(terms("東京 ライブ"), t(&["東京", "ライブ"]));
        assert!(terms("\"*()- :^").is_empty());
        assert!(terms("").is_empty());
        let many = (0..40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(terms(&many).len(), MAX_TERMS);
    }

    #[test]
    fn operators_become_quoted_words() {
        assert_eq!(
            exact_expression(&terms("a OR b")).as_deref(),
            Some(r#""a"* AND "or"* AND "b"*"#)
        );
        assert_eq!(
            exact_expression(&terms("NEAR(x y)")).as_deref(),
            Some(r#""near"* AND "x"* AND "y"*"#)
        );
        assert_eq!(exact_expression(&terms("\"*\"")), None);
        assert_eq!(quote(r#"a"b"#), r#""a""b""#);
    }

    #[test]
    fn typo_alternatives_join_their_term() {
        let terms = t(&["lobyy", "vr"]);
        let alts = vec![t(&["lobby", "loby"]), vec![]];
        assert_eq!(
            fuzzy_expression(&terms, &alts).as_deref(),
            Some(r#"("lobyy"* OR "lobby" OR "loby") AND ("vr"*)"#)
        );
        assert_eq!(fuzzy_expression(&terms, &[vec![], vec![]]), None);
        assert!(fuzzy_candidate("lob") && !fuzzy_candidate("vr"));
    }

    #[test]
    fn one_edit() {
        for (a, b) in [
            ("lobyy", "lobby"),
            ("lobby", "lobby"),
            ("loby", "lobby"),
            ("lobbyx", "lobby"),
            ("xlobby", "lobby"),
            ("obby", "lobby"),
            ("café", "cafe"),
            ("", "a"),
        ] {
            assert!(within_one_edit(a, b), "{a} {b}");
            assert!(within_one_edit(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("lboby", "lobby"),
            ("lob", "lobby"),
            ("hall", "lobby"),
            ("ab", "ba"),
            ("", "ab"),
        ] {
            assert!(!within_one_edit(a, b), "{a} {b}");
        }
    }

    /// Whatever is typed, the expression is quoted words joined by AND/OR and
    /// parentheses: nothing the user typed is FTS5 syntax. (The same inputs are run
    /// against a real FTS5 table in `search::index`'s tests.)
    #[test]
    fn hostile_input_only_ever_gives_quoted_words() {
        for input in hostile_inputs() {
            let Some(expr) = exact_expression(&terms(&input)) else {
                continue;
            };
            for part in expr.split(" AND ") {
                let inner = part
                    .strip_prefix('"')
                    .and_then(|p| p.strip_suffix("\"*"))
                    .unwrap_or_else(|| panic!("{input:?} gave {expr}"));
                assert!(!inner.contains('"'), "{input:?} gave {expr}");
            }
        }
    }
}
