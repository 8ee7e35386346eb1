//! The `web-config` file: the YAML of Prometheus's exporter-toolkit, so a
//! site can reuse the files it already has for its other exporters. It
//! gives basic-auth users (bcrypt hashes), TLS (rustls) with optional client
//! certificates, and extra response headers. Nothing here knows Flux.
//!
//! Everything is checked when the file is read: a field this module does not
//! know, a hash that is not bcrypt, a certificate or key that cannot be read.
//! A bad file is refused as a whole, with a message naming the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::http::auth::Users;
use crate::http::error::WebConfigError;

/// The settings the HTTP thread applies, from one web-config file (or none).
#[derive(Default)]
pub struct WebConfig {
    pub users: Option<Arc<Users>>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What the settings came from, for messages.
    pub source: Option<PathBuf>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("users", &self.users.as_ref().map(|u| u.names()))
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("source", &self.source)
            .finish()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// This exporter speaks HTTP/1.1, which is what Prometheus scrapes
    /// with; the key is accepted so existing files keep working.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The response headers exporter-toolkit lets a web-config set.
const SETTABLE_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

impl WebConfig {
    /// Reads and checks a web-config file. Relative paths in it are taken
    /// from the file's own directory, as exporter-toolkit takes them.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut config = WebConfig::parse(&text, dir).map_err(|e| WebConfigError::In {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses web-config YAML; `dir` resolves relative file names.
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| WebConfigError::Yaml(e.to_string()))?
        };
        let users = match file.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(Users::new(users)?)),
            _ => None,
        };
        let tls = match file.tls_server_config {
            Some(tls) => Some(Arc::new(tls_config(tls, dir)?)),
            None => None,
        };
        let mut headers = Vec::new();
        for (name, value) in file
            .http_server_config
            .and_then(|h| h.headers)
            .unwrap_or_default()
        {
            if !SETTABLE_HEADERS
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&name))
            {
                return Err(WebConfigError::key(
                    "http_server_config.headers",
                    format!(
                        "{name} cannot be set (only {})",
                        SETTABLE_HEADERS.join(", ")
                    ),
                ));
            }
            let bad =
                |e: String| WebConfigError::key(format!("http_server_config.headers.{name}"), e);
            headers.push((
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?,
                HeaderValue::from_str(&value).map_err(|e| bad(e.to_string()))?,
            ));
        }
        Ok(WebConfig {
            users,
            tls,
            headers,
            source: None,
        })
    }
}

fn resolve(dir: &Path, name: &str) -> PathBuf {
    let path = Path::new(name);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

fn tls_version(
    field: &str,
    value: &str,
) -> Result<&'static rustls::SupportedProtocolVersion, WebConfigError> {
    match value {
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS10" | "TLS11" => Err(WebConfigError::key(
            format!("tls_server_config.{field}"),
            format!("{value} is not supported (TLS 1.0 and 1.1 are obsolete; use TLS12 or TLS13)"),
        )),
        _ => Err(WebConfigError::key(
            format!("tls_server_config.{field}"),
            format!("unknown TLS version '{value}' (expected TLS12 or TLS13)"),
        )),
    }
}

/// Go's names for the TLS 1.2 suites rustls implements. Go never lets TLS
/// 1.3 suites be chosen, so neither does this.
fn cipher_suite(name: &str) -> Option<rustls::SupportedCipherSuite> {
    use provider::cipher_suite as cs;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

fn curve(name: &str) -> Option<&'static dyn rustls::crypto::SupportedKxGroup> {
    match name {
        "X25519" => Some(provider::kx_group::X25519),
        "CurveP256" => Some(provider::kx_group::SECP256R1),
        "CurveP384" => Some(provider::kx_group::SECP384R1),
        _ => None,
    }
}

fn pem_certs(field: &str, from: Either) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let certs: Result<Vec<_>, _> = match &from {
        Either::File(path) => CertificateDer::pem_file_iter(path)
            .map_err(|e| {
                WebConfigError::key(
                    format!("tls_server_config.{field}"),
                    format!("{}: {e}", path.display()),
                )
            })?
            .collect(),
        Either::Inline(text) => CertificateDer::pem_slice_iter(text.as_bytes()).collect(),
    };
    let certs = certs.map_err(|e| {
        WebConfigError::key(
            format!("tls_server_config.{field}"),
            format!("{}: {e}", from),
        )
    })?;
    if certs.is_empty() {
        return Err(WebConfigError::key(
            format!("tls_server_config.{field}"),
            format!("{from}: no PEM certificate found"),
        ));
    }
    Ok(certs)
}

enum Either {
    File(PathBuf),
    Inline(String),
}

impl std::fmt::Display for Either {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Either::File(p) => write!(f, "{}", p.display()),
            Either::Inline(_) => write!(f, "inline PEM"),
        }
    }
}

/// One of `NAME_file` and `NAME`, exactly one of which must be given.
fn file_or_inline(
    dir: &Path,
    field: &str,
    file: Option<String>,
    inline: Option<String>,
) -> Result<Either, WebConfigError> {
    match (file, inline) {
        (Some(f), None) => Ok(Either::File(resolve(dir, &f))),
        (None, Some(i)) => Ok(Either::Inline(i)),
        (Some(_), Some(_)) => Err(WebConfigError::key(
            "tls_server_config",
            format!("give {field}_file or {field}, not both"),
        )),
        (None, None) => Err(WebConfigError::key(
            "tls_server_config",
            format!("{field}_file is missing"),
        )),
    }
}

fn tls_config(tls: TlsFile, dir: &Path) -> Result<rustls::ServerConfig, WebConfigError> {
    let certs = pem_certs(
        "cert_file",
        file_or_inline(dir, "cert", tls.cert_file, tls.cert)?,
    )?;
    let key = match file_or_inline(dir, "key", tls.key_file, tls.key)? {
        Either::File(path) => PrivateKeyDer::from_pem_file(&path).map_err(|e| {
            WebConfigError::key(
                "tls_server_config.key_file",
                format!("{}: {e}", path.display()),
            )
        })?,
        Either::Inline(text) => PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| {
            WebConfigError::key("tls_server_config.key", format!("inline PEM: {e}"))
        })?,
    };

    let mut provider = provider::default_provider();
    if let Some(names) = &tls.cipher_suites {
        let mut suites: Vec<_> = provider
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        for name in names {
            suites.push(cipher_suite(name).ok_or_else(|| {
                WebConfigError::key(
                    "tls_server_config.cipher_suites",
                    format!("'{name}' is not a supported TLS 1.2 cipher suite"),
                )
            })?);
        }
        provider.cipher_suites = suites;
    }
    if let Some(names) = &tls.curve_preferences {
        provider.kx_groups = names
            .iter()
            .map(|name| {
                curve(name).ok_or_else(|| {
                    WebConfigError::key(
                        "tls_server_config.curve_preferences",
                        format!("'{name}' is not supported (X25519, CurveP256, CurveP384)"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    let provider = Arc::new(provider);

    let min = tls_version("min_version", tls.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = tls_version("max_version", tls.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let rank = |v: &rustls::SupportedProtocolVersion| {
                    v.version == rustls::ProtocolVersion::TLSv1_3
                };
                rank(v) >= rank(min) && rank(v) <= rank(max)
            })
            .collect();
    if versions.is_empty() {
        return Err(WebConfigError::key(
            "tls_server_config",
            "min_version is above max_version",
        ));
    }
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError::key("tls_server_config", format!("{e}")))?;

    let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let ca = match (tls.client_ca_file, tls.client_ca) {
        (None, None) => None,
        (file, inline) => Some(file_or_inline(dir, "client_ca", file, inline)?),
    };
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca = ca.ok_or_else(|| {
                WebConfigError::key("tls_server_config", format!("client_auth_type {auth_type} needs client_ca_file"))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in pem_certs("client_ca_file", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| WebConfigError::key("tls_server_config.client_ca_file", format!("{e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::clone(&provider),
            );
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| WebConfigError::key("tls_server_config.client_ca_file", format!("{e}")))?,
            )
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(WebConfigError::key("tls_server_config.client_auth_type", format!("{auth_type} is not supported: an unverified client certificate proves nothing (use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file)"
            )))
        }
        other => {
            return Err(WebConfigError::key("tls_server_config.client_auth_type", format!("unknown value '{other}'"
            )))
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        WebConfigError::key(
            "tls_server_config",
            format!("certificate and key do not go together: {e}"),
        )
    })?;
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(false);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
