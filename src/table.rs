//! Plain text tables for the terminal (drill summary, plan): columns stay aligned
//! whatever the length of a name, and the text is the same on a pipe as on a screen (no
//! colours, no borders, no wrapping to a guessed terminal width).

use comfy_table::{CellAlignment, Table, presets};

/// A borderless table with `header`; the columns in `right` (by index) are aligned to
/// the right, as figures read best.
pub(crate) fn table(header: &[&str], right: &[usize]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(header.to_vec());
    for &i in right {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// The table's lines, each after `indent` and without trailing blanks.
pub(crate) fn indented(table: &Table, indent: &str) -> String {
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(indent);
        // The style's own one-space padding would indent every line once more.
        out.push_str(line.strip_prefix(' ').unwrap_or(&line).trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_stay_aligned_for_long_names() {
        let mut t = table(&["workload", "rto"], &[1]);
        t.add_row(vec!["a-very-long-workload-name", "1ms"]);
        t.add_row(vec!["db", "12.5s"]);
        let text = indented(&t, "  ");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Right-aligned figures end in the same column.
        let ends: Vec<usize> = lines.iter().map(|l| l.len()).collect();
        assert!(ends.iter().all(|&e| e == ends[0]), "{text}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("  ") && !l.starts_with("   "))
        );
        assert!(!text.contains('\u{1b}'), "no colour codes: {text:?}");
    }
}
