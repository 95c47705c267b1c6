//! Benchmark tools for Lookout (issue: "reach the numbers").
//!
//! * `loadgen` — opens N WebSocket clients spread over several loopback
//!   source addresses, holds them idle or reading, and measures each event's
//!   end-to-end latency (its `created_at`, the commit time, to the moment a
//!   client reads it; same machine, same clock) in an HdrHistogram per
//!   client, merged at the end. It counts messages, losses and duplicates
//!   per client by `seq`, answers pings, and can include clients that never
//!   read. Parsing is kept minimal: it shares the two cores with the server.
//! * `baseline` — the calibration: a minimal fan-out server (tokio +
//!   tungstenite; events generated in-process, serialised once, broadcast,
//!   fed then flushed per connection; no socket bridge, no database) that
//!   stands for what this machine's network stack allows.
//!
//! This library holds what both share: the event message shape and the
//! scanning of the two fields the load generator needs.

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Microseconds since the Unix epoch, now.
pub fn now_unix_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The integer after `"key":` in `text`, if present.
pub fn scan_i64(text: &str, key: &str) -> Option<i64> {
    let start = text.find(key)? + key.len();
    let digits = text[start..].bytes().take_while(|b| b.is_ascii_digit() || *b == b'-').count();
    text[start..start + digits].parse().ok()
}

/// Unix milliseconds of a fixed-format `"created_at":"2026-11-25T17:03:16.123Z"`.
pub fn scan_created_at_ms(text: &str) -> Option<i64> {
    const KEY: &str = "\"created_at\":\"";
    let start = text.find(KEY)? + KEY.len();
    parse_rfc3339_ms(text.get(start..start + 24)?)
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` (what Lookout writes) without
/// allocating.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        s.get(from..to)?.bytes().try_fold(0i64, |acc, d| d.is_ascii_digit().then(|| acc * 10 + (d - b'0') as i64))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli)
}

/// Formats Unix milliseconds as Lookout does.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Process CPU time (user + system) in seconds, from /proc.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_match_lookouts_format() {
        for ms in [0, 1_795_626_196_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms), "{ms}");
        }
        assert_eq!(format_rfc3339_ms(1_795_626_196_123), "2026-11-25T17:03:16.123Z");
        assert_eq!(parse_rfc3339_ms("2026-11-25T17:03:16Z"), None);
    }

    #[test]
    fn scans_the_two_fields() {
        let text = r#"{"type":"event","change":"new","data":{"seq":42,"created_at":"2026-11-25T17:03:16.123Z","updated_at":"2026-11-25T17:03:17.000Z"}}"#;
        assert_eq!(scan_i64(text, "\"seq\":"), Some(42));
        assert_eq!(scan_created_at_ms(text), Some(1_795_626_196_123));
        assert_eq!(scan_i64(r#"{"type":"ping"}"#, "\"seq\":"), None);
    }
}
