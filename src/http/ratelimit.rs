//! The web-config's `rate_limit`, as exporter-toolkit applies it: one
//! token bucket for every request the server gets, `burst` requests at
//! once and one more each `interval`; a request over it is answered at
//! once with 429 Too Many Requests, before authentication and before the
//! configured headers (Go's `rate.Limiter` behind toolkit's `webHandler`).
//! An interval of 0 (or none) is no limit; a burst of 0 with an interval
//! refuses every request, as the toolkit does. The bucket (governor's
//! GCRA, which admits exactly what a token bucket of that size admits)
//! starts full whenever the web config is read.

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// `rate_limit` as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub interval: Duration,
    pub burst: u32,
}

/// The limiter the HTTP thread asks before each request.
#[derive(Default)]
pub enum RateLimit {
    /// No `rate_limit`, an interval of 0, or a negative one (Go's
    /// `rate.Every` of it is an infinite rate).
    #[default]
    Unlimited,
    /// An interval with a burst of 0: no request is ever allowed.
    RefuseAll,
    Bucket(DefaultDirectRateLimiter),
}

impl RateLimit {
    pub fn new(config: Option<RateLimitConfig>) -> RateLimit {
        let Some(RateLimitConfig { interval, burst }) = config else {
            return RateLimit::Unlimited;
        };
        if interval.is_zero() {
            return RateLimit::Unlimited;
        }
        match (Quota::with_period(interval), NonZeroU32::new(burst)) {
            (Some(quota), Some(burst)) => {
                RateLimit::Bucket(RateLimiter::direct(quota.allow_burst(burst)))
            }
            (_, None) => RateLimit::RefuseAll,
            (None, Some(_)) => RateLimit::Unlimited,
        }
    }

    /// Takes one request from the bucket; false where it is empty.
    pub fn allow(&self) -> bool {
        match self {
            RateLimit::Unlimited => true,
            RateLimit::RefuseAll => false,
            RateLimit::Bucket(limiter) => limiter.check().is_ok(),
        }
    }
}

/// What toolkit answers a request over the limit (Go's `http.Error`).
pub fn too_many_requests() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"Too Many Requests\n")));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A duration as Go's `time.ParseDuration` reads it (`1s`, `1m30s`,
/// `1.5h`, `300ms`, `0`); a negative one is returned as None, which
/// toolkit treats as no limit.
pub fn parse_go_duration(text: &str) -> Result<Option<Duration>, String> {
    let bad = || format!("'{text}' is not a duration (e.g. 1s, 500ms, 1m30s)");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(Some(Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(bad());
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "'{text}': a number needs a unit (ns, us, ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "'{text}': unknown unit '{other}' (ns, us, ms, s, m, h)"
                ))
            }
        };
        nanos += value * scale;
        rest = next;
    }
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return Err(bad());
    }
    if negative && nanos > 0.0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_nanos(nanos as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_reads_them() {
        let d = |s| parse_go_duration(s).unwrap();
        assert_eq!(d("1s"), Some(Duration::from_secs(1)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(d("2us"), Some(Duration::from_micros(2)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("-1s"), None);
        for bad in ["", "1", "s", "1x", "1.s.", "fast"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_go_duration("5").unwrap_err(),
            "'5': a number needs a unit (ns, us, ms, s, m, h)"
        );
    }

    #[test]
    fn a_burst_is_allowed_then_one_request_per_interval() {
        let limit = RateLimit::new(Some(RateLimitConfig {
            interval: Duration::from_secs(3600),
            burst: 3,
        }));
        let allowed = (0..10).filter(|_| limit.allow()).count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn no_interval_is_no_limit_and_no_burst_refuses_all() {
        let none = RateLimit::new(Some(RateLimitConfig {
            interval: Duration::ZERO,
            burst: 0,
        }));
        assert!((0..100).all(|_| none.allow()));
        let all = RateLimit::new(Some(RateLimitConfig {
            interval: Duration::from_secs(1),
            burst: 0,
        }));
        assert!(!all.allow());
    }

    #[test]
    fn the_refusal_is_the_toolkits() {
        let r = too_many_requests();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
