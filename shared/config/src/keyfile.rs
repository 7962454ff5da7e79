//! Key files in the data directory: the generated secret and master key.
//!
//! A key file is written whole or not at all: the bytes go to a temporary file in
//! the same directory, are synced, and are then hard-linked to the final name, which
//! fails if another process got there first (two instances starting at once must
//! agree on one key, so the loser reads the winner's). A crash at any moment leaves
//! either no key file or a complete one; never the empty file that a plain
//! create-then-write leaves behind, which would then be used as a key.
//!
//! Reading refuses an empty, short or garbled file with its path named, so that a
//! damaged key stops the start-up instead of silently becoming a new identity.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Reads a key file holding base64 of at least `min_len` bytes.
pub fn read(path: &Path, min_len: usize) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        bail!(
            "the key file {} is empty (a crash while it was written?); restore it from your backup",
            path.display()
        );
    }
    let bytes = STANDARD
        .decode(trimmed)
        .with_context(|| format!("the key file {} is not valid base64", path.display()))?;
    if bytes.len() < min_len {
        bail!(
            "the key file {} holds {} bytes, fewer than the {min_len} required; restore it from your backup",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes)
}

/// Whether [`create`] wrote the file or found one already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Written,
    AlreadyThere,
}

/// Writes `bytes` (as base64, mode 0600) to `path` atomically, unless a file is
/// already there.
pub fn create(path: &Path, bytes: &[u8]) -> anyhow::Result<Created> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("KUJIRA_DATA_DIR: cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".key-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .context("cannot restrict the key file's permissions")?;
    tmp.write_all(STANDARD.encode(bytes).as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write a key into {}", dir.display()))?;
    // A hard link, unlike rename, fails when the name exists: the first key wins.
    let created = match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => Created::Written,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Created::AlreadyThere,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    drop(tmp);
    // The new name is only durable once the directory is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(created)
}

/// Reads the key file at `path`, generating `len` random bytes into it first when
/// there is none.
pub fn load_or_generate(path: &Path, len: usize) -> anyhow::Result<(Vec<u8>, Created)> {
    if path.exists() {
        return Ok((read(path, len)?, Created::AlreadyThere));
    }
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    let created = create(path, &bytes)?;
    // Read back what won, ours or a concurrent starter's.
    Ok((read(path, len)?, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k");
        let (a, created) = load_or_generate(&path, 32).unwrap();
        assert_eq!((a.len(), created), (32, Created::Written));
        let (b, again) = load_or_generate(&path, 32).unwrap();
        assert_eq!((a, again), (b, Created::AlreadyThere));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        create(&path, &[1; 32]).unwrap();
        assert_eq!(create(&path, &[2; 32]).unwrap(), Created::AlreadyThere);
        assert_eq!(read(&path, 32).unwrap(), vec![1; 32]);
    }

    #[test]
    fn empty_short_and_garbled_files_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [("empty", ""), ("short", "AAAA"), ("garbled", "not base64!")] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            let err = format!("{:#}", read(&path, 32).unwrap_err());
            assert!(err.contains(path.to_str().unwrap()), "{name}: {err}");
            // And generation does not paper over it.
            assert!(load_or_generate(&path, 32).is_err(), "{name}");
        }
    }
}
