//! What is wrong with a web-config file, named as exporter-toolkit names
//! its keys, so that a site can find the line.

use std::path::PathBuf;

/// A web-config the module refuses: the file, the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web-config {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An error of the file at `path`.
    #[error("web-config {}: {source}", path.display())]
    In {
        path: PathBuf,
        #[source]
        source: Box<WebConfigError>,
    },
    /// Not YAML, or not the shape of a web-config (an unknown key, say).
    #[error("{0}")]
    Yaml(String),
    /// A key whose value the module cannot take.
    #[error("{key}: {why}")]
    Key { key: String, why: String },
}

impl WebConfigError {
    /// `key` (dotted, as `tls_server_config.min_version`) cannot be `why`.
    pub fn key(key: impl Into<String>, why: impl Into<String>) -> WebConfigError {
        WebConfigError::Key {
            key: key.into(),
            why: why.into(),
        }
    }
}
