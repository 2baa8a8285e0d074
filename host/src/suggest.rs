//! "Did you mean": the known name closest to a mistyped one.

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most a third of the word's length, and at least one edit).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != word)
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// `"; did you mean `name`?"` when a candidate is close to `word`, else nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(word, candidates).map_or_else(String::new, |name| format!("; did you mean `{name}`?"))
}

/// Edit distance over characters (insertions, deletions, substitutions and swaps of two
/// neighbours each count one), with a case-only difference counting half, rounded up:
/// `Plugin` for `plugin` is one edit, as `cdoec` for `codec` is.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: doubled distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = 2 * i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = 2 * j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let (ca, cb) = (a[i - 1], b[j - 1]);
            let substitution = if ca == cb {
                0
            } else if ca.to_lowercase().eq(cb.to_lowercase()) {
                1
            } else {
                2
            };
            let mut best = (d[i - 1][j - 1] + substitution)
                .min(d[i - 1][j] + 2)
                .min(d[i][j - 1] + 2);
            if i > 1 && j > 1 && ca == b[j - 2] && a[i - 2] == cb {
                best = best.min(d[i - 2][j - 2] + 2);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()].div_ceil(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name_and_strangers_find_none() {
        let keys = [
            "id",
            "plugin",
            "codec",
            "preprocessors",
            "postprocessors",
            "config",
        ];
        assert_eq!(closest("plugn", keys), Some("plugin"));
        assert_eq!(closest("Plugin", keys), Some("plugin"));
        assert_eq!(closest("preprocesors", keys), Some("preprocessors"));
        assert_eq!(closest("postprocessor", keys), Some("postprocessors"));
        assert_eq!(closest("cdoec", keys), Some("codec"));
        assert_eq!(closest("timeout", keys), None);
        assert_eq!(closest("x", ["id"]), None, "one letter is no evidence");
        assert_eq!(
            did_you_mean("metronom", ["metronome", "tcp"]),
            "; did you mean `metronome`?"
        );
        assert_eq!(did_you_mean("kafka", ["metronome", "tcp"]), "");
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("Same", "same"), 1);
    }
}
