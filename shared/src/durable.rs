//! Files that survive a power cut once written: data synced, and the
//! directory entry too.
//!
//! `fsync` on a file makes its bytes durable, not its name: until the
//! directory holding it is synced as well, a crash can lose a file that an
//! already committed event points at. So a new directory is synced into its
//! parent, and a renamed file into its directory.

use std::io::{self, Write};
use std::path::Path;

/// Syncs the directory `dir` (its entries: names created or renamed in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows has no directory handles to sync; NTFS journals names.
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and any missing parents, syncing each new one into its
/// parent.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` so that a crash leaves either no file or the
/// whole one: written to a hidden temporary name, synced, renamed into
/// place, and the directory synced.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("no parent directory"))?;
    create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::other("no file name"))?;
    let temporary = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&temporary, path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_into_new_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("snapshots/2026-11-25/evt.jpg");
        write_file(&path, b"jpeg").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"jpeg");
        write_file(&path, b"again").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"again");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir")).expect("list").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left");
    }
}
