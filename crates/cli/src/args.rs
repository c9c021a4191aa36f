//! Consul's Go `flag` package accepts `-name value`, `-name=value`,
//! `--name value` and `--name=value`. clap only knows the double-dash
//! forms for long flags, so single-dash long flags are rewritten before
//! parsing.

use std::ffi::OsString;

/// Rewrites `-name[=value]` into `--name[=value]` for every argument whose
/// name is longer than one character, so clap sees long flags.
///
/// Left alone: `-x` (a short flag), `--name`, negative numbers (`-5`), a bare
/// `-`, and everything after a literal `--`.
pub(crate) fn normalize<I>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    let mut out = Vec::new();
    let mut passthrough = false;
    for (index, arg) in args.into_iter().enumerate() {
        if index == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        out.push(match arg.to_str() {
            Some(text) if is_single_dash_long(text) => OsString::from(format!("-{text}")),
            _ => arg,
        });
    }
    out
}

fn is_single_dash_long(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('-') else { return false };
    let name = rest.split('=').next().unwrap_or_default();
    !rest.starts_with('-')
        && name.chars().count() > 1
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(norm(&["bin", "keygen", "-bytes=16"]), ["bin", "keygen", "--bytes=16"]);
        assert_eq!(norm(&["bin", "keygen", "-bytes", "16"]), ["bin", "keygen", "--bytes", "16"]);
    }

    #[test]
    fn short_flags_double_dash_and_numbers_are_left_alone() {
        assert_eq!(
            norm(&["bin", "-h", "--bytes", "16", "-5", "-", "x"]),
            ["bin", "-h", "--bytes", "16", "-5", "-", "x"]
        );
    }

    #[test]
    fn everything_after_double_dash_passes_through() {
        assert_eq!(
            norm(&["bin", "validate", "--", "-odd-name"]),
            ["bin", "validate", "--", "-odd-name"]
        );
    }
}
