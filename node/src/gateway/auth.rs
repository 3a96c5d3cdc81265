//! User tokens: HS256 JWTs whose `sub` is the user and whose `roles` claim
//! grants `admin` or `scanner`. Expiry is checked against the time the
//! caller passes in, so tests and the gateway agree on one clock.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Longest user id a token may carry.
pub const SUBJECT_BYTES_MAX: usize = 128;

/// The claims of a user token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Roles (`admin`, `scanner`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    #[serde(default)]
    pub iat: u64,
}

impl Claims {
    /// Whether the token grants `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Not a JWT, or not one of ours in shape.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match our key.
    #[error("bad token signature")]
    BadSignature,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
    /// The subject is empty, too long or has control characters.
    #[error("token subject is not a valid user id")]
    BadSubject,
}

/// Issues and verifies user tokens with one HMAC key, and the waiting
/// room's tokens with keys derived from it (so a queue or access token can
/// never pass for a user token, nor one for the other).
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    purposes: [(EncodingKey, DecodingKey); 2],
}

/// What a derived-key token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A place in a waiting room.
    Queue = 0,
    /// Admission to shop an event.
    Access = 1,
}

fn derive_key(secret: &[u8], label: &str) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

impl Auth {
    /// Tokens signed with `secret`.
    pub fn new(secret: &[u8]) -> Auth {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against the caller's clock.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let purpose = |label: &str| {
            let key = derive_key(secret, label);
            (EncodingKey::from_secret(&key), DecodingKey::from_secret(&key))
        };
        Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            purposes: [purpose("ticketing/queue-token/v1"), purpose("ticketing/access-token/v1")],
        }
    }

    /// Signs `claims` with the key of `purpose`.
    pub(crate) fn sign<T: Serialize>(&self, purpose: Purpose, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.purposes[purpose as usize].0)
            .expect("HS256 encoding of plain claims cannot fail")
    }

    /// The claims of a token signed with the key of `purpose` (expiry is the
    /// caller's to check).
    pub(crate) fn open<T: serde::de::DeserializeOwned>(&self, purpose: Purpose, token: &str) -> Result<T, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<T>(token, &self.purposes[purpose as usize].1, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                _ => AuthError::Malformed,
            })
    }

    /// A token for `user` with `roles`, valid for `ttl_secs` from `now_secs`.
    pub fn issue(&self, user: &str, roles: &[String], now_secs: u64, ttl_secs: u64) -> String {
        let claims = Claims { sub: user.to_string(), roles: roles.to_vec(), exp: now_secs + ttl_secs, iat: now_secs };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail")
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                _ => AuthError::Malformed,
            })?;
        let claims = data.claims;
        if claims.exp <= now_secs {
            return Err(AuthError::Expired);
        }
        if claims.sub.is_empty() || claims.sub.len() > SUBJECT_BYTES_MAX || claims.sub.chars().any(char::is_control) {
            return Err(AuthError::BadSubject);
        }
        Ok(claims)
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn issued_tokens_verify_with_their_roles() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef");
        let token = auth.issue("alice", &["admin".into()], NOW, 60);
        let claims = auth.verify(&token, NOW + 59).unwrap();
        assert_eq!(claims.sub, "alice");
        assert!(claims.has_role("admin"));
        assert!(!claims.has_role("scanner"));
    }

    #[test]
    fn expired_forged_and_garbage_tokens_are_refused() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef");
        let other = Auth::new(b"another-key-another-key-another-key");
        let token = auth.issue("alice", &[], NOW, 60);
        assert_eq!(auth.verify(&token, NOW + 60), Err(AuthError::Expired));
        assert_eq!(auth.verify(&other.issue("alice", &[], NOW, 60), NOW), Err(AuthError::BadSignature));
        assert_eq!(auth.verify("not.a.token", NOW), Err(AuthError::Malformed));
        assert_eq!(auth.verify("", NOW), Err(AuthError::Malformed));
        // A payload edited after signing (roles added) no longer verifies.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = Claims { sub: "alice".into(), roles: vec!["admin".into()], exp: NOW + 60, iat: NOW };
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let forged = format!("{}.{}.{}", parts[0], body, parts[2]);
        assert_eq!(auth.verify(&forged, NOW), Err(AuthError::BadSignature));
        assert_eq!(auth.verify(&auth.issue("", &[], NOW, 60), NOW), Err(AuthError::BadSubject));
        assert_eq!(auth.verify(&auth.issue(&"x".repeat(129), &[], NOW, 60), NOW), Err(AuthError::BadSubject));
    }

    #[test]
    fn bearer_headers_are_parsed() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer   "), None);
    }
}
