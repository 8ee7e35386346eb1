//! `job-manager.queue-list` and `job-manager.queue-status` responses.

use super::error::ParseError;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStatus {
    /// None for the anonymous queue of an instance with no named queues.
    pub name: Option<String>,
    pub enabled: bool,
    pub started: bool,
}

#[derive(Deserialize)]
struct QueueList {
    queues: Vec<String>,
}

#[derive(Deserialize)]
struct Status {
    enable: bool,
    start: bool,
}

pub fn parse_list(payload: &str) -> Result<Vec<String>, ParseError> {
    serde_json::from_str::<QueueList>(payload)
        .map(|l| l.queues)
        .map_err(|e| ParseError::malformed("job-manager.queue-list", e))
}

pub fn parse_status(name: Option<&str>, payload: &str) -> Result<QueueStatus, ParseError> {
    let s: Status = serde_json::from_str(payload).map_err(|e| {
        ParseError::malformed(
            format!("job-manager.queue-status {}", name.unwrap_or("(anonymous)")),
            e,
        )
    })?;
    Ok(QueueStatus {
        name: name.map(String::from),
        enabled: s.enable,
        started: s.start,
    })
}
