//! Password hashing with Argon2id (the crate's defaults: 19 MiB, 2 passes),
//! run on tokio's blocking threads because one hash takes tens of
//! milliseconds of CPU.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

/// A hash of a password nobody has, so a login for an unknown email costs
/// as much as one for a known email.
const DECOY: &str = "correct horse battery staple (decoy)";

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let phc = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        Ok(phc.to_string())
    })
    .await?
}

/// Whether `password` matches the stored PHC string; with no stored hash
/// the work is done on a decoy and the answer is false.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let result = tokio::task::spawn_blocking(move || {
        static DECOY_HASH: OnceLock<Option<String>> = OnceLock::new();
        let phc = match &stored {
            Some(s) => s.as_str(),
            None => match DECOY_HASH.get_or_init(|| hash_sync(DECOY)) {
                Some(h) => h.as_str(),
                None => return false,
            },
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && stored.is_some()
    })
    .await;
    result.unwrap_or(false)
}

fn hash_sync(password: &str) -> Option<String> {
    let salt = SaltString::encode_b64(b"gwanmun-demo-decoy").ok()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}
