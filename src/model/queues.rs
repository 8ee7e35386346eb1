//! `job-manager.queue-list` and `job-manager.queue-status` responses.

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

pub fn parse_list(payload: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<QueueList>(payload)
        .map(|l| l.queues)
        .map_err(|e| format!("job-manager.queue-list: malformed response: {e}"))
}

pub fn parse_status(name: Option<&str>, payload: &str) -> Result<QueueStatus, String> {
    let s: Status = serde_json::from_str(payload).map_err(|e| {
        format!(
            "job-manager.queue-status {}: malformed response: {e}",
            name.unwrap_or("(anonymous)")
        )
    })?;
    Ok(QueueStatus {
        name: name.map(String::from),
        enabled: s.enable,
        started: s.start,
    })
}
