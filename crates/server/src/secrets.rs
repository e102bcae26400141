//! Secrets at rest and in transit: the master key (from `KEYGATE_MASTER_KEY` or a 0600 file),
//! AES-256-GCM encryption of AccessKey secrets and of imported keys' plaintexts, argon2id
//! password hashes, and session tokens (stored as digests).

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{bail, Context};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use keygate_core::random::{fill_random, random_bytes_32, random_string_from};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// File name of the master key inside the data directory.
pub const MASTER_KEY_FILE_NAME: &str = "master.key";
/// Environment variable that holds the master key (64 hex characters).
pub const MASTER_KEY_ENVIRONMENT_VARIABLE: &str = "KEYGATE_MASTER_KEY";

/// Subkey purpose of AccessKey secrets.
const SECRET_ENCRYPTION_PURPOSE: &str = "secret-encryption";
/// Subkey purpose of imported API keys' plaintexts.
const LEGACY_KEY_PURPOSE: &str = "legacy-api-keys";

/// The deployment's master key. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MasterKey(..)")
    }
}

fn parse_master_key_hex(text: &str) -> anyhow::Result<MasterKey> {
    let bytes = hex::decode(text.trim()).context("the master key must be 64 hex characters")?;
    let array: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("the master key must be 32 bytes (64 hex characters)"))?;
    Ok(MasterKey(array))
}

impl MasterKey {
    /// From the environment value when given, else from `file` (created with mode 0600
    /// when missing, made readable by its owner only when found looser).
    pub fn load_or_create(environment_value: Option<&str>, file: &Path) -> anyhow::Result<MasterKey> {
        if let Some(value) = environment_value.filter(|value| !value.trim().is_empty()) {
            return parse_master_key_hex(value).context(MASTER_KEY_ENVIRONMENT_VARIABLE);
        }
        if file.exists() {
            restrict_to_owner(file);
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            return parse_master_key_hex(&text).with_context(|| format!("master key file {}", file.display()));
        }
        let key = MasterKey(random_bytes_32());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut handle = options.open(file).with_context(|| format!("creating {}", file.display()))?;
        handle.write_all(hex::encode(key.0).as_bytes())?;
        handle.sync_all()?;
        Ok(key)
    }

    /// From 64 hex characters (`KEYGATE_MASTER_KEY`).
    pub fn from_hex(text: &str) -> anyhow::Result<MasterKey> {
        parse_master_key_hex(text).context(MASTER_KEY_ENVIRONMENT_VARIABLE)
    }

    /// A key for tests and in-memory use.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(bytes)
    }

    /// A purpose-bound subkey, so one master key never keys two algorithms.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"keygate-subkey-v1\0");
        hasher.update(purpose.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.0);
        hasher.finalize().into()
    }

    fn cipher(&self, purpose: &str) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.derive(purpose)).expect("32-byte key")
    }

    /// AES-256-GCM under the subkey of `purpose`: 12-byte random nonce followed by the
    /// ciphertext and tag.
    fn seal(&self, purpose: &str, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce);
        let ciphertext =
            self.cipher(purpose).encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes()).expect("AES-GCM encryption does not fail");
        let mut output = nonce.to_vec();
        output.extend(ciphertext);
        output
    }

    fn open(&self, purpose: &str, sealed: &[u8]) -> anyhow::Result<SecretString> {
        if sealed.len() < 12 + 16 {
            bail!("ciphertext too short");
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        let plaintext = self
            .cipher(purpose)
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| anyhow::anyhow!("ciphertext does not decrypt under this master key"))?;
        Ok(SecretString::from(String::from_utf8(plaintext).context("decrypted secret is not UTF-8")?))
    }

    /// Encrypts an AccessKey secret (AES-256-GCM).
    pub fn encrypt(&self, plaintext: &str) -> Vec<u8> {
        self.seal(SECRET_ENCRYPTION_PURPOSE, plaintext)
    }

    pub fn decrypt(&self, sealed: &[u8]) -> anyhow::Result<SecretString> {
        self.open(SECRET_ENCRYPTION_PURPOSE, sealed)
    }

    /// Encrypts the plaintext of an imported (legacy) API key, under a subkey of its own:
    /// an AccessKey ciphertext copied into a key row does not decrypt as a key.
    pub fn encrypt_legacy_key(&self, plaintext: &str) -> Vec<u8> {
        self.seal(LEGACY_KEY_PURPOSE, plaintext)
    }

    pub fn decrypt_legacy_key(&self, sealed: &[u8]) -> anyhow::Result<SecretString> {
        self.open(LEGACY_KEY_PURPOSE, sealed)
    }
}

/// Takes the group's and others' permissions off an existing master key file: one copied
/// into place by hand or restored from a backup is often 0644, and whoever reads it can
/// decrypt every AccessKey secret. A file keygate may not change (a read-only mount,
/// another owner's file) is left as it is, with a warning, rather than refusing to start.
fn restrict_to_owner(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::metadata(file) else { return };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return;
        }
        let shown = format!("{mode:o}");
        match std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(
                file = %file.display(),
                mode = %shown,
                "the master key file was readable by others; it is now readable by its owner only"
            ),
            Err(error) => tracing::warn!(
                file = %file.display(),
                mode = %shown,
                %error,
                "the master key file is readable by others and its mode could not be changed"
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// An argon2id hash (PHC string) of a password.
pub fn hash_password(password: &SecretString) -> String {
    let mut salt_bytes = [0u8; 16];
    fill_random(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt");
    Argon2::default().hash_password(password.expose_secret().as_bytes(), &salt).expect("argon2 hashing does not fail").to_string()
}

/// Checks a password against a stored hash. With no stored hash (unknown user) it still
/// verifies against a fixed hash, so that both cases take the same time.
pub fn verify_password(password: &SecretString, stored_hash: Option<&str>) -> bool {
    static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY_HASH.get_or_init(|| hash_password(&SecretString::from("keygate-timing-equaliser".to_string())));
    let (hash_text, real) = match stored_hash {
        Some(hash) => (hash, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash_text) else { return false };
    let matches = Argon2::default().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok();
    matches && real
}

/// A random password of 24 characters, for the first start.
pub fn generate_password() -> SecretString {
    SecretString::from(random_string_from(keygate_core::base62::ALPHABET, 24))
}

/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "kgs-";

/// A new session token (shown to the client once) and its digest (stored).
pub fn generate_session_token() -> (SecretString, [u8; 32]) {
    let token = format!("{SESSION_TOKEN_PREFIX}{}", random_string_from(keygate_core::base62::ALPHABET, 43));
    let digest = session_token_digest(&token);
    (SecretString::from(token), digest)
}

pub fn session_token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The name of a session in the audit log: the first 8 hex characters of its token's
/// digest, which identify it without revealing anything of the token.
pub fn session_label(token_digest: &[u8; 32]) -> String {
    hex::encode(&token_digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_and_detects_the_wrong_key() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = key.encrypt("secret-value");
        assert_eq!(key.decrypt(&sealed).unwrap().expose_secret(), "secret-value");
        assert!(MasterKey::from_bytes([8; 32]).decrypt(&sealed).is_err());
        assert!(!sealed.windows(12).any(|window| window == b"secret-value"));
    }

    #[test]
    fn legacy_key_ciphertexts_and_access_key_ciphertexts_do_not_mix() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = key.encrypt_legacy_key("sk-0123456789abcdef");
        assert_eq!(key.decrypt_legacy_key(&sealed).unwrap().expose_secret(), "sk-0123456789abcdef");
        assert!(key.decrypt(&sealed).is_err());
        assert!(key.decrypt_legacy_key(&key.encrypt("secret-value")).is_err());
        assert!(MasterKey::from_bytes([8; 32]).decrypt_legacy_key(&sealed).is_err());
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let password = SecretString::from("correct horse".to_string());
        let hash = hash_password(&password);
        assert!(verify_password(&password, Some(&hash)));
        assert!(!verify_password(&SecretString::from("wrong".to_string()), Some(&hash)));
        assert!(!verify_password(&password, None));
    }

    #[test]
    fn master_key_file_is_created_private_and_reloaded() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(MASTER_KEY_FILE_NAME);
        let created = MasterKey::load_or_create(None, &path).unwrap();
        let loaded = MasterKey::load_or_create(None, &path).unwrap();
        assert_eq!(created.derive("x"), loaded.derive("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let reloaded = MasterKey::load_or_create(None, &path).unwrap();
            assert_eq!(reloaded.derive("x"), created.derive("x"));
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "a 0644 master key is tightened");
        }
        let from_environment = MasterKey::load_or_create(Some(&"ab".repeat(32)), &path).unwrap();
        assert_ne!(from_environment.derive("x"), created.derive("x"));
    }
}
