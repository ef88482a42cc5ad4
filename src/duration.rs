//! Human durations used by runbooks and the command line: `"500ms"`, `"30s"`, `"1h30m"`.

use std::time::{Duration, Instant};

/// The longest duration waymark accepts anywhere (a year). Longer values are typos or
/// attacks, and adding them to a clock overflows: `"3000000000000000h"` used to parse
/// and then panic mid-run when a timeout deadline was computed.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 86400);

/// `now + d`, never panicking: a sum past what the clock can hold becomes the latest
/// deadline it can (`MAX_DURATION` from now, or failing that `now`).
pub(crate) fn deadline_from(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(MAX_DURATION))
        .unwrap_or(now)
}

/// [`deadline_from`] the current instant.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    deadline_from(Instant::now(), d)
}

/// Parse a duration made of one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`.
///
/// Returns a message fit for a diagnostic when the text is not a duration.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration: expected something like \"30s\", \"5m\" or \"1h30m\"".into());
    }
    let bad = || {
        format!("`{text}` is not a duration: expected something like \"500ms\", \"30s\", \"5m\", \"2h\" or \"1h30m\"")
    };
    let mut total = Duration::ZERO;
    let bytes = t.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(bad());
        }
        let n: u64 = t[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let part = match &t[ustart..i] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad)?,
            "h" => n
                .checked_mul(3600)
                .map(Duration::from_secs)
                .ok_or_else(bad)?,
            "d" => n
                .checked_mul(86400)
                .map(Duration::from_secs)
                .ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        if total > MAX_DURATION {
            return Err(format!(
                "`{text}` is longer than the longest duration waymark accepts ({})",
                format_duration(MAX_DURATION)
            ));
        }
    }
    Ok(total)
}

/// Render a duration the way [`parse_duration`] reads it (`1h30m`, `250ms`, `0s`).
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        if ms < 1000 {
            return format!("{ms}ms");
        }
        return format!("{:.1}s", d.as_secs_f64());
    }
    let mut s = (ms / 1000) as u64;
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "10",
            "s",
            "5 minutes",
            "1h30",
            "-5s",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn huge_duration_overflowed_instant_arithmetic() {
        let e = parse_duration("3000000000000000h").unwrap_err();
        assert!(e.contains("longest duration waymark accepts (365d)"), "{e}");
        assert!(parse_duration("366d").is_err());
        assert_eq!(parse_duration("365d").unwrap(), MAX_DURATION);
        let now = Instant::now();
        assert_eq!(deadline_from(now, Duration::MAX), now + MAX_DURATION);
    }

    #[test]
    fn formats_round_trip() {
        for s in ["1h30m", "250ms", "5s", "2d", "0s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
