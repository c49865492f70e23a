//! Durations and sizes as people write them in flags, environment variables and the catalog:
//! `30s`, `5m`, `512MB`, `8GiB`.
//!
//! ```
//! use std::time::Duration;
//! use tessera_core::{parse_duration, parse_size};
//!
//! assert_eq!(parse_duration("500ms")?, Duration::from_millis(500));
//! assert_eq!(parse_duration("90")?, Duration::from_secs(90));
//! assert_eq!(parse_size("8GiB")?, 8 << 30);
//! assert_eq!(parse_size("1.5G")?, 1_500_000_000);
//! # Ok::<(), tessera_core::ParseUnitError>(())
//! ```

use std::time::Duration;

const DURATION_FORMS: &str = "expected a number with an optional unit ms, s, m or h \
(a bare number is seconds), for example 500ms, 30s, 5m, 1h or 0";

const SIZE_FORMS: &str = "expected a number with an optional unit B, K/KB, M/MB, G/GB, T/TB \
(powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case (a bare number is bytes), \
for example 512MB, 8GiB, 1.5G, 100KiB or 123";

/// At most this many characters of the text are repeated in an error.
const SHOWN: usize = 64;

/// Fraction digits past this many are below a nanosecond or a byte for every unit, so they are
/// checked but otherwise ignored (which also keeps the arithmetic inside `u128`).
const FRACTION_DIGITS: usize = 18;

/// The error for a duration or size that cannot be read; it says which forms are accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{given}`: {problem}; {accepted}")]
pub struct ParseUnitError {
    what: &'static str,
    given: String,
    problem: String,
    accepted: &'static str,
}

/// Reads a duration: a non-negative number (decimals allowed) followed by `ms`, `s`, `m` or `h`,
/// in any case, with optional space between; a bare number is seconds, so `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, ParseUnitError> {
    let fail = |problem: String| ParseUnitError {
        what: "duration",
        given: shown(text),
        problem,
        accepted: DURATION_FORMS,
    };
    let (number, unit) = split(text).map_err(&fail)?;
    const NANOS_PER_SECOND: u128 = 1_000_000_000;
    let scale: u128 = match unit.as_str() {
        "ms" => 1_000_000,
        "" | "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        _ => return Err(fail(format!("unknown unit `{}`", shown(&unit)))),
    };
    let nanos = scaled(number, scale).ok_or_else(|| fail("too large".into()))?;
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| fail("too large".into()))?;
    // The remainder is below 10^9, so it fits.
    let subsec = (nanos % NANOS_PER_SECOND) as u32;
    Ok(Duration::new(seconds, subsec))
}

/// Reads a size in bytes: a non-negative number (decimals allowed) followed by an optional unit,
/// in any case, with optional space between. `K`, `KB`, `M`, `MB`, `G`, `GB`, `T`, `TB` are powers
/// of 1000; `KiB`, `MiB`, `GiB`, `TiB` powers of 1024; `B` or no unit is bytes. A fraction of a
/// byte is dropped (`1.5` is 1 byte).
pub fn parse_size(text: &str) -> Result<u64, ParseUnitError> {
    let fail = |problem: String| ParseUnitError {
        what: "size",
        given: shown(text),
        problem,
        accepted: SIZE_FORMS,
    };
    let (number, unit) = split(text).map_err(&fail)?;
    let scale: u128 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(fail(format!("unknown unit `{}`", shown(&unit)))),
    };
    let bytes = scaled(number, scale).ok_or_else(|| fail("too large".into()))?;
    u64::try_from(bytes).map_err(|_| fail("too large".into()))
}

/// Writes a duration so that [`parse_duration`] reads it back exactly: `0`, `2h`, `5m`, `30s`,
/// `500ms`, else decimal seconds such as `1.5s` or `0.000001s`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    const MS: u128 = 1_000_000;
    const S: u128 = 1_000 * MS;
    if nanos == 0 {
        "0".to_string()
    } else if nanos.is_multiple_of(3_600 * S) {
        format!("{}h", nanos / (3_600 * S))
    } else if nanos.is_multiple_of(60 * S) {
        format!("{}m", nanos / (60 * S))
    } else if nanos.is_multiple_of(S) {
        format!("{}s", nanos / S)
    } else if nanos.is_multiple_of(MS) {
        format!("{}ms", nanos / MS)
    } else {
        let fraction = format!("{:09}", nanos % S);
        format!("{}.{}s", nanos / S, fraction.trim_end_matches('0'))
    }
}

/// The number and the lowercased unit of `text`, or what is wrong with it.
fn split(text: &str) -> Result<(&str, String), String> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return Err(if text.is_empty() {
            "it is empty".to_string()
        } else if text.starts_with('-') {
            "it is negative".to_string()
        } else {
            "it does not start with a number".to_string()
        });
    }
    Ok((number, unit.trim_start().to_ascii_lowercase()))
}

/// `number` (digits with at most one `.`) times `scale`, rounded down; `None` past `u128`.
fn scaled(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let mut value: u128 = 0;
    for digit in whole.bytes() {
        value = value
            .checked_mul(10)?
            .checked_add(u128::from(digit - b'0'))?;
    }
    let mut value = value.checked_mul(scale)?;
    let fraction = &fraction[..fraction.len().min(FRACTION_DIGITS)];
    if !fraction.is_empty() {
        let mut numerator: u128 = 0;
        for digit in fraction.bytes() {
            numerator = numerator * 10 + u128::from(digit - b'0');
        }
        let denominator = 10u128.pow(fraction.len() as u32);
        value = value.checked_add(numerator * scale / denominator)?;
    }
    Some(value)
}

/// At most [`SHOWN`] characters of `text`, with `…` when cut.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_accepted_form() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3_600)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("90", Duration::from_secs(90)),
            (" 2 H ", Duration::from_secs(7_200)),
            ("1.5s", Duration::from_millis(1_500)),
            ("0.25h", Duration::from_secs(900)),
            ("1.5ms", Duration::from_micros(1_500)),
            (".5s", Duration::from_millis(500)),
            ("10MS", Duration::from_millis(10)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_durations_say_what_is_accepted() {
        for text in ["", "s", "-5s", "5 d", "1.2.3s", "5sec", "abc", "1e3"] {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.starts_with("invalid duration"), "{text}: {err}");
            assert!(err.contains("500ms, 30s, 5m, 1h or 0"), "{text}: {err}");
        }
        let err = parse_duration("5d").unwrap_err().to_string();
        assert!(err.contains("unknown unit `d`"), "{err}");
        let err = parse_duration("99999999999999999999999h")
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large"), "{err}");
        let err = parse_duration(&"9".repeat(100_000))
            .unwrap_err()
            .to_string();
        assert!(err.contains("too large") && err.len() < 400, "{err}");
    }

    #[test]
    fn sizes_in_every_accepted_form() {
        let cases = [
            ("123", 123),
            ("123B", 123),
            ("512MB", 512_000_000),
            ("512mb", 512_000_000),
            ("8GiB", 8 << 30),
            ("8gib", 8 << 30),
            ("1.5G", 1_500_000_000),
            ("1.5GB", 1_500_000_000),
            ("100KiB", 102_400),
            ("2k", 2_000),
            ("1 TiB", 1 << 40),
            ("3T", 3_000_000_000_000),
            ("1.5GiB", 1_610_612_736),
            ("0", 0),
            ("1.5", 1),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_sizes_say_what_is_accepted() {
        for text in ["", "GB", "-1G", "1.2.3G", "12 bytes", "5PB", "1e9"] {
            let err = parse_size(text).unwrap_err().to_string();
            assert!(err.starts_with("invalid size"), "{text}: {err}");
            assert!(
                err.contains("8GiB") && err.contains("1024"),
                "{text}: {err}"
            );
        }
        let err = parse_size("20000000TB").unwrap_err().to_string();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn formatted_durations_read_back_exactly() {
        let cases = [
            (Duration::ZERO, "0"),
            (Duration::from_secs(7_200), "2h"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1_500), "1500ms"),
            (Duration::from_micros(1_500), "0.0015s"),
            (Duration::new(3, 1), "3.000000001s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration), "{text}");
        }
    }
}
