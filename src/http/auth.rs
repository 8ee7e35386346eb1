//! HTTP basic authentication against bcrypt hashes, as exporter-toolkit
//! does it: an unknown user costs the same bcrypt run as a known one, and
//! the outcome is decided without a data-dependent branch. Outcomes are
//! cached under a SHA-256 of the credentials and hash, so Prometheus
//! scraping every second does not pay a bcrypt run (tens of milliseconds)
//! each time.

use super::error::WebConfigError;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Cached outcomes kept at most; the cache starts over when full.
const CACHE_ENTRIES: usize = 1024;

pub struct Users {
    hashes: BTreeMap<String, String>,
    /// A hash of nothing, at the users' highest cost, checked for unknown
    /// users so they take as long as known ones.
    dummy: String,
    cache: Mutex<HashMap<[u8; 32], bool>>,
}

/// Username and password from an `Authorization: Basic` header value.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

impl Users {
    /// Checks every hash: a value that is not a bcrypt hash is refused,
    /// naming the user (not the hash).
    pub fn new(hashes: BTreeMap<String, String>) -> Result<Users, WebConfigError> {
        /// A salt and hash in bcrypt's encoding (OpenBSD's example hash),
        /// which no password is checked against but an unknown user's.
        const DUMMY_SALT_AND_HASH: &str = "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        let mut cost = None;
        for (user, hash) in &hashes {
            let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
                WebConfigError::key(
                    "basic_auth_users",
                    format!("the password of '{user}' is not a bcrypt hash ({e})"),
                )
            })?;
            cost = cost.max(Some(parts.get_cost()));
        }
        // The users' own cost, not a default: a dearer dummy would make
        // unknown names slower than wrong passwords, and so detectable.
        // Written, not hashed: hashing at the users' cost would hold the
        // module's load for seconds (cost 18 is 2^18 rounds), and checking
        // a password against it costs the same either way.
        let cost = cost.unwrap_or(bcrypt::DEFAULT_COST);
        let dummy = format!("$2b${cost:02}${DUMMY_SALT_AND_HASH}");
        Ok(Users {
            hashes,
            dummy,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn names(&self) -> Vec<&str> {
        self.hashes.keys().map(String::as_str).collect()
    }

    fn cache_key(&self, user: &str, password: &str) -> [u8; 32] {
        let hash = self.hashes.get(user).unwrap_or(&self.dummy);
        let mut h = Sha256::new();
        for part in [user, password, hash] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// The cached outcome for these credentials, if there is one.
    pub fn cached(&self, user: &str, password: &str) -> Option<bool> {
        let key = self.cache_key(user, password);
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(&key).copied()
    }

    /// Runs bcrypt (slow, by design) and caches the outcome.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let (known, hash) = match self.hashes.get(user) {
            Some(hash) => (1u8, hash.as_str()),
            None => (0u8, self.dummy.as_str()),
        };
        let matches = u8::from(bcrypt::verify(password, hash).unwrap_or(false));
        let ok: bool = (known & matches).ct_eq(&1).into();
        let key = self.cache_key(user, password);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, ok);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown user runs bcrypt at the users' own cost: not a default
    /// one, which would make unknown names measurably slower (a cost-12
    /// dummy took 4 times as long as a cost-10 user's wrong password).
    #[test]
    fn a_dear_cost_does_not_hold_up_the_load() {
        // exporter-toolkit's own test file has a cost-18 user: 2^18
        // rounds, seconds of bcrypt, were once spent at load to make the
        // dummy. It is written at that cost instead.
        let hashes = BTreeMap::from([(
            "bob".to_string(),
            "$2y$18$4VeFDzXIoPHKnKTU3O3GH.N.vZu06CVqczYZ8WvfzrddFU6tGqjR.".to_string(),
        )]);
        let users = Users::new(hashes).unwrap();
        assert!(users.dummy.starts_with("$2b$18$"));
    }

    #[test]
    fn unknown_users_cost_what_known_ones_cost() {
        let hashes = BTreeMap::from([("alice".to_string(), bcrypt::hash("pw", 5).unwrap())]);
        let users = Users::new(hashes).unwrap();
        let dummy: bcrypt::HashParts = users.dummy.parse().unwrap();
        assert_eq!(dummy.get_cost(), 5);
        // No password is the dummy's.
        assert!(!users.verify("nobody", ""));
        assert!(!users.verify("nobody", "pw"));
        assert!(!users.verify("bob", "pw"));
        assert!(!users.verify("alice", "wrong"));
        assert!(users.verify("alice", "pw"));
    }

    #[test]
    fn credentials_are_read_from_basic_authorization_only() {
        assert_eq!(
            basic_credentials("Basic YWxpY2U6cDpx"),
            Some(("alice".into(), "p:q".into()))
        );
        assert_eq!(
            basic_credentials("basic YWxpY2U6cHc="),
            Some(("alice".into(), "pw".into()))
        );
        assert_eq!(basic_credentials("Bearer YWxpY2U6cHc="), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic YWxpY2U="), None);
    }
}
