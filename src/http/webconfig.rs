//! The `web-config` file: the YAML of Prometheus's exporter-toolkit, so a
//! site can reuse the files it already has for its other exporters. It
//! gives basic-auth users (bcrypt hashes), TLS (rustls) with optional client
//! certificates, extra response headers, and a rate limit. Nothing here
//! knows Flux.
//!
//! Everything is checked when the file is read: a field this module does not
//! know, a hash that is not bcrypt, a certificate or key that cannot be read.
//! A bad file is refused as a whole, with a message naming the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::http::auth::Users;
use crate::http::error::WebConfigError;
use crate::http::ratelimit::{parse_go_duration, RateLimit, RateLimitConfig};

/// The settings the HTTP thread applies, from one web-config file (or none).
#[derive(Default)]
pub struct WebConfig {
    pub users: Option<Arc<Users>>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether a client certificate, where one is given, has been verified
    /// against a CA (`RequireAndVerifyClientCert`,
    /// `VerifyClientCertIfGiven`): only then do its SANs say who the
    /// scraper is (crate::access).
    pub verifies_client_certs: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit` as read, and its bucket.
    pub rate_limit_config: Option<RateLimitConfig>,
    pub rate_limit: Arc<RateLimit>,
    /// What the settings came from, for messages.
    pub source: Option<PathBuf>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("users", &self.users.as_ref().map(|u| u.names()))
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("rate_limit", &self.rate_limit_config)
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
    #[serde(default)]
    rate_limit: Option<RateLimitFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    /// A Go duration (`1s`), or a number of nanoseconds, as toolkit's YAML
    /// reads a `time.Duration`.
    interval: Option<GoDuration>,
    burst: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GoDuration {
    Nanoseconds(i64),
    Text(String),
}

/// `rate_limit`: None where it sets no limit.
fn rate_limit(file: Option<RateLimitFile>) -> Result<Option<RateLimitConfig>, WebConfigError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let interval = match file.interval {
        None => return Ok(None),
        Some(GoDuration::Nanoseconds(n)) if n <= 0 => return Ok(None),
        Some(GoDuration::Nanoseconds(n)) => Duration::from_nanos(n.unsigned_abs()),
        Some(GoDuration::Text(text)) => match parse_go_duration(&text)
            .map_err(|why| WebConfigError::key("rate_limit.interval", why))?
        {
            Some(d) if !d.is_zero() => d,
            _ => return Ok(None),
        },
    };
    Ok(Some(RateLimitConfig {
        interval,
        // A burst below 1 lets no request through, as in Go's rate.Limiter.
        burst: u32::try_from(file.burst.unwrap_or(0).max(0)).unwrap_or(u32::MAX),
    }))
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
    client_allowed_sans: Option<Vec<String>>,
}

impl TlsFile {
    /// Whether it sets none of what makes TLS (toolkit's `validateTLSPaths`);
    /// an empty string counts as unset, as in Go.
    fn is_empty(&self) -> bool {
        [
            &self.cert_file,
            &self.cert,
            &self.key_file,
            &self.key,
            &self.client_ca_file,
            &self.client_ca,
            &self.client_auth_type,
        ]
        .iter()
        .all(|v| v.as_deref().is_none_or(str::is_empty))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// HTTP/2 over TLS, offered by ALPN beside HTTP/1.1 (toolkit's
    /// default); false offers HTTP/1.1 alone. Plain HTTP is HTTP/1.1, as in
    /// Go.
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The response headers exporter-toolkit lets a web-config set, by their
/// exact names, with the only values it takes where it restricts them
/// (toolkit's `extraHTTPHeaders`).
const SETTABLE_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
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
        let verifies_client_certs = file.tls_server_config.as_ref().is_some_and(|tls| {
            !tls.is_empty()
                && matches!(
                    tls.client_auth_type.as_deref(),
                    Some("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")
                )
        });
        let http = file.http_server_config.unwrap_or_default();
        let http2 = http.http2.unwrap_or(true);
        let tls = match file.tls_server_config {
            // As toolkit: with no certificate, key, client CA or client
            // auth type, the server speaks plain HTTP.
            Some(tls) if tls.is_empty() => None,
            Some(tls) => {
                let mut config = tls_config(tls, dir)?;
                config.alpn_protocols = if http2 {
                    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
                } else {
                    vec![b"http/1.1".to_vec()]
                };
                Some(Arc::new(config))
            }
            None => None,
        };
        let mut headers = Vec::new();
        for (name, value) in http.headers.unwrap_or_default() {
            let Some((_, allowed)) = SETTABLE_HEADERS.iter().find(|(h, _)| *h == name) else {
                let names: Vec<&str> = SETTABLE_HEADERS.iter().map(|(h, _)| *h).collect();
                return Err(WebConfigError::key(
                    "http_server_config.headers",
                    format!("{name} cannot be set (only {}, so spelt)", names.join(", ")),
                ));
            };
            let bad =
                |e: String| WebConfigError::key(format!("http_server_config.headers.{name}"), e);
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(bad(format!(
                    "'{value}' is not one of {}",
                    allowed.join(", ")
                )));
            }
            headers.push((
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?,
                HeaderValue::from_str(&value).map_err(|e| bad(e.to_string()))?,
            ));
        }
        let rate_limit_config = rate_limit(file.rate_limit)?;
        Ok(WebConfig {
            users,
            tls,
            verifies_client_certs,
            headers,
            rate_limit: Arc::new(RateLimit::new(rate_limit_config)),
            rate_limit_config,
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

/// What a name in `cipher_suites` is, among the names exporter-toolkit
/// takes (Go's `tls.CipherSuites()`, Go 1.25).
enum Suite {
    /// A TLS 1.2 suite rustls implements.
    Tls12(rustls::SupportedCipherSuite),
    /// A TLS 1.3 suite: Go takes the name and, as it never lets TLS 1.3
    /// suites be chosen, it changes nothing; so here.
    Tls13,
    /// A suite Go implements and rustls does not (CBC).
    NotInRustls,
}

fn cipher_suite(name: &str) -> Option<Suite> {
    use provider::cipher_suite as cs;
    Some(Suite::Tls12(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
            return Some(Suite::Tls13)
        }
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" => return Some(Suite::NotInRustls),
        _ => return None,
    }))
}

/// Go's curve names, as toolkit takes them; None for CurveP521, which
/// rustls does not implement.
fn curve(name: &str) -> Option<Option<&'static dyn rustls::crypto::SupportedKxGroup>> {
    match name {
        "X25519" => Some(Some(provider::kx_group::X25519)),
        "CurveP256" => Some(Some(provider::kx_group::SECP256R1)),
        "CurveP384" => Some(Some(provider::kx_group::SECP384R1)),
        "CurveP521" => Some(None),
        _ => None,
    }
}

/// The system's trusted roots, for client certificates where no CA is
/// given.
fn system_roots() -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why = found
            .errors
            .first()
            .map_or("none found".to_string(), |e| e.to_string());
        return Err(WebConfigError::key(
            "tls_server_config.client_ca_file",
            format!("no client_ca_file, and the system's trusted roots cannot be read ({why})"),
        ));
    }
    Ok(found.certs)
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
    // An empty string is unset, as in Go.
    let file = file.filter(|f| !f.is_empty());
    let inline = inline.filter(|i| !i.is_empty());
    match (file, inline) {
        (Some(f), None) => Ok(Either::File(resolve(dir, &f))),
        (None, Some(i)) => Ok(Either::Inline(i)),
        (Some(_), Some(_)) => Err(WebConfigError::key(
            "tls_server_config",
            format!("give {field}_file or {field}, not both"),
        )),
        (None, None) => Err(WebConfigError::key(
            "tls_server_config",
            format!("missing one of {field} or {field}_file"),
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
        let bad = |why: String| WebConfigError::key("tls_server_config.cipher_suites", why);
        for name in names {
            match cipher_suite(name) {
                Some(Suite::Tls12(suite)) => suites.push(suite),
                Some(Suite::Tls13) => {}
                Some(Suite::NotInRustls) => {
                    return Err(bad(format!(
                        "'{name}' cannot be honoured: rustls does not implement CBC suites"
                    )))
                }
                None => return Err(bad(format!("unknown cipher: {name}"))),
            }
        }
        provider.cipher_suites = suites;
    }
    if let Some(names) = &tls.curve_preferences {
        let bad = |why: String| WebConfigError::key("tls_server_config.curve_preferences", why);
        provider.kx_groups = names
            .iter()
            .map(|name| match curve(name) {
                Some(Some(group)) => Ok(group),
                Some(None) => Err(bad(format!(
                    "'{name}' cannot be honoured: rustls does not implement it (X25519, CurveP256, CurveP384)"
                ))),
                None => Err(bad(format!("unknown curve: {name}"))),
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

    let auth_type = match tls.client_auth_type.as_deref() {
        None | Some("") => "NoClientCert",
        Some(other) => other,
    };
    let ca = match (
        tls.client_ca_file.filter(|f| !f.is_empty()),
        tls.client_ca.filter(|c| !c.is_empty()),
    ) {
        (None, None) => None,
        (file, inline) => Some(file_or_inline(dir, "client_ca", file, inline)?),
    };
    // A CA that would be ignored is refused, as toolkit refuses it, once a
    // file has been found to be there: a missing one is named as such.
    if let Some(ca) = &ca {
        if let Either::File(path) = ca {
            std::fs::metadata(path).map_err(|e| {
                WebConfigError::key(
                    "tls_server_config.client_ca_file",
                    format!("{}: {e}", path.display()),
                )
            })?;
        }
        if auth_type == "NoClientCert" {
            return Err(WebConfigError::key(
                "tls_server_config.client_ca_file",
                "client CA's have been configured without a Client Auth Policy (set client_auth_type)",
            ));
        }
    }
    let ca = ca.map(|ca| pem_certs("client_ca_file", ca)).transpose()?;
    if tls.client_allowed_sans.is_some() && auth_type == "NoClientCert" {
        return Err(WebConfigError::key(
            "tls_server_config.client_allowed_sans",
            "no client certificate is asked for (set client_auth_type)",
        ));
    }
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            // Without a CA, Go verifies client certificates against the
            // system's roots; so here.
            let (certs, from) = match ca {
                Some(certs) => (certs, "tls_server_config.client_ca_file"),
                None => (system_roots()?, "tls_server_config.client_auth_type"),
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| WebConfigError::key(from, format!("{e}")))?;
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
            let verifier = verifier
                .build()
                .map_err(|e| WebConfigError::key(from, format!("{e}")))?;
            match tls.client_allowed_sans {
                Some(sans) => builder.with_client_cert_verifier(Arc::new(
                    crate::http::sans::AllowedSans::new(verifier, sans),
                )),
                None => builder.with_client_cert_verifier(verifier),
            }
        }
        // Go's meaning: a certificate is asked for (and, but for
        // RequestClientCert, required), and not verified against any CA;
        // the client still proves it holds the certificate's key.
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
            let any: Arc<dyn rustls::server::danger::ClientCertVerifier> =
                Arc::new(crate::http::sans::AnyClientCert::new(
                    auth_type != "RequestClientCert",
                    Arc::clone(&provider),
                ));
            match tls.client_allowed_sans {
                Some(sans) => builder.with_client_cert_verifier(Arc::new(
                    crate::http::sans::AllowedSans::new(any, sans),
                )),
                None => builder.with_client_cert_verifier(any),
            }
        }
        other => {
            return Err(WebConfigError::key(
                "tls_server_config.client_auth_type",
                format!("invalid ClientAuth: {other}"),
            ))
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        WebConfigError::key(
            "tls_server_config",
            format!("certificate and key do not go together: {e}"),
        )
    })?;
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(false);
    Ok(config)
}
