//! The broker and the instance: attributes, `groups.get` and
//! `overlay.health` responses.

use super::error::ParseError;
use serde::Deserialize;

use super::idset::IdSet;

/// Overlay subtree states, as overlay.health reports them.
pub const OVERLAY_STATES: [&str; 6] = ["unknown", "full", "partial", "degraded", "lost", "offline"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceInfo {
    pub version: String,
    pub level: String,
    /// The enclosing job's id, in a nested instance.
    pub jobid: Option<String>,
    pub size: u32,
    pub start_time: Option<f64>,
    pub online: Option<u64>,
    pub overlay_status: Option<String>,
}

/// Number of members of a broker group (`groups.get` response).
pub fn parse_group_count(payload: &str) -> Result<u64, ParseError> {
    #[derive(Deserialize)]
    struct Group {
        members: String,
    }
    let g: Group =
        serde_json::from_str(payload).map_err(|e| ParseError::malformed("groups.get", e))?;
    Ok(IdSet::parse(&g.members)
        .map_err(|e| ParseError::invalid(format!("groups.get: {e}")))?
        .count())
}

/// The overlay status of this broker's subtree (`overlay.health` response).
pub fn parse_overlay_status(payload: &str) -> Result<String, ParseError> {
    #[derive(Deserialize)]
    struct Health {
        status: String,
    }
    let h: Health =
        serde_json::from_str(payload).map_err(|e| ParseError::malformed("overlay.health", e))?;
    Ok(h.status)
}
