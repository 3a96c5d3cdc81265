//! Ticket QR payloads: `base64url(json claims) "." base64url(Ed25519
//! signature over those JSON bytes)`. Anyone with the published public key
//! can verify a ticket offline; a payload whose version is behind the
//! ticket's (after a transfer) verifies but no longer checks in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Longest payload accepted or produced.
pub const PAYLOAD_BYTES_MAX: usize = 2048;

/// What a ticket's QR code says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrClaims {
    /// The ticket.
    pub ticket_id: String,
    /// Its event.
    pub event_id: String,
    /// Its seat.
    pub seat_id: String,
    /// Who holds it.
    pub holder: String,
    /// The ticket version this payload was issued for.
    pub version: u32,
}

/// Why a payload does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    /// Not two base64url parts, or the claims are not ours.
    #[error("malformed ticket payload")]
    Malformed,
    /// The signature does not match.
    #[error("bad ticket signature")]
    BadSignature,
    /// Over [`PAYLOAD_BYTES_MAX`].
    #[error("ticket payload too long")]
    TooLong,
    /// The public key is not a valid Ed25519 key.
    #[error("bad public key")]
    BadKey,
    /// The QR code could not be made.
    #[error("QR rendering failed: {0}")]
    Qr(String),
}

/// Signs ticket payloads with the gateway's Ed25519 key.
pub struct TicketSigner {
    key: SigningKey,
}

impl TicketSigner {
    /// The key made from a 32-byte seed (kept in the configuration).
    pub fn from_seed(seed: [u8; 32]) -> TicketSigner {
        TicketSigner { key: SigningKey::from_bytes(&seed) }
    }

    /// The public key, base64url without padding.
    pub fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// The signed payload of `claims`.
    pub fn sign(&self, claims: &QrClaims) -> String {
        let json = serde_json::to_vec(claims).expect("claims serialize");
        let signature = self.key.sign(&json);
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&json), URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// The claims of a payload this key signed.
    pub fn verify(&self, payload: &str) -> Result<QrClaims, TicketError> {
        verify_key(&self.key.verifying_key(), payload)
    }
}

/// Verifies `payload` with a published public key (what a scanner does offline).
pub fn verify_with_key(public_key_b64: &str, payload: &str) -> Result<QrClaims, TicketError> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD
        .decode(public_key_b64)
        .map_err(|_| TicketError::BadKey)?
        .try_into()
        .map_err(|_| TicketError::BadKey)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| TicketError::BadKey)?;
    verify_key(&key, payload)
}

fn verify_key(key: &VerifyingKey, payload: &str) -> Result<QrClaims, TicketError> {
    if payload.len() > PAYLOAD_BYTES_MAX {
        return Err(TicketError::TooLong);
    }
    let (body, sig) = payload.split_once('.').ok_or(TicketError::Malformed)?;
    let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| TicketError::Malformed)?;
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TicketError::Malformed)?
        .try_into()
        .map_err(|_| TicketError::Malformed)?;
    key.verify(&json, &Signature::from_bytes(&sig)).map_err(|_| TicketError::BadSignature)?;
    serde_json::from_slice(&json).map_err(|_| TicketError::Malformed)
}

/// The QR code of `payload` as an SVG image.
pub fn qr_svg(payload: &str) -> Result<String, TicketError> {
    if payload.len() > PAYLOAD_BYTES_MAX {
        return Err(TicketError::TooLong);
    }
    let code = qrcode::QrCode::new(payload.as_bytes()).map_err(|e| TicketError::Qr(e.to_string()))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(256, 256).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> QrClaims {
        QrClaims {
            ticket_id: "tkt-1-9".into(),
            event_id: "evt-1-2".into(),
            seat_id: "Floor-A-1".into(),
            holder: "alice".into(),
            version: 1,
        }
    }

    #[test]
    fn payloads_round_trip_and_verify_offline() {
        let signer = TicketSigner::from_seed([7; 32]);
        let payload = signer.sign(&claims());
        assert_eq!(signer.verify(&payload).unwrap(), claims());
        assert_eq!(verify_with_key(&signer.public_key_b64(), &payload).unwrap(), claims());
    }

    #[test]
    fn tampering_another_key_and_garbage_fail() {
        let signer = TicketSigner::from_seed([7; 32]);
        let payload = signer.sign(&claims());
        let (body, sig) = payload.split_once('.').unwrap();
        let other = QrClaims { holder: "mallory".into(), ..claims() };
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(signer.verify(&format!("{forged_body}.{sig}")), Err(TicketError::BadSignature));
        let mut bad_sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bad_sig[0] ^= 1;
        assert_eq!(
            signer.verify(&format!("{body}.{}", URL_SAFE_NO_PAD.encode(bad_sig))),
            Err(TicketError::BadSignature)
        );
        let stranger = TicketSigner::from_seed([8; 32]);
        assert_eq!(stranger.verify(&payload), Err(TicketError::BadSignature));
        assert_eq!(signer.verify("garbage"), Err(TicketError::Malformed));
        assert_eq!(signer.verify(&"a".repeat(PAYLOAD_BYTES_MAX + 1)), Err(TicketError::TooLong));
        assert_eq!(verify_with_key("short", &payload), Err(TicketError::BadKey));
    }

    #[test]
    fn qr_codes_are_svg_and_differ_per_payload() {
        let signer = TicketSigner::from_seed([7; 32]);
        let a = qr_svg(&signer.sign(&claims())).unwrap();
        let b = qr_svg(&signer.sign(&QrClaims { version: 2, ..claims() })).unwrap();
        assert!(a.starts_with("<?xml") || a.starts_with("<svg"), "{}", &a[..40]);
        assert!(a.contains("<svg"));
        assert_ne!(a, b);
    }
}
