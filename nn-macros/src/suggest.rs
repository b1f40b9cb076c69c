//! "Did you mean" suggestions and the text of shapes in messages.
use core::fmt::Write;

/// The optimal string alignment distance: insertions, deletions, substitutions and
/// transpositions of two adjacent characters each cost 1 (`Rleu` is 1 from `Relu`).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rows suffice.
    let width = b.len() + 1;
    let mut prev2 = vec![0usize; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut row = vec![0usize; width];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..width {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            row[j] = d;
        }
        core::mem::swap(&mut prev2, &mut prev);
        core::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// The distance ignoring ASCII case as well: `dense` is 0 from `Dense`.
pub(crate) fn loose_distance(a: &str, b: &str) -> usize {
    edit_distance(a, b).min(edit_distance(&a.to_ascii_lowercase(), &b.to_ascii_lowercase()))
}

/// The candidate closest to `word`, if it is close enough to be a likely typo:
/// at most a third of the word's length (and at least 1) edits away.
pub(crate) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (loose_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// A list of names for a message: `` `a`, `b` or `c` ``.
pub(crate) fn one_of<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == names.len() { " or " } else { ", " });
        }
        let _ = write!(out, "`{n}`");
    }
    out
}

/// Dimensions as the user writes them: `[16, 8, 8]`.
pub(crate) fn dims(dims: &[usize]) -> String {
    let mut out = String::from("[");
    for (i, d) in dims.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{d}");
    }
    out.push(']');
    out
}

/// Tokens as compact source text: `Tower<3>` rather than `Tower < 3 >`.
pub(crate) fn compact(tokens: &impl quote::ToTokens) -> String {
    let text = tokens.to_token_stream().to_string();
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let before = if i > 0 { chars[i - 1] } else { ' ' };
            let after = chars.get(i + 1).copied().unwrap_or(' ');
            let word = |c: char| c.is_alphanumeric() || c == '_';
            if !(word(before) && word(after)) && before != ',' {
                continue;
            }
        }
        out.push(c);
    }
    out
}
