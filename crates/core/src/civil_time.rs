//! Conversions between Unix time and UTC calendar dates (`2026-11-27T10:16:45Z`), without a
//! time-zone library: ACS3 signatures carry such dates, the CLI prints them, and the usage
//! and billing views take their time ranges as days (`2026-11-27`) or RFC 3339 times.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = if shifted >= 0 { shifted } else { shifted - 146_096 } / 146_097;
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How many days `month` (1 to 12) of `year` has.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` into Unix seconds. A day the month does not have
/// (`2026-02-31`) is refused, not carried into the next month.
pub fn parse_utc_timestamp(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
        || bytes[19] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &text[range];
        if part.bytes().all(|byte| byte.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc_timestamp(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let seconds_of_day = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", seconds_of_day / 3600, seconds_of_day % 3600 / 60, seconds_of_day % 60)
}

/// Formats Unix seconds as an HTTP date (IMF-fixdate, `Fri, 04 Dec 2026 15:40:00 GMT`): the
/// `Date` header of answers written without hyper.
pub fn format_http_date(unix_seconds: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_seconds.div_euclid(86_400);
    let seconds_of_day = unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60,
        seconds_of_day % 60
    )
}

/// Parses a day `YYYY-MM-DD` (UTC) into the Unix seconds of its start. A day the month does
/// not have (`2026-02-30`) is refused, not carried into the next month.
pub fn parse_utc_date(text: &str) -> Option<i64> {
    if text.len() != 10 {
        return None;
    }
    let start = parse_utc_timestamp(&format!("{text}T00:00:00Z"))?;
    (format_utc_timestamp(start).get(..10) == Some(text)).then_some(start)
}

/// Two ASCII digits as a number.
fn two_digits(bytes: &[u8]) -> Option<i64> {
    match bytes {
        [tens @ b'0'..=b'9', ones @ b'0'..=b'9'] => Some(i64::from(tens - b'0') * 10 + i64::from(ones - b'0')),
        _ => None,
    }
}

/// Parses an RFC 3339 date-time (`2026-11-27T10:16:45Z`, `2026-11-27T18:16:45.250+08:00`;
/// `T` and `Z` in either case) into Unix seconds. A fraction of a second is dropped.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !text.is_ascii() || !matches!(bytes[10], b'T' | b't') || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let day_start = parse_utc_date(&text[..10])?;
    let (hour, minute, second) = (two_digits(&bytes[11..13])?, two_digits(&bytes[14..16])?, two_digits(&bytes[17..19])?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut offset = &bytes[19..];
    if let Some(fraction) = offset.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|byte| byte.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        offset = &fraction[digits..];
    }
    let offset_seconds = match offset {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), hours @ .., b':', _, _] if hours.len() == 2 => {
            let (offset_hours, offset_minutes) = (two_digits(hours)?, two_digits(&offset[4..6])?);
            if offset_hours > 23 || offset_minutes > 59 {
                return None;
            }
            let magnitude = offset_hours * 3600 + offset_minutes * 60;
            if *sign == b'-' {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    };
    Some(day_start + hour * 3600 + minute * 60 + second - offset_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_name_the_weekday_and_month() {
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        let leap_day = parse_utc_timestamp("2028-02-29T23:59:59Z").unwrap();
        assert_eq!(format_http_date(leap_day), "Tue, 29 Feb 2028 23:59:59 GMT");
    }

    #[test]
    fn round_trips_known_dates() {
        assert_eq!(parse_utc_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc_timestamp("2026-11-27T10:16:45Z"), Some(1_795_774_605));
        assert_eq!(format_utc_timestamp(1_795_774_605), "2026-11-27T10:16:45Z");
        assert_eq!(format_utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_days_and_rfc3339_times() {
        assert_eq!(parse_utc_date("2026-11-27"), Some(1_795_737_600));
        for bad in ["2026-02-30", "2026-2-01", "2026-11-27T00:00:00Z", ""] {
            assert_eq!(parse_utc_date(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339("2026-11-27T10:16:45Z"), Some(1_795_774_605));
        assert_eq!(parse_rfc3339("2026-11-27t10:16:45.999z"), Some(1_795_774_605));
        assert_eq!(parse_rfc3339("2026-11-27T18:16:45+08:00"), Some(1_795_774_605));
        assert_eq!(parse_rfc3339("2026-11-27T05:46:45.5-04:30"), Some(1_795_774_605));
        for bad in [
            "2026-11-27",
            "2026-11-27T10:16:45",
            "2026-11-27 10:16:45Z",
            "2026-11-27T10:16:45.Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T10:16:45+0800",
            "2026-11-27T10:16:45+24:00",
            "2026-02-30T10:16:45Z",
            "2026-11-27T10:16:45Zjunk",
            "2026-11-27T1O:16:45Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in ["2026-11-27 10:16:45Z", "2026-11-27T10:16:45", "2026-13-01T00:00:00Z", "abcd-11-27T10:16:45Z"] {
            assert_eq!(parse_utc_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_day_the_month_does_not_have_is_refused() {
        for bad in ["2026-02-31T00:00:00Z", "2026-02-29T12:00:00Z", "2026-04-31T00:00:00Z", "1900-02-29T00:00:00Z"] {
            assert_eq!(parse_utc_timestamp(bad), None, "{bad}");
        }
        for good in ["2028-02-29T12:00:00Z", "2000-02-29T00:00:00Z", "2026-01-31T23:59:59Z", "2026-12-31T00:00:00Z"] {
            let seconds = parse_utc_timestamp(good).unwrap_or_else(|| panic!("{good}"));
            assert_eq!(format_utc_timestamp(seconds), good);
        }
    }
}

/// The first second (UTC) of the month that `unix_seconds` falls in: usage grouped by month.
pub fn month_start(unix_seconds: i64) -> i64 {
    let (year, month, _) = civil_from_days(unix_seconds.div_euclid(86_400));
    days_from_civil(year, month, 1) * 86_400
}

#[cfg(test)]
mod month_tests {
    #[test]
    fn month_start_is_the_first_of_the_month() {
        // 2026-08-31T23:59:59Z and 2026-08-01T00:00:00Z
        assert_eq!(super::month_start(1_788_220_799), 1_785_542_400);
        assert_eq!(super::month_start(1_785_542_400), 1_785_542_400);
        assert_eq!(super::format_utc_timestamp(super::month_start(1_788_220_799)), "2026-08-01T00:00:00Z");
    }
}
