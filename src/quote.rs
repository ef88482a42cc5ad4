//! Quoting for every language waymark generates: POSIX shell words (what a step log
//! shows and every command a hint tells an operator to type), and for the windows
//! driver PowerShell single-quoted literals, T-SQL `N'...'` literals and
//! `[identifiers]`, and URL path segments. The redactor uses the same functions to
//! recognise a secret in any of these forms. It depends on nothing else in waymark.
//!
//! Every value that reaches a generated script goes through one of these, so a host name
//! or parameter holding quotes, `;`, `$(...)`, backticks or newlines stays data and can
//! never change the command (ITMS.md, "Facts for the real driver").

/// The characters PowerShell accepts as a single quote: ASCII `'` and the typographic
/// variants ‘ ’ ‚ ‛ (a pasted "smart quote" would otherwise end the literal).
pub(crate) const PS_SINGLE_QUOTES: [char; 5] =
    ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// A PowerShell single-quoted string literal holding exactly `s`.
///
/// Inside `'...'` PowerShell expands nothing (`$`, backtick, `;` are plain text) and a
/// doubled quote character stands for one, so doubling every quote variant is enough.
pub(crate) fn ps(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if PS_SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A PowerShell array literal `@('a', 'b')` of quoted strings.
pub(crate) fn ps_array(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| ps(s)).collect();
    format!("@({})", inner.join(", "))
}

/// A T-SQL Unicode string literal `N'...'` holding exactly `s` (quotes doubled).
pub(crate) fn tsql_str(s: &str) -> String {
    format!("N'{}'", s.replace('\'', "''"))
}

/// A T-SQL bracketed identifier `[...]` holding exactly `s` (`]` doubled), as QUOTENAME does.
pub(crate) fn tsql_ident(s: &str) -> String {
    format!("[{}]", s.replace(']', "]]"))
}

/// A URL path segment: everything but RFC 3986 unreserved characters percent-encoded (UTF-8).
pub(crate) fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Check a Windows path argument: characters Windows forbids in paths (`"`, `<`, `>`,
/// `|`, `?`, `*`, control characters) are refused, because no real path holds them and
/// `"` would be re-split by native argument passing on its way to `sqlcmd.exe`.
pub(crate) fn check_windows_path(arg: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("argument `{arg}` is empty"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '<' | '>' | '|' | '?' | '*'))
    {
        return Err(format!(
            "argument `{arg}` ({}) contains {c:?}, which a Windows path cannot hold",
            value.escape_debug()
        ));
    }
    Ok(())
}

/// Check a free-text argument bound for a native command line (`sqlcmd -Q`): no control
/// characters and no `"` (see [`check_windows_path`]).
pub(crate) fn check_plain_text(arg: &str, value: &str) -> Result<(), String> {
    if let Some(c) = value.chars().find(|c| c.is_control() || *c == '"') {
        return Err(format!(
            "argument `{arg}` ({}) contains {c:?}, which cannot be passed safely to sqlcmd",
            value.escape_debug()
        ));
    }
    Ok(())
}

/// The inside of bash's `$'...'` form of `word`: control characters, `\\` and `'`
/// escaped. Shared with the redactor, which must recognise a secret written this way.
pub(crate) fn ansi_c_body(word: &str) -> String {
    let mut out = String::new();
    for c in word.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `word` as one POSIX shell word, quoted only when it needs it.
///
/// Control characters (a multi-line script) use bash's `$'...'` form so the result
/// stays on one line.
pub(crate) fn sh(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,/:@%+=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    if word.chars().any(char::is_control) {
        return format!("$'{}'", ansi_c_body(word));
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Strings an attacker (or an unlucky copy-paste) could put in a host name or parameter.
    pub(crate) const HOSTILE: &[&str] = &[
        "",
        "'",
        "''",
        "it's",
        "'; Remove-Item C:\\ -Recurse; '",
        "$(Invoke-Expression 'calc')",
        "`whoami`",
        "a`'b",
        "\u{2018}smart\u{2019} \u{201A}low\u{201B}",
        "'\u{2019}",
        "x\ny\r\nz",
        "semi;colon & pipe | amp",
        "]; DROP DATABASE [Symantec_CMDB]; --",
        "N'); SHUTDOWN WITH NOWAIT; --",
        "\"double\" \u{201C}curly\u{201D}",
        "trailing backslash\\",
        "percent%20 and / slash ? query # hash",
        "emoji 🦀 and NUL \0",
    ];

    /// Parse a PowerShell single-quoted literal at the start of `s` the way the
    /// PowerShell tokenizer does; returns the value and the unparsed rest.
    fn ps_unquote(s: &str) -> Option<(String, &str)> {
        let mut it = s.char_indices().peekable();
        let (_, first) = it.next()?;
        if !PS_SINGLE_QUOTES.contains(&first) {
            return None;
        }
        let mut out = String::new();
        while let Some((i, c)) = it.next() {
            if PS_SINGLE_QUOTES.contains(&c) {
                match it.peek() {
                    Some((_, n)) if PS_SINGLE_QUOTES.contains(n) => {
                        let (_, n) = it.next()?;
                        out.push(n);
                    }
                    _ => return Some((out, &s[i + c.len_utf8()..])),
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    /// Parse a T-SQL `N'...'` literal at the start of `s`.
    fn tsql_unquote(s: &str) -> Option<(String, &str)> {
        let body = s.strip_prefix("N'")?;
        let mut out = String::new();
        let mut it = body.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c == '\'' {
                if let Some((_, '\'')) = it.peek() {
                    it.next();
                    out.push('\'');
                } else {
                    return Some((out, &body[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    fn ident_unquote(s: &str) -> Option<(String, &str)> {
        let body = s.strip_prefix('[')?;
        let mut out = String::new();
        let mut it = body.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c == ']' {
                if let Some((_, ']')) = it.peek() {
                    it.next();
                    out.push(']');
                } else {
                    return Some((out, &body[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    #[test]
    fn powershell_literals_round_trip_and_end_where_they_should() {
        for h in HOSTILE {
            let q = ps(h);
            // Followed by more script text, the literal must still end exactly at its end.
            let script = format!("{q}; Write-Output done");
            let (v, rest) = ps_unquote(&script).unwrap_or_else(|| panic!("unterminated: {q}"));
            assert_eq!(&v, h, "round trip of {h:?}");
            assert_eq!(rest, "; Write-Output done", "literal of {h:?} leaked");
        }
    }

    #[test]
    fn powershell_quotes_double_every_variant() {
        assert_eq!(ps("it's"), "'it''s'");
        assert_eq!(ps("\u{2019}"), "'\u{2019}\u{2019}'");
        assert_eq!(ps("$(x) `y`"), "'$(x) `y`'");
        assert_eq!(ps_array(&["a".into(), "b'".into()]), "@('a', 'b''')");
    }

    #[test]
    fn tsql_literals_and_identifiers_round_trip() {
        for h in HOSTILE {
            let lit = format!("{} AND 1=1", tsql_str(h));
            let (v, rest) = tsql_unquote(&lit).unwrap();
            assert_eq!(&v, h);
            assert_eq!(rest, " AND 1=1");
            let id = format!("{}.[dbo]", tsql_ident(h));
            let (v, rest) = ident_unquote(&id).unwrap();
            assert_eq!(&v, h);
            assert_eq!(rest, ".[dbo]");
        }
    }

    #[test]
    fn tsql_inside_powershell_survives_both_layers() {
        for h in HOSTILE {
            let tsql = format!("BACKUP DATABASE [x] TO DISK = {}", tsql_str(h));
            let script = format!("$query = {}\n", ps(&tsql));
            let (v, rest) = ps_unquote(&script["$query = ".len()..]).unwrap();
            assert_eq!(v, tsql);
            assert_eq!(rest, "\n");
        }
    }

    #[test]
    fn url_segments_hold_only_unreserved_characters() {
        for h in HOSTILE {
            let s = url_segment(h);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                "{s}"
            );
            // Decoding gives the original bytes back.
            let mut bytes = Vec::new();
            let mut i = 0;
            let sb = s.as_bytes();
            while i < sb.len() {
                if sb[i] == b'%' {
                    let hex = std::str::from_utf8(&sb[i + 1..i + 3]).unwrap();
                    bytes.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    bytes.push(sb[i]);
                    i += 1;
                }
            }
            assert_eq!(String::from_utf8(bytes).unwrap(), *h);
        }
        assert_eq!(url_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn paths_windows_cannot_hold_are_refused() {
        assert!(check_windows_path("dest", "D:\\Backups\\O'Brien; $(x) `y`").is_ok());
        for bad in ["D:\\a\"b", "D:\\a\nb", "D:\\a|b", "", "D:\\a*"] {
            assert!(check_windows_path("dest", bad).is_err(), "{bad:?}");
        }
        assert!(check_plain_text("group", "Upgrade Test Group").is_ok());
        assert!(check_plain_text("group", "a\"b").is_err());
    }
}
