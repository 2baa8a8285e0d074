//! Plain-text tables for the terminal.

/// The lines of a table: every column padded to its widest cell but the last, which is
/// left as it is (it holds long text: a path, a reason).
pub(crate) fn lines<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let header = header.map(str::to_owned);
    let widths: Vec<usize> = (0..N.saturating_sub(1))
        .map(|c| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    [&header]
        .into_iter()
        .chain(rows)
        .map(|row| {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            line.push_str(row.last().map_or("", String::as_str));
            line
        })
        .collect()
}
