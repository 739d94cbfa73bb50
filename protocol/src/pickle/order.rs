//! Python's `<` for values the node keeps as their pickles (opaque values) and can still
//! order without running anything: ints beyond 128 bits, and `datetime`'s `date`, `time`,
//! `datetime` and `timedelta`, naive or with a fixed-offset `datetime.timezone` (what
//! `timezone.utc` is). They are recognised by the shape of their pickles, by name only;
//! nothing is resolved or called. Other tzinfo classes (`zoneinfo`, `pytz`) compute their
//! offsets in Python code, so values that carry them stay unordered.

use std::cmp::Ordering;

use super::{as_global, Limits, Pickle};

/// An opaque value the node can order, reduced to what Python compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    /// An int outside `i128` (so beyond every `i128`): little-endian two's complement,
    /// minimal, as [`Pickle::BigInt`] holds it.
    BigInt(Vec<u8>),
    /// `datetime.date`: days since 0001-01-01.
    Date(i64),
    /// `datetime.time`: microseconds since midnight, less the UTC offset when aware.
    Time { micros: i64, aware: bool },
    /// `datetime.datetime`: microseconds since 0001-01-01 00:00, less the UTC offset when
    /// aware.
    DateTime { micros: i64, aware: bool },
    /// `datetime.timedelta`: microseconds in all.
    TimeDelta(i128),
}

/// What an opaque value's pickle is, if it is one the node can order. Bounded: a pickle
/// nested deeper than a datetime with its timezone is not one of these.
pub fn ordered(pickle: &[u8]) -> Option<Ordered> {
    let limits = Limits {
        max_depth: 8,
        max_nodes: 64,
        ..Limits::default()
    };
    let value = super::loads(pickle, &limits).ok()?;
    if let Pickle::BigInt(le) = value {
        return Some(Ordered::BigInt(le));
    }
    let (name, args) = datetime_call(&value)?;
    match (name, args) {
        ("date", [Pickle::Bytes(state)]) => {
            let [yhi, ylo, month, day] = <[u8; 4]>::try_from(&state[..]).ok()?;
            days(u16::from_be_bytes([yhi, ylo]), month, day).map(Ordered::Date)
        }
        ("time", [Pickle::Bytes(state), tz @ ..]) => {
            let [hour, minute, second, us1, us2, us3] = <[u8; 6]>::try_from(&state[..]).ok()?;
            // The top bit of the hour is `fold`, which Python's comparison ignores.
            let micros = day_micros(hour & 0x7f, minute, second, [us1, us2, us3])?;
            let (offset, aware) = offset_of(tz)?;
            Some(Ordered::Time {
                micros: micros - offset,
                aware,
            })
        }
        ("datetime", [Pickle::Bytes(state), tz @ ..]) => {
            let state = <[u8; 10]>::try_from(&state[..]).ok()?;
            let [yhi, ylo, month, day, hour, minute, second, us1, us2, us3] = state;
            // The top bit of the month is `fold`, which Python's comparison ignores.
            let days = days(u16::from_be_bytes([yhi, ylo]), month & 0x7f, day)?;
            let in_day = day_micros(hour, minute, second, [us1, us2, us3])?;
            let (offset, aware) = offset_of(tz)?;
            Some(Ordered::DateTime {
                micros: days * MICROS_PER_DAY + in_day - offset,
                aware,
            })
        }
        ("timedelta", _) => timedelta_micros(&value).map(Ordered::TimeDelta),
        _ => None,
    }
}

impl Ordered {
    /// Python's name of the value's type, as its `TypeError`s print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Ordered::BigInt(_) => "int",
            Ordered::Date(_) => "datetime.date",
            Ordered::Time { .. } => "datetime.time",
            Ordered::DateTime { .. } => "datetime.datetime",
            Ordered::TimeDelta(_) => "datetime.timedelta",
        }
    }

    /// Python's order of two such values; `Err` with Python's message where it has none
    /// (a date and a timedelta, a naive and an aware datetime).
    pub fn py_cmp(&self, other: &Ordered) -> Result<Ordering, String> {
        let naive_and_aware = |what| format!("can't compare offset-naive and offset-aware {what}");
        match (self, other) {
            (Ordered::BigInt(a), Ordered::BigInt(b)) => Ok(cmp_big(a, b)),
            (Ordered::Date(a), Ordered::Date(b)) => Ok(a.cmp(b)),
            (Ordered::TimeDelta(a), Ordered::TimeDelta(b)) => Ok(a.cmp(b)),
            (
                Ordered::DateTime {
                    micros: a,
                    aware: x,
                },
                Ordered::DateTime {
                    micros: b,
                    aware: y,
                },
            ) if x == y => Ok(a.cmp(b)),
            (Ordered::DateTime { .. }, Ordered::DateTime { .. }) => {
                Err(naive_and_aware("datetimes"))
            }
            (
                Ordered::Time {
                    micros: a,
                    aware: x,
                },
                Ordered::Time {
                    micros: b,
                    aware: y,
                },
            ) if x == y => Ok(a.cmp(b)),
            (Ordered::Time { .. }, Ordered::Time { .. }) => Err(naive_and_aware("times")),
            // A datetime is a date to Python, which then refuses the pair either way round.
            (Ordered::DateTime { .. }, Ordered::Date(_))
            | (Ordered::Date(_), Ordered::DateTime { .. }) => {
                Err("can't compare datetime.datetime to datetime.date".into())
            }
            _ => Err(format!(
                "'<' not supported between instances of '{}' and '{}'",
                self.type_name(),
                other.type_name()
            )),
        }
    }

    /// Python's order of this value and an int within `i128`: only a big int has one, and
    /// being beyond every `i128`, its sign decides.
    pub fn cmp_int(&self) -> Option<Ordering> {
        match self {
            Ordered::BigInt(le) if is_negative(le) => Some(Ordering::Less),
            Ordered::BigInt(_) => Some(Ordering::Greater),
            _ => None,
        }
    }

    /// Python's order of this value and a float: only a big int has one. Python compares
    /// exactly; a float under 2**127 in size is beyond every big int here, and one at or
    /// over it is a whole number, compared exactly.
    pub fn cmp_float(&self, f: f64) -> Option<Ordering> {
        let Ordered::BigInt(le) = self else {
            return None;
        };
        if f.is_nan() {
            // Every comparison with NaN is false: neither less nor greater.
            return Some(Ordering::Equal);
        }
        if f.abs() < 2f64.powi(127) {
            return self.cmp_int();
        }
        if f.is_infinite() {
            return Some(if f > 0.0 {
                Ordering::Less
            } else {
                Ordering::Greater
            });
        }
        Some(cmp_big(le, &float_to_le(f)))
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `datetime.<name>(*args)`: the datetime module's class and its arguments.
fn datetime_call(value: &Pickle) -> Option<(&str, &[Pickle])> {
    let Pickle::Reduce { callable, args } = value else {
        return None;
    };
    let ("datetime", name) = as_global(callable)? else {
        return None;
    };
    match &**args {
        Pickle::Tuple(items) => Some((name, items)),
        _ => None,
    }
}

/// `timedelta(days, seconds, microseconds)` in microseconds.
fn timedelta_micros(value: &Pickle) -> Option<i128> {
    match datetime_call(value)? {
        ("timedelta", [Pickle::Int(d), Pickle::Int(s), Pickle::Int(us)]) => {
            // CPython keeps |days| <= 999,999,999, 0 <= seconds < 86,400, 0 <= us < 10**6.
            let valid = (-999_999_999..=999_999_999).contains(d)
                && (0..86_400).contains(s)
                && (0..1_000_000).contains(us);
            valid.then(|| (d * 86_400 + s) * 1_000_000 + us)
        }
        _ => None,
    }
}

/// The UTC offset in microseconds of a value's tzinfo argument, and whether it has one:
/// none (naive), or a `datetime.timezone(offset[, name])`. `None` for any other tzinfo.
fn offset_of(tz: &[Pickle]) -> Option<(i64, bool)> {
    match tz {
        [] | [Pickle::None] => Some((0, false)),
        [tz] => match datetime_call(tz)? {
            ("timezone", [offset, ..]) => {
                let micros = i64::try_from(timedelta_micros(offset)?).ok()?;
                // CPython refuses offsets of a day or more.
                (micros.unsigned_abs() < MICROS_PER_DAY.unsigned_abs()).then_some((micros, true))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Days since 0001-01-01 of a valid date (as CPython's `toordinal() - 1`).
fn days(year: u16, month: u8, day: u8) -> Option<i64> {
    const BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if !(1..=9999).contains(&year) || !(1..=in_month).contains(&day) {
        return None;
    }
    let y = i64::from(year) - 1;
    let leap_day = i64::from(leap && month > 2);
    Some(
        y * 365 + y / 4 - y / 100
            + y / 400
            + BEFORE_MONTH[month as usize - 1]
            + leap_day
            + i64::from(day)
            - 1,
    )
}

/// Microseconds since midnight of a valid time of day.
fn day_micros(hour: u8, minute: u8, second: u8, us: [u8; 3]) -> Option<i64> {
    let us = i64::from(u32::from_be_bytes([0, us[0], us[1], us[2]]));
    let valid = hour < 24 && minute < 60 && second < 60 && us < 1_000_000;
    valid.then(|| {
        ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1_000_000 + us
    })
}

fn is_negative(le: &[u8]) -> bool {
    le.last().is_some_and(|b| b & 0x80 != 0)
}

/// Compares two minimal little-endian two's complement ints.
fn cmp_big(a: &[u8], b: &[u8]) -> Ordering {
    match (is_negative(a), is_negative(b)) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        // The same sign: minimal, so the longer is further from zero; at equal length the
        // bytes compare as unsigned from the top (two's complement keeps the order).
        (negative, _) => match a.len().cmp(&b.len()) {
            Ordering::Equal => a.iter().rev().cmp(b.iter().rev()),
            longer if negative => longer.reverse(),
            longer => longer,
        },
    }
}

/// A whole float's exact value as minimal little-endian two's complement.
fn float_to_le(f: f64) -> Vec<u8> {
    let bits = f.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1075;
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    // |f| >= 2**127 here: the exponent is positive, the value mantissa << exponent.
    let shift = exponent.max(0) as usize;
    let mut magnitude = vec![0u8; shift / 8 + 9];
    let shifted = u128::from(mantissa) << (shift % 8);
    for (i, byte) in shifted.to_le_bytes()[..9].iter().enumerate() {
        magnitude[shift / 8 + i] = *byte;
    }
    magnitude.push(0);
    if f < 0.0 {
        // Two's complement: invert and add one.
        let mut carry = true;
        for byte in &mut magnitude {
            let (sum, overflow) = (!*byte).overflowing_add(u8::from(carry));
            *byte = sum;
            carry = overflow;
        }
    }
    super::num::minimal(&magnitude).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::{dumps, global};

    fn reduce(name: &str, args: Vec<Pickle>) -> Pickle {
        Pickle::Reduce {
            callable: Box::new(global("datetime", name)),
            args: Box::new(Pickle::Tuple(args)),
        }
    }

    fn timedelta(days: i128, seconds: i128, micros: i128) -> Pickle {
        reduce(
            "timedelta",
            vec![Pickle::Int(days), Pickle::Int(seconds), Pickle::Int(micros)],
        )
    }

    /// `datetime(y, m, d, h, mi, s, us[, tzinfo=timezone(timedelta(seconds=offset))])`.
    fn datetime(ymd: (u16, u8, u8), hms: (u8, u8, u8), us: u32, offset: Option<i128>) -> Ordered {
        let [yhi, ylo] = ymd.0.to_be_bytes();
        let [_, us1, us2, us3] = us.to_be_bytes();
        let state = vec![yhi, ylo, ymd.1, ymd.2, hms.0, hms.1, hms.2, us1, us2, us3];
        let mut args = vec![Pickle::Bytes(state)];
        if let Some(seconds) = offset {
            let (d, s) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
            args.push(reduce("timezone", vec![timedelta(d, s, 0)]));
        }
        ordered(&dumps(&reduce("datetime", args))).expect("a datetime the node orders")
    }

    #[test]
    fn days_match_pythons_ordinals() {
        // date(y, m, d).toordinal() - 1, from CPython.
        assert_eq!(days(1, 1, 1), Some(0));
        assert_eq!(days(2000, 3, 1), Some(730_179));
        assert_eq!(days(2024, 2, 29), Some(738_944));
        assert_eq!(days(9999, 12, 31), Some(3_652_058));
        assert_eq!(days(2023, 2, 29), None);
        assert_eq!(days(0, 1, 1), None);
        assert_eq!(days(2024, 13, 1), None);
    }

    #[test]
    fn datetimes_order_as_in_python() {
        let early = datetime((2024, 1, 2), (3, 4, 5), 6, None);
        let later = datetime((2024, 1, 2), (3, 4, 5), 7, None);
        assert_eq!(early.py_cmp(&later), Ok(Ordering::Less));
        assert_eq!(later.py_cmp(&early), Ok(Ordering::Greater));
        // 12:00 at UTC+2 is 10:00 UTC: before 11:00 UTC.
        let noon_plus_2 = datetime((2024, 1, 2), (12, 0, 0), 0, Some(7200));
        let eleven_utc = datetime((2024, 1, 2), (11, 0, 0), 0, Some(0));
        assert_eq!(noon_plus_2.py_cmp(&eleven_utc), Ok(Ordering::Less));
        // 00:00 at UTC-5 is 05:00 UTC, after 04:00 UTC.
        let midnight_minus_5 = datetime((2024, 1, 2), (0, 0, 0), 0, Some(-5 * 3600));
        let four_utc = datetime((2024, 1, 2), (4, 0, 0), 0, Some(0));
        assert_eq!(midnight_minus_5.py_cmp(&four_utc), Ok(Ordering::Greater));
        assert!(early.py_cmp(&eleven_utc).is_err(), "naive and aware");
    }

    #[test]
    fn a_fold_is_ignored_and_other_tzinfos_are_not_ordered() {
        let mut state = vec![0x07, 0xe8, 1 | 0x80, 2, 3, 4, 5, 0, 0, 6];
        let folded = ordered(&dumps(&reduce(
            "datetime",
            vec![Pickle::Bytes(state.clone())],
        )));
        state[2] = 1;
        let plain = ordered(&dumps(&reduce(
            "datetime",
            vec![Pickle::Bytes(state.clone())],
        )));
        assert_eq!(folded, plain);
        let zone = Pickle::Reduce {
            callable: Box::new(global("zoneinfo", "ZoneInfo")),
            args: Box::new(Pickle::Tuple(vec![Pickle::Str("Europe/Paris".into())])),
        };
        let zoned = reduce("datetime", vec![Pickle::Bytes(state), zone]);
        assert_eq!(ordered(&dumps(&zoned)), None);
        assert_eq!(ordered(&dumps(&global("datetime", "datetime"))), None);
    }

    #[test]
    fn dates_times_and_timedeltas_order_among_their_kind_only() {
        let date = |y: u16, m, d| {
            let [hi, lo] = y.to_be_bytes();
            ordered(&dumps(&reduce(
                "date",
                vec![Pickle::Bytes(vec![hi, lo, m, d])],
            )))
            .unwrap()
        };
        assert_eq!(
            date(1999, 12, 31).py_cmp(&date(2000, 1, 1)),
            Ok(Ordering::Less)
        );
        let td = |d, s, us| ordered(&dumps(&timedelta(d, s, us))).unwrap();
        assert_eq!(
            td(-1, 86_399, 999_999).py_cmp(&td(0, 0, 0)),
            Ok(Ordering::Less)
        );
        assert_eq!(
            td(0, 1, 0).py_cmp(&td(0, 0, 999_999)),
            Ok(Ordering::Greater)
        );
        let time = |h| {
            ordered(&dumps(&reduce(
                "time",
                vec![Pickle::Bytes(vec![h, 0, 0, 0, 0, 0])],
            )))
            .unwrap()
        };
        assert_eq!(time(1 | 0x80).py_cmp(&time(2)), Ok(Ordering::Less));
        assert!(date(2000, 1, 1).py_cmp(&td(0, 0, 0)).is_err());
        let midnight = datetime((2000, 1, 1), (0, 0, 0), 0, None);
        assert!(
            date(2000, 1, 1).py_cmp(&midnight).is_err(),
            "a date and a datetime"
        );
    }

    /// Found in review: `abs()` of a hostile day count or offset overflowed.
    #[test]
    fn extreme_timedeltas_are_not_ordered_and_do_not_overflow() {
        assert_eq!(ordered(&dumps(&timedelta(i128::MIN, 0, 0))), None);
        assert_eq!(ordered(&dumps(&timedelta(1_000_000_000, 0, 0))), None);
        // An offset of exactly i64::MIN microseconds: days -106,751,992, 71,945 s, 224,192 µs.
        let state = vec![0x07, 0xe8, 1, 2, 0, 0, 0, 0, 0, 0];
        let tz = reduce("timezone", vec![timedelta(-106_751_992, 71_945, 224_192)]);
        let dt = reduce("datetime", vec![Pickle::Bytes(state), tz]);
        assert_eq!(ordered(&dumps(&dt)), None);
    }

    #[test]
    fn big_ints_order_among_themselves_and_against_ints_and_floats() {
        // 2**130, -(2**130), 2**131 as CPython's LONG1 bytes.
        let big = |le: Vec<u8>| ordered(&dumps(&Pickle::BigInt(le))).unwrap();
        let two_130 = big([vec![0; 16], vec![4]].concat());
        let minus_two_130 = big([vec![0; 16], vec![0xfc]].concat());
        let two_131 = big([vec![0; 16], vec![8]].concat());
        assert_eq!(two_130.py_cmp(&two_131), Ok(Ordering::Less));
        assert_eq!(minus_two_130.py_cmp(&two_130), Ok(Ordering::Less));
        assert_eq!(two_131.py_cmp(&minus_two_130), Ok(Ordering::Greater));
        assert_eq!(two_130.cmp_int(), Some(Ordering::Greater));
        assert_eq!(minus_two_130.cmp_int(), Some(Ordering::Less));
        // Floats: 2.0**130 is exactly 2**130; 1e300 is beyond 2**131; 1e10 below both.
        assert_eq!(two_130.cmp_float(2f64.powi(130)), Some(Ordering::Equal));
        assert_eq!(two_131.cmp_float(2f64.powi(130)), Some(Ordering::Greater));
        assert_eq!(two_131.cmp_float(1e300), Some(Ordering::Less));
        assert_eq!(two_130.cmp_float(1e10), Some(Ordering::Greater));
        assert_eq!(
            minus_two_130.cmp_float(-(2f64.powi(130))),
            Some(Ordering::Equal)
        );
        assert_eq!(
            minus_two_130.cmp_float(-(2f64.powi(131))),
            Some(Ordering::Greater)
        );
        assert_eq!(
            minus_two_130.cmp_float(f64::NEG_INFINITY),
            Some(Ordering::Greater)
        );
        assert_eq!(two_130.cmp_float(f64::INFINITY), Some(Ordering::Less));
    }
}
