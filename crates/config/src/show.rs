//! Rendering the provenance table for `consul-sec validate -show`.

use std::fmt::Write as _;

use crate::resolve::Provenance;

/// Groups by section, one aligned line per setting:
/// `  key   value   <- origin (note)`.
pub(crate) fn render(rows: &[Provenance]) -> String {
    let key_width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|r| r.value.chars().count()).max().unwrap_or(0).min(40);
    let mut out = String::new();
    let mut section = "";
    for row in rows {
        if row.section != section {
            if !section.is_empty() {
                out.push('\n');
            }
            section = row.section;
            let _ = writeln!(out, "{section}:");
        }
        let note = row.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {key:<key_width$}  {value:<value_width$}  <- {origin}{note}",
            key = row.key,
            value = row.value,
            origin = row.origin,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Origin;

    #[test]
    fn rows_are_grouped_and_aligned() {
        let rows = [
            Provenance {
                section: "A",
                key: "k".into(),
                value: "v".into(),
                origin: Origin::Default,
                note: None,
            },
            Provenance {
                section: "A",
                key: "long_key".into(),
                value: "value".into(),
                origin: Origin::Env("CONSUL_SEC_X".into()),
                note: Some("n".into()),
            },
            Provenance {
                section: "B",
                key: "k".into(),
                value: "v".into(),
                origin: Origin::Flag("-x".into()),
                note: None,
            },
        ];
        assert_eq!(
            render(&rows),
            "A:\n  k         v      <- default\n  long_key  value  <- environment variable CONSUL_SEC_X (n)\n\nB:\n  k         v      <- flag -x\n"
        );
    }
}
