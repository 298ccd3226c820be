//! Plain aligned columns, as `kubectl get` prints them: a header row, two spaces between
//! columns, no borders, the last column unpadded.

/// Renders `header` and `rows` as aligned columns, one line each, every line ending in `\n`.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// An age as kubectl prints it: `42s`, `7m`, `3h`, `5d` (`<unknown>` for none).
pub fn age(seconds: Option<i64>) -> String {
    match seconds {
        None => "<unknown>".to_owned(),
        Some(s) if s < 0 => "0s".to_owned(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 2 * 3600 => format!("{}m", s / 60),
        Some(s) if s < 2 * 86_400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell_and_the_last_is_not_padded() {
        let out = render(
            &["NAME", "PHASE", "URL"],
            &[
                vec!["a".into(), "Ready".into(), "https://a".into()],
                vec!["longer-name".into(), "Failed".into(), "-".into()],
            ],
        );
        assert_eq!(
            out,
            "NAME         PHASE   URL\n\
             a            Ready   https://a\n\
             longer-name  Failed  -\n"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(None), "<unknown>");
        assert_eq!(age(Some(5)), "5s");
        assert_eq!(age(Some(119)), "119s");
        assert_eq!(age(Some(600)), "10m");
        assert_eq!(age(Some(3 * 3600)), "3h");
        assert_eq!(age(Some(3 * 86_400)), "3d");
    }
}
