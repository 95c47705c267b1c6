//! The data directory's wire key: how each end of the socket proves it may
//! read the data directory.
//!
//! A socket path alone proves nothing: a process of another user can serve
//! a socket at a path the webserver is told to use and feed it forged
//! events. So every data directory has a secret, `DATA_DIR/wire.key` (32
//! random bytes as hex, mode 0600, made by whichever binary starts first),
//! and the handshake makes each side prove it holds it without sending it:
//! each `Hello` carries a fresh nonce, and each side then sends
//! `HMAC-SHA256(key, label ‖ its role ‖ peer's nonce ‖ own nonce)`. The
//! role in the MAC stops a proof from being reflected back; the nonces stop
//! replay. Only a process that can read the data directory can answer.
//!
//! This module does the file handling and the MAC; no socket I/O.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::frame::Role;

/// Bytes of key material.
pub const KEY_LEN: usize = 32;
/// Bytes of each handshake nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of a proof (HMAC-SHA256).
pub const PROOF_LEN: usize = 32;
/// Domain separation: a MAC made for this protocol is good for nothing else.
const LABEL: &[u8] = b"lookout wire handshake v1";

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot use wire key {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wire key {path} is not a regular file (a symbolic link?); remove it and restart")]
    NotAFile { path: PathBuf },
    #[error("wire key {path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("wire key {path} is damaged (expected {} hex digits); remove it and restart both binaries", KEY_LEN * 2)]
    Malformed { path: PathBuf },
}

/// The shared secret of one data directory. Never printed.
#[derive(Clone)]
pub struct WireKey([u8; KEY_LEN]);

impl std::fmt::Debug for WireKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WireKey(***)")
    }
}

/// A fresh random nonce for a `Hello`.
pub fn nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    nonce
}

impl WireKey {
    /// A new random key (the thread RNG is a CSPRNG seeded by the OS).
    pub fn generate() -> Self {
        let mut key = [0; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Reads the key at `path`, creating it first if there is none. Two
    /// processes starting at once agree: the file appears whole or not at
    /// all (written aside, then hard-linked into place, which fails if it
    /// exists).
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match Self::load(path) {
            Err(KeyError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let io_err = |source| KeyError::Io { path: path.to_path_buf(), source };
        let key = Self::generate();
        let aside = path.with_extension(format!("key.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&aside).and_then(|mut file| {
            file.write_all(format!("{}\n", hex(&key.0)).as_bytes())?;
            file.sync_all()
        });
        let linked = written.and_then(|()| std::fs::hard_link(&aside, path));
        let _ = std::fs::remove_file(&aside);
        match linked {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    let _ = crate::durable::sync_dir(dir);
                }
                tracing::info!(path = %path.display(), "created the data directory's wire key");
                Ok(key)
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Reads an existing key, refusing a link, a non-file, or a file other
    /// users can read.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io_err = |source| KeyError::Io { path: path.to_path_buf(), source };
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK);
        let mut file = options.open(path).map_err(|e| match e.raw_os_error() {
            #[cfg(unix)]
            Some(nix::libc::ELOOP) => KeyError::NotAFile { path: path.to_path_buf() },
            _ => io_err(e),
        })?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile { path: path.to_path_buf() });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o007 != 0 {
                return Err(KeyError::Exposed { path: path.to_path_buf(), mode });
            }
        }
        let mut text = String::new();
        Read::take(&mut file, 256).read_to_string(&mut text).map_err(io_err)?;
        parse_hex(text.trim()).map(Self).ok_or_else(|| KeyError::Malformed { path: path.to_path_buf() })
    }

    /// What a `sender` proves with: the MAC over both nonces, the
    /// receiver's first.
    pub fn proof(
        &self,
        sender: Role,
        receiver_nonce: &[u8; NONCE_LEN],
        sender_nonce: &[u8; NONCE_LEN],
    ) -> [u8; PROOF_LEN] {
        self.mac(sender, receiver_nonce, sender_nonce).finalize().into_bytes().into()
    }

    /// Whether `proof` is what `sender` must send (constant-time).
    pub fn verify(
        &self,
        sender: Role,
        receiver_nonce: &[u8; NONCE_LEN],
        sender_nonce: &[u8; NONCE_LEN],
        proof: &[u8],
    ) -> bool {
        self.mac(sender, receiver_nonce, sender_nonce).verify_slice(proof).is_ok()
    }

    fn mac(&self, sender: Role, receiver_nonce: &[u8], sender_nonce: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(LABEL);
        mac.update(match sender {
            Role::Publisher => b"P",
            Role::Subscriber => b"S",
        });
        mac.update(receiver_nonce);
        mac.update(sender_nonce);
        mac
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != KEY_LEN * 2 || !text.is_ascii() {
        return None;
    }
    let mut key = [0; KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_the_key_the_role_and_both_nonces() {
        let key = WireKey::generate();
        let (a, b) = (nonce(), nonce());
        let proof = key.proof(Role::Publisher, &a, &b);
        assert!(key.verify(Role::Publisher, &a, &b, &proof));
        assert!(!key.verify(Role::Subscriber, &a, &b, &proof), "a reflected proof is refused");
        assert!(!key.verify(Role::Publisher, &b, &a, &proof), "nonces are ordered");
        assert!(!key.verify(Role::Publisher, &nonce(), &b, &proof), "a replayed proof is refused");
        assert!(!WireKey::generate().verify(Role::Publisher, &a, &b, &proof), "another key is refused");
        assert!(!key.verify(Role::Publisher, &a, &b, &proof[..31]));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_made_once_private_and_refused_when_exposed_or_linked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wire.key");
        let made = WireKey::load_or_create(&path).expect("created");
        assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        let again = WireKey::load_or_create(&path).expect("loaded");
        assert_eq!(made.0, again.0, "a second start reuses the key");
        assert_eq!(format!("{made:?}"), "WireKey(***)");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(WireKey::load(&path), Err(KeyError::Exposed { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");

        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(matches!(WireKey::load_or_create(&link), Err(KeyError::NotAFile { .. })));

        std::fs::write(dir.path().join("bad.key"), "zz\n").expect("write");
        std::fs::set_permissions(dir.path().join("bad.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(WireKey::load(&dir.path().join("bad.key")), Err(KeyError::Malformed { .. })));
    }
}
