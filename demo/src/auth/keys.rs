//! The signing key of the auth service: an ECDSA P-256 key (ES256) kept in
//! the service's database so tokens stay valid across restarts, its JWK
//! with an RFC 7638 thumbprint as `kid`, and compact JWS signing.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::store::Db;

/// The private key; its `Debug` never shows key material.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    kid: String,
    jwk: Value,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the newest stored key, or makes and stores one.
    pub fn load_or_create(db: &Db) -> anyhow::Result<SigningKey> {
        let rng = SystemRandom::new();
        let stored: Option<Vec<u8>> = db
            .run(|c| {
                let mut st =
                    c.prepare("SELECT pkcs8 FROM signing_keys ORDER BY created_at DESC LIMIT 1")?;
                let mut rows = st.query([])?;
                match rows.next()? {
                    Some(row) => Ok(Some(row.get(0)?)),
                    None => Ok(None),
                }
            })
            .map_err(|_| anyhow::anyhow!("cannot read the signing key"))?;
        let pkcs8 = match stored {
            Some(p) => p,
            None => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key"))?;
                let bytes = doc.as_ref().to_vec();
                let now = crate::store::now_unix();
                db.run(|c| {
                    c.execute(
                        "INSERT INTO signing_keys (pkcs8, created_at) VALUES (?1, ?2)",
                        rusqlite::params![bytes, now],
                    )
                })
                .map_err(|_| anyhow::anyhow!("cannot store the signing key"))?;
                bytes
            }
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|_| anyhow::anyhow!("stored signing key is not a P-256 PKCS#8 key"))?;
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            anyhow::bail!("unexpected P-256 public key length {}", point.len());
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // RFC 7638: SHA-256 over the required members in lexicographic order.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ));
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "alg": "ES256", "use": "sig",
        });
        Ok(SigningKey {
            pair,
            kid,
            jwk,
            rng,
        })
    }

    /// `{"keys": [...]}` for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// A compact ES256 JWS over `claims`, with this key's `kid`.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok(input)
    }

    /// `n` random bytes as unpadded base64url (refresh tokens, ids).
    pub fn random_token(&self, n: usize) -> anyhow::Result<String> {
        random_token(&self.rng, n)
    }
}

pub fn random_token(rng: &SystemRandom, n: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// Random lower-case hex (user ids: safe in any header).
pub fn random_hex(n: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// SHA-256 as hex: refresh tokens are stored only as their hash.
pub fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
