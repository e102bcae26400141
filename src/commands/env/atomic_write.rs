//! Replacing a user's startup file without ever leaving half of it: the new text goes to a
//! temporary file beside the real one (through a symlink, to the file it points to), gets
//! the old file's mode and owner, is synced, and is renamed over the old one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The file a path names, following symlinks (dotfile managers link `~/.bashrc`), so that
/// the rename replaces the target rather than the link. A missing file is itself.
fn real_target(path: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => std::fs::canonicalize(path)
            .with_context(|| format!("{} is a symbolic link to a file that does not exist; fix or remove the link", path.display())),
        _ => Ok(path.to_path_buf()),
    }
}

/// The existing file's permissions and owner, to give the new one.
#[cfg(unix)]
struct Keep {
    mode: u32,
    owner: Option<(u32, u32)>,
}

#[cfg(unix)]
fn what_to_keep(target: &Path) -> anyhow::Result<Keep> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(target) {
        Ok(metadata) => Ok(Keep { mode: metadata.mode() & 0o7777, owner: Some((metadata.uid(), metadata.gid())) }),
        // A new file that will hold a key: readable by its owner only.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Keep { mode: 0o600, owner: None }),
        Err(error) => Err(error).with_context(|| format!("reading {}", target.display())),
    }
}

#[cfg(unix)]
fn apply(temporary: &Path, keep: &Keep) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::set_permissions(temporary, std::fs::Permissions::from_mode(keep.mode))?;
    if let Some((uid, gid)) = keep.owner {
        let created = std::fs::metadata(temporary)?;
        if (created.uid(), created.gid()) != (uid, gid) {
            // E.g. run as root on another user's file: never hand the file to root.
            std::os::unix::fs::chown(temporary, Some(uid), Some(gid))
                .context("cannot give the new file the old one's owner; run as that user instead")?;
        }
    }
    Ok(())
}

/// Writes `content` to `path` atomically, keeping the old file's mode and owner (a new
/// file gets mode 0600). Creates missing parent directories (fish's `~/.config/fish`).
pub fn replace_file(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let target = real_target(path)?;
    let Some(directory) = target.parent().filter(|directory| !directory.as_os_str().is_empty()) else {
        bail!("{} has no directory", target.display());
    };
    std::fs::create_dir_all(directory).with_context(|| format!("creating {}", directory.display()))?;
    #[cfg(unix)]
    let keep = what_to_keep(&target)?;
    let file_name = target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = directory.join(format!(".{file_name}.keygate-{}.tmp", std::process::id()));
    let written = (|| -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(content)?;
        file.sync_all()?;
        #[cfg(unix)]
        apply(&temporary, &keep)?;
        std::fs::rename(&temporary, &target)?;
        // The rename itself survives a crash once the directory is synced (best effort).
        if let Ok(directory_handle) = std::fs::File::open(directory) {
            let _ = directory_handle.sync_all();
        }
        Ok(())
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("writing {}", target.display()));
    }
    Ok(())
}

/// The permission bits of a file, when it exists (Unix).
#[cfg(unix)]
pub fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|metadata| metadata.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
pub fn mode_of(_path: &Path) -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_kept_and_a_new_file_is_private() {
        let directory = tempfile::tempdir().unwrap();
        let existing = directory.path().join(".bashrc");
        std::fs::write(&existing, "old\n").unwrap();
        std::fs::set_permissions(&existing, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        replace_file(&existing, b"new\n").unwrap();
        assert_eq!((std::fs::read_to_string(&existing).unwrap().as_str(), mode_of(&existing)), ("new\n", Some(0o640)));

        let fresh = directory.path().join("nested").join("config.fish");
        replace_file(&fresh, b"x\n").unwrap();
        assert_eq!(mode_of(&fresh), Some(0o600));
        let leftovers: Vec<_> = std::fs::read_dir(directory.path())
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_symlinked_file_is_replaced_behind_its_link() {
        let directory = tempfile::tempdir().unwrap();
        let real = directory.path().join("dotfiles-bashrc");
        std::fs::write(&real, "old\n").unwrap();
        let link = directory.path().join(".bashrc");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        replace_file(&link, b"new\n").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
    }
}
