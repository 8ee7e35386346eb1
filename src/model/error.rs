//! What is wrong with something the module read from outside: a Flux
//! payload, an R, a hostlist or idset, an announced URL.

use std::fmt::Display;

/// A payload or value the module could not read. The three kinds tell a
/// reader what to do: a `Malformed` payload means flux-core and the module
/// disagree on a format (say which flux-core); an `Invalid` value is read
/// but holds what it may not (the input is named with the reason); `In`
/// says where an error was met.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or not the shape the module reads, from `topic` (an RPC
    /// topic, or a field such as "R").
    #[error("{topic}: malformed response: {detail}")]
    Malformed { topic: String, detail: String },
    /// Read, but not valid: the text says which input and why.
    #[error("{0}")]
    Invalid(String),
    /// An error met inside `context` (an RPC topic, a job, a field).
    #[error("{context}: {source}")]
    In {
        context: String,
        #[source]
        source: Box<ParseError>,
    },
}

impl ParseError {
    /// `topic`'s answer is not the shape the module reads.
    pub fn malformed(topic: impl Into<String>, detail: impl Display) -> ParseError {
        ParseError::Malformed {
            topic: topic.into(),
            detail: detail.to_string(),
        }
    }

    /// A value that does not hold what it must; `why` names it.
    pub fn invalid(why: impl Into<String>) -> ParseError {
        ParseError::Invalid(why.into())
    }

    /// This error, as met inside `context`.
    pub fn within(self, context: impl Into<String>) -> ParseError {
        ParseError::In {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

/// Reads JSON `payload` from `topic` into `T`.
pub fn from_json<'a, T: serde::Deserialize<'a>>(
    topic: &str,
    payload: &'a str,
) -> Result<T, ParseError> {
    serde_json::from_str(payload).map_err(|e| ParseError::malformed(topic, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_where_and_why() {
        let e = from_json::<u32>("job-list.job-stats", "x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("job-list.job-stats: malformed response: expected value"),
            "{e}"
        );
        let e = ParseError::invalid("invalid idset 'x': not a number or range").within("R");
        assert_eq!(e.to_string(), "R: invalid idset 'x': not a number or range");
        assert!(matches!(e, ParseError::In { .. }));
    }
}
