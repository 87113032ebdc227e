//! Signing keys: algorithms, key material and key sets, parsed from JWKS
//! documents, PEM public keys and HMAC secrets.
//!
//! A key is chosen by `kid` and must fit the token's `alg`: an RSA key never
//! verifies an HMAC token, an HMAC secret never verifies an RSA token, and a
//! JWK's own `alg` (when present) narrows it to that one algorithm. Header
//! fields such as `jwk`, `jku`, `x5u` and `x5c` never supply keys: only the
//! provider's configured sources do.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Sha256, Sha384, Sha512};

use super::rsa_ifma::{RsaHash, RsaPublic};

/// The JWS algorithms the gateway can verify. `none` is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// Exact, case-sensitive names (RFC 7518); anything else is refused.
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn kind(self) -> KeyKind {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => KeyKind::Hmac,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                KeyKind::Rsa
            }
            Alg::ES256 => KeyKind::EcP256,
            Alg::ES384 => KeyKind::EcP384,
            Alg::EdDSA => KeyKind::Ed25519,
        }
    }

    /// Minimum HMAC secret length (RFC 7518 section 3.2: at least the hash size).
    pub fn min_secret_len(self) -> usize {
        match self {
            Alg::HS384 => 48,
            Alg::HS512 => 64,
            _ => 32,
        }
    }
}

/// Key material. `Debug` never prints it. Public keys are parsed once
/// (EC and Ed25519 when loaded, RSA per algorithm on first use) and kept:
/// a parsed RSA key also keeps its Montgomery constants, about a quarter of
/// what a verification would otherwise cost.
enum Material {
    Hmac(Box<HmacKeys>),
    Rsa(Box<RsaKey>),
    Ec {
        kind: KeyKind,
        point: Vec<u8>,
        parsed: ParsedPublicKey,
    },
    Ed25519 {
        x: Vec<u8>,
        parsed: ParsedPublicKey,
    },
}

struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
    /// One parsed key per algorithm (aws-lc binds a parsed key to one),
    /// built when a token first asks for it; `None` when the modulus and
    /// exponent do not form a usable key.
    parsed: [OnceLock<Option<ParsedPublicKey>>; 6],
    /// The AVX-512 IFMA form of the key (about 2.4 times faster than aws-lc
    /// here), built when the key is loaded (its constants and self-check
    /// take 0.1-0.3 ms, kept off the request path); `None` where the CPU or
    /// the key size does not allow it. Used only for algorithms aws-lc
    /// accepted the key for, so the key policy stays aws-lc's.
    vector: Option<RsaPublic>,
}

impl RsaKey {
    fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        let Some((i, params, hash, pss)) = rsa_params(alg) else {
            return false;
        };
        let parsed = self.parsed[i].get_or_init(|| {
            RsaPublicKeyComponents {
                n: self.n.as_slice(),
                e: self.e.as_slice(),
            }
            .to_parsed_public_key(params)
            .ok()
        });
        let Some(parsed) = parsed else {
            return false;
        };
        match &self.vector {
            Some(v) if pss => v.verify_pss(hash, message, signature),
            Some(v) => v.verify_pkcs1(hash, message, signature),
            None => parsed.verify_sig(message, signature).is_ok(),
        }
    }
}

impl Material {
    fn ec(kind: KeyKind, point: Vec<u8>) -> Result<Material, String> {
        let alg: &'static sig::EcdsaVerificationAlgorithm = if kind == KeyKind::EcP256 {
            &sig::ECDSA_P256_SHA256_FIXED
        } else {
            &sig::ECDSA_P384_SHA384_FIXED
        };
        let parsed = ParsedPublicKey::new(alg, &point)
            .map_err(|_| "the EC public key is not a point on its curve".to_string())?;
        Ok(Material::Ec {
            kind,
            point,
            parsed,
        })
    }

    fn ed25519(x: Vec<u8>) -> Result<Material, String> {
        let parsed = ParsedPublicKey::new(&sig::ED25519, &x)
            .map_err(|_| "the Ed25519 public key is not valid".to_string())?;
        Ok(Material::Ed25519 { x, parsed })
    }
}

/// One HMAC secret, keyed for each hash (boxed: much larger than the
/// others). Each holds the hash states after the secret's inner and outer
/// pad blocks: a verification copies one (a few hundred bytes on the
/// stack) and hashes only the token.
struct HmacKeys {
    h256: Hmac<Sha256>,
    h384: Hmac<Sha384>,
    h512: Hmac<Sha512>,
    len: usize,
}

impl HmacKeys {
    fn new(secret: &[u8]) -> Option<HmacKeys> {
        Some(HmacKeys {
            h256: Hmac::new_from_slice(secret).ok()?,
            h384: Hmac::new_from_slice(secret).ok()?,
            h512: Hmac::new_from_slice(secret).ok()?,
            len: secret.len(),
        })
    }
}

/// Whether `signature` is `key`'s MAC of `message` (compared in constant
/// time, all of its bytes).
fn mac_matches<M: Mac + Clone>(key: &M, message: &[u8], signature: &[u8]) -> bool {
    let mut mac = key.clone();
    mac.update(message);
    mac.verify_slice(signature).is_ok()
}

/// One verification key.
pub struct Key {
    pub kid: Option<String>,
    /// A JWK's `alg`: when set, the key verifies only this algorithm.
    pub alg: Option<Alg>,
    material: Material,
    /// Identifies the key across refreshes (kid + material), so a cached
    /// token can be dropped when its key leaves the set.
    pub fingerprint: u64,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("kind", &self.kind())
            .field("alg", &self.alg)
            .field("material", &"<redacted>")
            .finish()
    }
}

impl Key {
    fn new(kid: Option<String>, alg: Option<Alg>, material: Material) -> Key {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(kid.as_deref().unwrap_or("").as_bytes());
        ctx.update(&[0]);
        match &material {
            Material::Hmac(h) => {
                // Fingerprint the secret through its own MAC, never the bytes.
                ctx.update(b"hmac");
                let mut mac = h.h256.clone();
                mac.update(b"gwanmun-fingerprint");
                ctx.update(&mac.finalize().into_bytes());
            }
            Material::Rsa(r) => {
                ctx.update(b"rsa");
                ctx.update(&r.n);
                ctx.update(&r.e);
            }
            Material::Ec { point, .. } => {
                ctx.update(b"ec");
                ctx.update(point);
            }
            Material::Ed25519 { x, .. } => {
                ctx.update(b"ed");
                ctx.update(x);
            }
        }
        let d = ctx.finish();
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&d.as_ref()[..8]);
        Key {
            kid,
            alg,
            material,
            fingerprint: u64::from_be_bytes(fp),
        }
    }

    /// An HMAC secret (at least 32 bytes).
    pub fn hmac(kid: Option<String>, secret: &[u8]) -> Result<Key, String> {
        if secret.len() < 32 {
            return Err("an HMAC secret must be at least 32 bytes".into());
        }
        let keys = HmacKeys::new(secret).ok_or("the HMAC secret could not be keyed")?;
        Ok(Key::new(kid, None, Material::Hmac(Box::new(keys))))
    }

    pub fn kind(&self) -> KeyKind {
        match &self.material {
            Material::Hmac(_) => KeyKind::Hmac,
            Material::Rsa(_) => KeyKind::Rsa,
            Material::Ec { kind, .. } => *kind,
            Material::Ed25519 { .. } => KeyKind::Ed25519,
        }
    }

    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Alg) -> bool {
        if self.alg.is_some_and(|a| a != alg) || self.kind() != alg.kind() {
            return false;
        }
        match &self.material {
            Material::Hmac(h) => h.len >= alg.min_secret_len(),
            _ => true,
        }
    }

    /// Verifies `signature` over `message`; false on any mismatch, including
    /// a key that does not fit `alg`.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        // `fits` has matched the key's kind to the algorithm's.
        match &self.material {
            Material::Hmac(h) => match alg {
                Alg::HS256 => mac_matches(&h.h256, message, signature),
                Alg::HS384 => mac_matches(&h.h384, message, signature),
                _ => mac_matches(&h.h512, message, signature),
            },
            Material::Rsa(r) => r.verify(alg, message, signature),
            Material::Ec { parsed, .. } | Material::Ed25519 { parsed, .. } => {
                parsed.verify_sig(message, signature).is_ok()
            }
        }
    }
}

/// For each RSA algorithm: its slot in `RsaKey::parsed`, aws-lc's
/// parameters, and the hash and padding (PSS or not) for the vector path.
fn rsa_params(alg: Alg) -> Option<(usize, &'static sig::RsaParameters, RsaHash, bool)> {
    Some(match alg {
        Alg::RS256 => (0, &sig::RSA_PKCS1_2048_8192_SHA256, RsaHash::Sha256, false),
        Alg::RS384 => (1, &sig::RSA_PKCS1_2048_8192_SHA384, RsaHash::Sha384, false),
        Alg::RS512 => (2, &sig::RSA_PKCS1_2048_8192_SHA512, RsaHash::Sha512, false),
        Alg::PS256 => (3, &sig::RSA_PSS_2048_8192_SHA256, RsaHash::Sha256, true),
        Alg::PS384 => (4, &sig::RSA_PSS_2048_8192_SHA384, RsaHash::Sha384, true),
        Alg::PS512 => (5, &sig::RSA_PSS_2048_8192_SHA512, RsaHash::Sha512, true),
        _ => return None,
    })
}

/// An immutable set of keys; replaced whole on refresh.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Arc<Key>>,
    /// Sorted: a cached token's key is looked up on every request it
    /// makes, in a set of a few keys (a binary search over one slice, not
    /// a SipHash of the fingerprint).
    fingerprints: Vec<u64>,
}

/// The outcome of looking a token's key up.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Keys that fit the token's `kid` and `alg`, to try in order.
    Found(Vec<&'a Arc<Key>>),
    /// A key with this kid exists, but none fits the token's `alg`.
    WrongType,
    /// No key with this kid (or, without a kid, no key for this alg).
    Unknown,
}

impl KeySet {
    pub fn new(keys: Vec<Key>) -> KeySet {
        let keys: Vec<Arc<Key>> = keys.into_iter().map(Arc::new).collect();
        let mut fingerprints: Vec<u64> = keys.iter().map(|k| k.fingerprint).collect();
        fingerprints.sort_unstable();
        KeySet { keys, fingerprints }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, fingerprint: u64) -> bool {
        self.fingerprints.binary_search(&fingerprint).is_ok()
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// At most this many keys are tried for one token without a usable kid.
const MAX_CANDIDATES: usize = 8;

/// Looks a key up across several sets (remote first, then static). With a
/// kid, only keys carrying that kid are considered when any set has one;
/// otherwise keys without a kid (configured PEM keys and secrets) are tried.
pub fn lookup<'a>(sets: &[&'a KeySet], kid: Option<&str>, alg: Alg) -> Lookup<'a> {
    let all = || sets.iter().flat_map(|s| s.keys.iter());
    if let Some(kid) = kid {
        let mut named = all().filter(|k| k.kid.as_deref() == Some(kid)).peekable();
        if named.peek().is_some() {
            let fit: Vec<_> = named.filter(|k| k.fits(alg)).take(MAX_CANDIDATES).collect();
            return if fit.is_empty() {
                Lookup::WrongType
            } else {
                Lookup::Found(fit)
            };
        }
        let anonymous: Vec<_> = all()
            .filter(|k| k.kid.is_none() && k.fits(alg))
            .take(MAX_CANDIDATES)
            .collect();
        return if anonymous.is_empty() {
            Lookup::Unknown
        } else {
            Lookup::Found(anonymous)
        };
    }
    let fit: Vec<_> = all().filter(|k| k.fits(alg)).take(MAX_CANDIDATES).collect();
    if fit.is_empty() {
        Lookup::Unknown
    } else {
        Lookup::Found(fit)
    }
}

// ---- JWK / JWKS ----

/// JWK members are base64url; padding is tolerated there (some issuers add
/// it), unlike in tokens.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    key_ops: Option<Vec<String>>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parses one JWK (public signature keys only; `oct` keys are refused:
/// symmetric secrets come from the `secret` setting, never a key document).
pub fn parse_jwk(v: &serde_json::Value) -> Result<Key, String> {
    let j: RawJwk = serde_json::from_value(v.clone()).map_err(|e| format!("invalid JWK: {e}"))?;
    if j.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("JWK `use` is not `sig`".into());
    }
    if j.key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|o| o == "verify"))
    {
        return Err("JWK `key_ops` does not allow `verify`".into());
    }
    let alg = match j.alg.as_deref() {
        None => None,
        Some(a) => Some(Alg::parse(a).ok_or_else(|| format!("JWK `alg` `{a}` is not supported"))?),
    };
    let b64 = |name: &str, v: &Option<String>| -> Result<Vec<u8>, String> {
        let s = v
            .as_deref()
            .ok_or_else(|| format!("JWK member `{name}` is missing"))?;
        JWK_B64
            .decode(s)
            .map_err(|_| format!("JWK member `{name}` is not base64url"))
    };
    let material = match j.kty.as_str() {
        "RSA" => rsa_material(b64("n", &j.n)?, b64("e", &j.e)?)?,
        "EC" => {
            let (kind, len) = match j.crv.as_deref() {
                Some("P-256") => (KeyKind::EcP256, 32),
                Some("P-384") => (KeyKind::EcP384, 48),
                other => return Err(format!("unsupported EC curve {other:?}")),
            };
            let (x, y) = (b64("x", &j.x)?, b64("y", &j.y)?);
            if x.len() != len || y.len() != len {
                return Err("EC coordinates have the wrong length".into());
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Material::ec(kind, point)?
        }
        "OKP" => {
            if j.crv.as_deref() != Some("Ed25519") {
                return Err(format!("unsupported OKP curve {:?}", j.crv));
            }
            let x = b64("x", &j.x)?;
            if x.len() != 32 {
                return Err("Ed25519 key has the wrong length".into());
            }
            Material::ed25519(x)?
        }
        "oct" => return Err("symmetric (`oct`) keys are not accepted from a key set".into()),
        other => return Err(format!("unsupported key type `{other}`")),
    };
    let key = Key::new(j.kid, alg, material);
    if let Some(a) = alg {
        if a.kind() != key.kind() {
            return Err(format!("JWK `alg` {} does not fit its key type", a.name()));
        }
    }
    Ok(key)
}

/// Most keys accepted from one JWKS document.
pub const MAX_JWKS_KEYS: usize = 100;

/// Parses a JWKS document. Unusable keys are skipped (and reported); a
/// document with no usable key is an error, so it never replaces a good set.
pub fn parse_jwks(bytes: &[u8]) -> Result<(Vec<Key>, Vec<String>), String> {
    #[derive(Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JWKS document: {e}"))?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, v) in doc.keys.iter().take(MAX_JWKS_KEYS).enumerate() {
        match parse_jwk(v) {
            Ok(k) => keys.push(k),
            Err(e) => skipped.push(format!("keys[{i}]: {e}")),
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "the JWKS document has no usable signing key ({})",
            skipped.join("; ")
        ));
    }
    Ok((keys, skipped))
}

/// Drops leading zero bytes, keeping at least one.
pub(super) fn strip_zeros(mut b: &[u8]) -> &[u8] {
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    b
}

fn rsa_material(n: Vec<u8>, e: Vec<u8>) -> Result<Material, String> {
    let (n, e) = (strip_zeros(&n).to_vec(), strip_zeros(&e).to_vec());
    if n.len() < 256 || n.len() > 1024 {
        return Err("RSA keys must have 2048 to 8192 bits".into());
    }
    if e.is_empty() || e.len() > 4 {
        return Err("RSA exponent is out of range".into());
    }
    Ok(Material::Rsa(Box::new(RsaKey {
        vector: RsaPublic::new(&n, &e),
        n,
        e,
        parsed: Default::default(),
    })))
}

// ---- PEM / DER ----

/// Parses every `PUBLIC KEY` / `RSA PUBLIC KEY` block of a PEM text.
pub fn parse_pem(text: &str, kid: Option<&str>) -> Result<Vec<Key>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or("unterminated PEM header")?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start
            .find(&end_marker)
            .ok_or_else(|| format!("missing `{end_marker}`"))?;
        let b64: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|_| format!("PEM block `{label}` is not valid base64"))?;
        let material = match label {
            "PUBLIC KEY" => spki(&der)?,
            "RSA PUBLIC KEY" => rsa_public_key(&der)?,
            l if l.contains("PRIVATE KEY") => {
                return Err("this is a private key: configure the public key only".into())
            }
            l => {
                return Err(format!(
                    "unsupported PEM block `{l}`: expected `PUBLIC KEY`"
                ))
            }
        };
        out.push(Key::new(kid.map(str::to_owned), None, material));
        rest = &body_start[body_end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err("no `-----BEGIN PUBLIC KEY-----` block found".into());
    }
    Ok(out)
}

/// A minimal DER reader: enough for SubjectPublicKeyInfo.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn read(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let bad = || "malformed DER public key".to_string();
        let (&t, rest) = self.0.split_first().ok_or_else(bad)?;
        if t != tag {
            return Err(bad());
        }
        let (&l0, mut rest) = rest.split_first().ok_or_else(bad)?;
        let len = if l0 < 0x80 {
            l0 as usize
        } else {
            let n = (l0 & 0x7f) as usize;
            if n == 0 || n > 3 || rest.len() < n {
                return Err(bad());
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | b as usize;
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(bad());
        }
        let (content, tail) = rest.split_at(len);
        self.0 = tail;
        Ok(content)
    }
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn spki(der: &[u8]) -> Result<Material, String> {
    let mut outer = Der(der);
    let mut seq = Der(outer.read(0x30)?);
    let mut alg = Der(seq.read(0x30)?);
    let oid = alg.read(0x06)?;
    let bits = seq.read(0x03)?;
    let (&unused, key) = bits.split_first().ok_or("empty public key")?;
    if unused != 0 {
        return Err("malformed public key bit string".into());
    }
    if oid == OID_RSA {
        rsa_public_key(key)
    } else if oid == OID_EC {
        let curve = alg.read(0x06)?;
        let (kind, len) = if curve == OID_P256 {
            (KeyKind::EcP256, 65)
        } else if curve == OID_P384 {
            (KeyKind::EcP384, 97)
        } else {
            return Err("unsupported EC curve: expected P-256 or P-384".into());
        };
        if key.len() != len || key[0] != 4 {
            return Err("expected an uncompressed EC point".into());
        }
        Material::ec(kind, key.to_vec())
    } else if oid == OID_ED25519 {
        if key.len() != 32 {
            return Err("Ed25519 key has the wrong length".into());
        }
        Material::ed25519(key.to_vec())
    } else {
        Err("unsupported public key type: expected RSA, EC P-256/P-384 or Ed25519".into())
    }
}

fn rsa_public_key(der: &[u8]) -> Result<Material, String> {
    let mut outer = Der(der);
    let mut seq = Der(outer.read(0x30)?);
    let n = seq.read(0x02)?;
    let e = seq.read(0x02)?;
    rsa_material(n.to_vec(), e.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PUB: &str = include_str!("../../tests/fixtures/jwt/rsa1.pub.pem");
    const EC_PUB: &str = include_str!("../../tests/fixtures/jwt/ec1.pub.pem");
    const ED_PUB: &str = include_str!("../../tests/fixtures/jwt/ed1.pub.pem");
    const RSA_KEY: &str = include_str!("../../tests/fixtures/jwt/rsa1.key.pem");

    #[test]
    fn pem_keys_parse_to_their_kind() {
        assert_eq!(
            parse_pem(RSA_PUB, None).expect("rsa")[0].kind(),
            KeyKind::Rsa
        );
        assert_eq!(
            parse_pem(EC_PUB, None).expect("ec")[0].kind(),
            KeyKind::EcP256
        );
        assert_eq!(
            parse_pem(ED_PUB, None).expect("ed")[0].kind(),
            KeyKind::Ed25519
        );
        assert!(parse_pem(RSA_KEY, None)
            .expect_err("private")
            .contains("private"));
    }

    #[test]
    fn jwk_and_pem_of_one_key_match() {
        let jwk: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/jwt/rsa1.jwk.json"))
                .expect("json");
        let a = parse_jwk(&jwk).expect("jwk");
        let b = &parse_pem(RSA_PUB, Some("rsa1")).expect("pem")[0];
        assert_eq!(a.fingerprint, b.fingerprint);
    }

    #[test]
    fn a_key_set_knows_its_keys_by_fingerprint() {
        let keys: Vec<Key> = (1u8..=9)
            .map(|i| Key::hmac(None, &[i; 32]).expect("hmac"))
            .collect();
        let prints: Vec<u64> = keys.iter().map(|k| k.fingerprint).collect();
        let outsider = Key::hmac(None, &[42u8; 32]).expect("hmac").fingerprint;
        let set = KeySet::new(keys);
        assert!(prints.iter().all(|f| set.contains(*f)));
        assert!(!set.contains(outsider));
        assert!(!KeySet::default().contains(prints[0]));
    }

    #[test]
    fn hmac_tags_match_aws_lc_and_nothing_else() {
        use aws_lc_rs::hmac;
        // RFC 4231, test case 6 (a key longer than the hash's block).
        let rfc = Key::hmac(None, &[0xaa; 131]).expect("hmac");
        let msg = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let tag = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
        let tag: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&tag[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        assert!(rfc.verify(Alg::HS256, msg, &tag));
        for (alg, reference) in [
            (Alg::HS256, hmac::HMAC_SHA256),
            (Alg::HS384, hmac::HMAC_SHA384),
            (Alg::HS512, hmac::HMAC_SHA512),
        ] {
            for secret in [vec![7u8; 64], (0..200u8).collect::<Vec<u8>>()] {
                let key = Key::hmac(None, &secret).expect("hmac");
                let msg = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9";
                let good = hmac::sign(&hmac::Key::new(reference, &secret), msg);
                let good = good.as_ref();
                assert!(key.verify(alg, msg, good), "{alg:?}");
                assert!(!key.verify(alg, &msg[1..], good), "{alg:?} other message");
                assert!(
                    !key.verify(alg, msg, &good[..good.len() - 1]),
                    "{alg:?} truncated"
                );
                assert!(
                    !key.verify(alg, msg, &[good, &[0]].concat()),
                    "{alg:?} extended"
                );
                let mut flipped = good.to_vec();
                flipped[0] ^= 1;
                assert!(!key.verify(alg, msg, &flipped), "{alg:?} flipped");
                assert!(!key.verify(alg, msg, &[]), "{alg:?} empty");
            }
        }
    }

    #[test]
    fn keys_fit_only_their_algorithms() {
        let rsa = &parse_pem(RSA_PUB, None).expect("rsa")[0];
        assert!(rsa.fits(Alg::RS256) && rsa.fits(Alg::PS512));
        assert!(!rsa.fits(Alg::HS256) && !rsa.fits(Alg::ES256));
        let h = Key::hmac(None, &[7u8; 32]).expect("hmac");
        assert!(h.fits(Alg::HS256) && !h.fits(Alg::HS512) && !h.fits(Alg::RS256));
        assert!(Key::hmac(None, b"short").is_err());
        assert_eq!(Alg::parse("none"), None);
        assert_eq!(Alg::parse("hs256"), None);
    }

    #[test]
    fn one_rsa_key_verifies_each_rsa_algorithm() {
        // On AVX-512 IFMA CPUs the first key takes the vector path; the
        // second is kept on aws-lc, so both paths are checked here.
        let vector = parse_pem(RSA_PUB, None).expect("rsa").remove(0);
        let mut aws_lc = parse_pem(RSA_PUB, None).expect("rsa").remove(0);
        let Material::Rsa(r) = &mut aws_lc.material else {
            panic!("an RSA key");
        };
        r.vector = None;
        for key in [&vector, &aws_lc] {
            rsa_algorithms_on(key);
        }
        let Material::Rsa(r) = &vector.material else {
            panic!("an RSA key");
        };
        assert_eq!(
            r.vector.is_some(),
            RsaPublic::new(&r.n, &r.e).is_some(),
            "the vector path is taken wherever it can run"
        );
    }

    fn rsa_algorithms_on(key: &Key) {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let signer = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).expect("private key");
        for (alg, ours) in [
            (Algorithm::RS256, Alg::RS256),
            (Algorithm::RS384, Alg::RS384),
            (Algorithm::RS512, Alg::RS512),
            (Algorithm::PS256, Alg::PS256),
            (Algorithm::PS512, Alg::PS512),
        ] {
            let token =
                encode(&Header::new(alg), &serde_json::json!({"sub": "a"}), &signer).expect("sign");
            let (input, sig) = token.rsplit_once('.').expect("three parts");
            let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(sig)
                .expect("b64");
            // Twice: the second check runs on the key parsed by the first.
            for _ in 0..2 {
                assert!(key.verify(ours, input.as_bytes(), &sig), "{ours:?}");
            }
            let other = if ours == Alg::RS256 {
                Alg::RS384
            } else {
                Alg::RS256
            };
            assert!(
                !key.verify(other, input.as_bytes(), &sig),
                "{ours:?} as {other:?}"
            );
            assert!(!key.verify(ours, b"tampered", &sig), "{ours:?}");
        }
    }

    #[test]
    fn public_keys_are_checked_when_loaded() {
        let on_curve = &parse_pem(EC_PUB, None).expect("ec")[0];
        assert_eq!(on_curve.kind(), KeyKind::EcP256);
        // Same length and form, but not a point on P-256: refused at load,
        // not at the first token.
        let mut bad = vec![4u8];
        bad.extend_from_slice(&[1u8; 64]);
        let x = JWK_B64.encode(&bad[1..33]);
        let y = JWK_B64.encode(&bad[33..]);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        assert!(parse_jwk(&jwk).expect_err("off curve").contains("curve"));
    }

    #[test]
    fn lookup_by_kid_refuses_wrong_type() {
        let jwk: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/jwt/rsa1.jwk.json"))
                .expect("json");
        let set = KeySet::new(vec![parse_jwk(&jwk).expect("jwk")]);
        assert!(matches!(
            lookup(&[&set], Some("rsa1"), Alg::RS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            lookup(&[&set], Some("rsa1"), Alg::HS256),
            Lookup::WrongType
        ));
        assert!(matches!(
            lookup(&[&set], Some("../../etc/passwd"), Alg::RS256),
            Lookup::Unknown
        ));
        let dbg = format!("{:?}", set);
        assert!(dbg.contains("redacted"));
    }
}
