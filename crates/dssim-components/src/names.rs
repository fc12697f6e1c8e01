//! "Did you mean ...?" for a misspelt name, key or value.

/// The closest of `candidates` to `word` by edit distance (case-insensitive Levenshtein,
/// from `strsim`), if close enough to be a plausible typo: within a third of the longer
/// length, at least 1. Of equally close candidates, the first.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::levenshtein(&lower, &c.to_lowercase());
        let limit = (c.len().max(word.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn did_you_mean_finds_close_names() {
        let names = ["round_robin", "least_connections", "random"];
        assert_eq!(did_you_mean("round_robbin", names), Some("round_robin"));
        assert_eq!(did_you_mean("Round_Robin", names), Some("round_robin"));
        assert_eq!(did_you_mean("zzz", names), None);
    }
}
