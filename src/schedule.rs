//! Cron schedules of the daemon's drills: parsed once from the config, and asked only
//! one question — when is the next run after `now` — as a pure function of `now`.
//!
//! Expressions are read in UTC (a drill at "03:00" should not move with daylight
//! saving) with five fields, or six with seconds first (test-sized schedules such as
//! `*/5 * * * * *`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    text: String,
}

impl Schedule {
    /// Parses `text`; the error says what is wrong with it, for `lifeboat validate`.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(text)
            .map_err(|e| format!("{text:?} is not a cron expression: {e}"))?;
        Ok(Schedule {
            cron,
            text: text.to_owned(),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time strictly after `now` that the schedule names, or `None` when it
    /// names none (a date that never comes, such as February 30).
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        let zoned = now.to_zoned(TimeZone::UTC);
        self.cron
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// Two schedules are the same when they are written the same.
impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.text == other.text
    }
}

impl Eq for Schedule {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn five_fields_are_minutes_in_utc() {
        let weekly = Schedule::parse("0 3 * * MON").unwrap();
        assert_eq!(
            weekly.next_after(at("2026-12-02T04:00:00Z")),
            Some(at("2026-12-07T03:00:00Z"))
        );
    }

    #[test]
    fn six_fields_start_with_seconds() {
        let often = Schedule::parse("*/5 * * * * *").unwrap();
        assert_eq!(
            often.next_after(at("2026-12-02T04:00:02Z")),
            Some(at("2026-12-02T04:00:05Z"))
        );
    }

    #[test]
    fn nonsense_is_refused_with_the_text() {
        for bad in ["", "every day", "61 * * * *", "* * * *"] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    proptest! {
        /// The next run is always later than now, and never more than a minute away
        /// for an every-minute schedule.
        #[test]
        fn next_is_strictly_later(secs in 0i64..4_000_000_000) {
            let now = Timestamp::from_second(secs).unwrap();
            let next = Schedule::parse("* * * * *").unwrap().next_after(now).unwrap();
            prop_assert!(next > now);
            prop_assert!(next.duration_since(now).as_secs() <= 60);
        }
    }
}
