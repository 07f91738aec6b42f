//! The registry's directory and whether to trust it: made private to this user, refused when
//! another user owns it or others may write to it.

use std::path::Path;

use crate::error::{Code, Error, Result};

/// Makes `dir` and its missing parents, private to this user (mode 0700).
pub(super) fn make_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io_error(dir, e))
}

/// Refuses a directory of another user, or one that others may write to.
pub(super) fn check_private(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::symlink_metadata(dir).map_err(|e| io_error(dir, e))?;
        let refuse = |why: String| {
            Error::new(
                Code::PermissionDenied,
                format!(
                    "local registry {}: {why}: whoever can write there can plant nodes that calls go to; remove it, or give a directory of your own with --registry_address",
                    dir.display()
                ),
            )
        };
        if !meta.is_dir() {
            return Err(refuse("not a directory".into()));
        }
        if meta.uid() != uid() {
            return Err(refuse(format!(
                "it belongs to uid {}, not to this user (uid {})",
                meta.uid(),
                uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "others may write to it (mode {:o})",
                meta.mode() & 0o777
            )));
        }
    }
    Ok(())
}

/// This process's effective user id (0 where there are none).
pub(super) fn uid() -> u32 {
    #[cfg(unix)]
    return rustix::process::geteuid().as_raw();
    #[cfg(not(unix))]
    return 0;
}

/// The error of a file operation on `path`.
pub(super) fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        Code::Unavailable,
        format!("local registry {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_default_directory_of_another_user_or_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private(&open).unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(
            err.detail().contains("others may write to it (mode 777)"),
            "{err}"
        );
        let private = dir.path().join("private");
        make_private_dir(&private).unwrap();
        check_private(&private).unwrap();
        if uid() == 0 {
            rustix::fs::chown(&private, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
            let err = check_private(&private).unwrap_err();
            assert!(err.detail().contains("belongs to uid 65534"), "{err}");
        }
    }
}
