//! Where things are in the pipeline file: line and column of an offset, and the spans of a
//! connector's config, to locate a field a plugin complains about.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use crate::field_path::{FieldPath, FieldSegment};

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The spans of a TOML value and of everything in it, to locate fields named by a path.
#[derive(Debug, Clone)]
pub(super) struct SpanTree {
    span: Range<usize>,
    children: SpanChildren,
}

#[derive(Debug, Clone)]
enum SpanChildren {
    Scalar,
    Table(Vec<(String, SpanTree)>),
    Array(Vec<SpanTree>),
}

impl SpanTree {
    pub(super) fn of(value: &Spanned<DeValue<'_>>) -> Self {
        let children = match value.get_ref() {
            DeValue::Table(table) => SpanChildren::Table(
                table
                    .iter()
                    .map(|(k, v)| (k.get_ref().to_string(), SpanTree::of(v)))
                    .collect(),
            ),
            DeValue::Array(items) => SpanChildren::Array(items.iter().map(SpanTree::of).collect()),
            _ => SpanChildren::Scalar,
        };
        Self {
            span: value.span(),
            children,
        }
    }

    /// The span of the deepest value along `path` that exists.
    pub(super) fn locate(&self, path: &FieldPath) -> Range<usize> {
        let mut current = self;
        for segment in &path.0 {
            let next = match (&current.children, segment) {
                (SpanChildren::Table(entries), FieldSegment::Key(key)) => {
                    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
                }
                (SpanChildren::Array(items), FieldSegment::Index(i)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(next) => current = next,
                None => break,
            }
        }
        current.span.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters() {
        let text = "a = 1\nb = \"é\" x";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, text.len()), (2, 10));
        assert_eq!(line_column(text, 1000), (2, 10));
    }

    #[test]
    fn a_key_with_dots_is_located_whole() {
        let doc = toml::de::DeTable::parse("[config]\n\"a.b\" = { c = [1, 2] }\n").unwrap();
        let config = doc.get_ref().iter().next().unwrap().1;
        let tree = SpanTree::of(config);
        let path = FieldPath::from_json(r#"["a.b","c",1]"#);
        let span = tree.locate(&path);
        assert_eq!(span.start, "[config]\n\"a.b\" = { c = [1, ".len());
        // A path that leaves the document stops at the deepest value that exists.
        let missing = FieldPath::from_json(r#"["a.b","nope"]"#);
        assert_eq!(tree.locate(&missing).start, "[config]\n\"a.b\" = ".len());
    }
}
