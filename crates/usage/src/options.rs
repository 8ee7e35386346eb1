//! The job's `prometheus` shell option (`flux run -o prometheus...`):
//! `-o prometheus.usage=false` (or `-o prometheus=false`) opts the job out;
//! `-o prometheus.period=SECONDS` sets how often the shell samples its
//! tasks' memory.

use serde_json::Value;

/// The sampling period unless the job sets one.
pub const DEFAULT_PERIOD: f64 = 10.0;

/// An option value the plugin cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("-o prometheus={value}: {why}")]
pub struct OptionError {
    pub value: String,
    pub why: &'static str,
}

/// The sampling period, or None when the job opted out; `json` is the
/// option's value as the shell gives it, None when the job sets none.
pub fn parse(json: Option<&str>) -> Result<Option<f64>, OptionError> {
    let Some(json) = json else {
        return Ok(Some(DEFAULT_PERIOD));
    };
    let bad = |why| OptionError {
        value: json.to_string(),
        why,
    };
    let value: Value = serde_json::from_str(json).map_err(|_| bad("not JSON"))?;
    let off = |v: &Value| v == &Value::Bool(false) || v.as_i64() == Some(0);
    match &value {
        v if off(v) => Ok(None),
        Value::Object(map) => {
            if map.get("usage").is_some_and(off) {
                return Ok(None);
            }
            match map.get("period") {
                None => Ok(Some(DEFAULT_PERIOD)),
                Some(p) => p
                    .as_f64()
                    .filter(|p| *p >= 0.1 && p.is_finite())
                    .map(Some)
                    .ok_or_else(|| bad("period must be a number of seconds, 0.1 or more")),
            }
        }
        _ => Ok(Some(DEFAULT_PERIOD)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_opts_out_or_sets_the_period() {
        assert_eq!(parse(None), Ok(Some(DEFAULT_PERIOD)));
        assert_eq!(parse(Some("false")), Ok(None));
        assert_eq!(parse(Some("0")), Ok(None));
        assert_eq!(parse(Some(r#"{"usage": false}"#)), Ok(None));
        assert_eq!(parse(Some(r#"{"period": 2}"#)), Ok(Some(2.0)));
        assert_eq!(parse(Some("true")), Ok(Some(DEFAULT_PERIOD)));
        let err = parse(Some(r#"{"period": "fast"}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"-o prometheus={"period": "fast"}: period must be a number of seconds, 0.1 or more"#
        );
    }
}
