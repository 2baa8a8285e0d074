//! Where in a connector's config a problem is, as the plugin reported it.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSegment {
    /// A key of a table (any string: it may contain `.`, `[` or spaces).
    Key(String),
    /// An index into an array.
    Index(usize),
}

/// The path from a connector's `config` table down to the offending field: keys and
/// indices, as structured segments (they cross the plugin boundary as a JSON array, so a
/// key holding `.` or `[` is never split).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<FieldSegment>);

impl FieldPath {
    /// Whether it names the config table itself.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The path as a plugin reports it: a JSON array of keys (strings) and indices
    /// (integers), empty for the config table itself. Anything else is kept as one key
    /// holding the text, so that nothing the plugin said is lost.
    pub(crate) fn from_json(text: &str) -> Self {
        if text.is_empty() {
            return Self::default();
        }
        let segments = serde_json::from_str::<Vec<serde_json::Value>>(text)
            .ok()
            .and_then(|items| {
                items
                    .into_iter()
                    .map(|item| match item {
                        serde_json::Value::String(key) => Some(FieldSegment::Key(key)),
                        serde_json::Value::Number(n) => n
                            .as_u64()
                            .and_then(|i| usize::try_from(i).ok())
                            .map(FieldSegment::Index),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
            });
        Self(segments.unwrap_or_else(|| vec![FieldSegment::Key(text.to_owned())]))
    }
}

impl FieldPath {
    /// The path as [`from_json`](Self::from_json) reads it.
    pub(crate) fn to_json(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let items: Vec<serde_json::Value> = self
            .0
            .iter()
            .map(|segment| match segment {
                FieldSegment::Key(key) => serde_json::Value::String(key.clone()),
                FieldSegment::Index(index) => serde_json::Value::from(*index),
            })
            .collect();
        serde_json::Value::Array(items).to_string()
    }
}

/// `a.b[2].c`; a key that is not a plain name is quoted as in TOML: `a."x.y"`.
impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                FieldSegment::Index(index) => write!(f, "[{index}]")?,
                FieldSegment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_dots_and_brackets_stay_whole() {
        let path = FieldPath::from_json(r#"["routes","a.b[0]",2,"port"]"#);
        assert_eq!(
            path.0,
            [
                FieldSegment::Key("routes".into()),
                FieldSegment::Key("a.b[0]".into()),
                FieldSegment::Index(2),
                FieldSegment::Key("port".into()),
            ]
        );
        assert_eq!(path.to_string(), r#"routes."a.b[0]"[2].port"#);
    }

    #[test]
    fn empty_and_garbage_paths() {
        assert!(FieldPath::from_json("").is_empty());
        assert_eq!(
            FieldPath::from_json("not json").0,
            [FieldSegment::Key("not json".into())]
        );
        assert_eq!(
            FieldPath::from_json("[-1]").0,
            [FieldSegment::Key("[-1]".into())]
        );
    }
}
