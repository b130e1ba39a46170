//! The one grammar and the ranges of the values a caller gives: durations, counts,
//! fractions, side suffixes, tags. [`SwitchRequest::validate`](super::SwitchRequest::validate)
//! and the CLI's argument parsers both check through these, so a value refused in one is
//! refused in the other, with the same reason.

use std::time::Duration;

use super::error::{Error, Result};

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The allowed range of one duration option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// The shortest value accepted.
    pub min: Duration,
    /// The longest value accepted.
    pub max: Duration,
}

impl DurationRange {
    /// Timeouts of one request and latency bounds: more than zero, at most an hour.
    pub const REQUEST: DurationRange = DurationRange {
        min: Duration::from_millis(1),
        max: HOUR,
    };
    /// Waits of a run (verification time, convergence, data-plane timeout): more than zero,
    /// at most a day.
    pub const WAIT: DurationRange = DurationRange {
        min: Duration::from_millis(1),
        max: DAY,
    };
    /// The time waited after each step of a weight shift: zero to a week.
    pub const BAKE: DurationRange = DurationRange {
        min: Duration::ZERO,
        max: Duration::from_secs(7 * 24 * 3600),
    };
    /// How long restored values must be seen to hold after a write of unknown outcome:
    /// zero to an hour.
    pub const SETTLE: DurationRange = DurationRange {
        min: Duration::ZERO,
        max: HOUR,
    };
    /// How long a lease lasts: a second to a week.
    pub const LEASE: DurationRange = DurationRange {
        min: SECOND,
        max: Duration::from_secs(7 * 24 * 3600),
    };

    /// `value` if it lies in the range, else why not (for `field`).
    pub fn check(self, field: &'static str, value: Duration) -> Result<Duration> {
        if value < self.min {
            let message = if self.min == Duration::from_millis(1) {
                format!(
                    "{} is too short: it must be more than 0, e.g. 30s",
                    show(value)
                )
            } else {
                format!(
                    "{} is too short: the least is {}",
                    show(value),
                    show(self.min)
                )
            };
            return Err(Error::invalid(field, message));
        }
        if value > self.max {
            return Err(Error::invalid(
                field,
                format!(
                    "{} is too long: the most is {}",
                    show(value),
                    show(self.max)
                ),
            ));
        }
        Ok(value)
    }

    /// Parses `text` with [`parse_duration`] and checks it lies in the range.
    pub fn parse(self, field: &'static str, text: &str) -> Result<Duration> {
        self.check(field, parse_bounded(field, text, self.max)?)
    }
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The longest duration [`parse_duration`] reads (about 10 years): anything longer is a
/// typo, and would overflow clocks and timers.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Parses a duration, the one grammar of every duration option: a humantime duration
/// (`30s`, `500ms`, `1m30s`, `1h 30m`, `2d`) or a bare number of seconds (`1.5`).
///
/// Empty, negative, NaN, infinite and longer than [`MAX_DURATION`] values are refused,
/// with the reason and an example; the range of each option is checked by its
/// [`DurationRange`].
///
/// ```
/// use std::time::Duration;
/// use kong_switch_core::switch::parse_duration;
///
/// assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
/// assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
/// assert!(parse_duration("1e300").is_err());
/// assert!(parse_duration("-1").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration> {
    parse_bounded("duration", text, MAX_DURATION)
}

/// [`parse_duration`] refusing values longer than `max` (at most [`MAX_DURATION`]).
fn parse_bounded(field: &'static str, text: &str, max: Duration) -> Result<Duration> {
    let max = max.min(MAX_DURATION);
    let value = text.trim();
    let invalid =
        |why: String| Error::invalid(field, format!("{why}; write e.g. 30s, 500ms, 2m or 1h 30m"));
    if value.is_empty() {
        return Err(invalid("no duration given".to_owned()));
    }
    let parsed = match value.parse::<f64>() {
        Ok(secs) if secs.is_nan() || secs.is_infinite() => {
            return Err(invalid(format!("`{value}` is not a number of seconds")));
        }
        Ok(secs) if secs < 0.0 => {
            return Err(invalid(format!("`{value}` is negative")));
        }
        Ok(secs) if secs > max.as_secs_f64() => {
            return Err(invalid(format!(
                "`{value}` seconds is too long (the most is {})",
                show(max)
            )));
        }
        Ok(secs) => Duration::from_secs_f64(secs),
        Err(_) => humantime::parse_duration(value)
            .map_err(|e| invalid(format!("`{value}` is not a duration ({e})")))?,
    };
    if parsed > max {
        return Err(invalid(format!(
            "`{value}` is too long (the most is {})",
            show(max)
        )));
    }
    Ok(parsed)
}

/// The most requests per probe URL.
pub const MAX_PROBE_COUNT: u32 = 1_000;
/// The most verification requests.
pub const MAX_VERIFY_COUNT: u32 = 1_000_000;
/// The most services switched or restored at once.
pub const MAX_PARALLELISM: usize = 1_000;

/// `value` if it lies in `min..=max`, else why not (for `field`).
pub fn check_count<T>(field: &'static str, value: T, min: T, max: T) -> Result<T>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min {
        return Err(Error::invalid(
            field,
            format!("{value} is too small: it must be at least {min}"),
        ));
    }
    if value > max {
        return Err(Error::invalid(
            field,
            format!("{value} is too large: it must be at most {max}"),
        ));
    }
    Ok(value)
}

/// `value` if it is a fraction in `0.0..=1.0` (not NaN), else why not (for `field`).
pub fn check_fraction(field: &'static str, value: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&value) {
        return Err(Error::invalid(
            field,
            format!("{value} is not a fraction from 0.0 to 1.0; give e.g. 0.99 for 99%"),
        ));
    }
    Ok(value)
}

/// `url` if kong-switch can send HTTP requests to it: `http` or `https` with a host.
pub fn check_http_url(field: &'static str, url: &url::Url) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(
            field,
            format!("{url} is not an http(s) URL with a host; give e.g. http://kong:8000/orders"),
        ));
    }
    Ok(())
}

/// Whether `text` holds no whitespace or control character (and is not empty).
fn is_token(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `suffix` if it can name a side: not empty, no whitespace or control characters.
pub fn check_suffix(field: &'static str, suffix: &str) -> Result<()> {
    if suffix.is_empty() {
        return Err(Error::invalid(
            field,
            "the suffix is empty, so every name would match it; give one such as -blue or -green",
        ));
    }
    if !is_token(suffix) {
        return Err(Error::invalid(
            field,
            format!("{suffix:?} holds whitespace or control characters; give one such as -green"),
        ));
    }
    Ok(())
}

/// The blue and green suffixes tell the sides apart: neither ends with the other.
pub fn check_suffix_pair(blue: &str, green: &str) -> Result<()> {
    check_suffix("blue_suffix", blue)?;
    check_suffix("green_suffix", green)?;
    if blue == green {
        return Err(Error::invalid(
            "green_suffix",
            format!(
                "blue and green have the same suffix {green:?}, so the sides cannot be told apart; give each its own, e.g. --blue-suffix -blue --green-suffix -green"
            ),
        ));
    }
    if blue.ends_with(green) || green.ends_with(blue) {
        return Err(Error::invalid(
            "green_suffix",
            format!(
                "{blue:?} and {green:?} end alike, so a name ending with the longer one matches both sides; give suffixes neither of which ends with the other"
            ),
        ));
    }
    Ok(())
}

/// `key` if it can be a tag key: not empty, no whitespace, `,` or `=` (Kong tags cannot hold
/// whitespace or commas; `=` separates the key from the color).
pub fn check_tag_key(field: &'static str, key: &str) -> Result<()> {
    if !is_token(key) || key.contains(',') || key.contains('=') {
        return Err(Error::invalid(
            field,
            format!(
                "{key:?} cannot be a tag key: give a non-empty key without spaces, `,` or `=`, e.g. kong-switch.color"
            ),
        ));
    }
    Ok(())
}

/// `tag` if Kong can hold it: not empty, no whitespace or `,`.
pub fn check_tag(field: &'static str, tag: &str) -> Result<()> {
    if !is_token(tag) || tag.contains(',') {
        return Err(Error::invalid(
            field,
            format!(
                "{tag:?} cannot be a Kong tag: give a non-empty tag without spaces or `,`, e.g. app=orders"
            ),
        ));
    }
    Ok(())
}

/// `label` if it can be recorded: not blank, no control characters (a newline would forge
/// lines in text output).
pub fn check_label(field: &'static str, label: &str) -> Result<()> {
    if label.trim().is_empty() {
        return Err(Error::invalid(
            field,
            "the value is empty; leave the option out instead",
        ));
    }
    if label.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{label:?} holds control characters (newlines, tabs); remove them"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_seconds() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("1.5", Duration::from_millis(1500)),
            ("250ms", Duration::from_millis(250)),
            ("1h 30m", Duration::from_secs(5400)),
            (" 0 ", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn durations_that_are_not_a_length_of_time_are_refused_with_the_reason() {
        for (text, needle) in [
            ("", "no duration"),
            ("soon", "not a duration"),
            ("-1", "negative"),
            ("-1s", "not a duration"),
            ("NaN", "not a number"),
            ("inf", "not a number"),
            ("1e300", "too long"),
            ("1e30", "too long"),
            ("100000y", "too long"),
        ] {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains("e.g. 30s"), "{text}: {err}");
        }
    }

    #[test]
    fn ranges_refuse_zero_and_absurd_values() {
        assert!(
            DurationRange::REQUEST
                .check("timeout", Duration::ZERO)
                .is_err()
        );
        assert!(
            DurationRange::REQUEST
                .check("timeout", Duration::from_secs(2 * 3600))
                .is_err()
        );
        assert!(DurationRange::BAKE.check("bake", Duration::ZERO).is_ok());
        assert!(
            DurationRange::LEASE
                .check("lease_ttl", Duration::from_millis(10))
                .unwrap_err()
                .to_string()
                .contains("the least is 1s")
        );
    }

    #[test]
    fn suffixes_must_tell_the_sides_apart() {
        assert!(check_suffix_pair("-blue", "-green").is_ok());
        for (blue, green) in [
            ("-blue", ""),
            ("", "-green"),
            ("-x", "-x"),
            ("-a", "b-a"),
            ("-b lue", "-green"),
        ] {
            assert!(
                check_suffix_pair(blue, green).is_err(),
                "{blue:?} {green:?}"
            );
        }
    }

    #[test]
    fn fractions_refuse_nan_and_out_of_range() {
        assert!(check_fraction("min_healthy", 0.5).is_ok());
        for v in [f64::NAN, f64::INFINITY, -0.1, 1.01] {
            assert!(check_fraction("min_healthy", v).is_err(), "{v}");
        }
    }
}
