//! Replacing a file atomically: a crash while saving never destroys the previous file.
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::SaveError;

/// Writes a file through `write`, replacing `path` only once the new contents are
/// complete and on disk.
///
/// The steps: write to a new temporary file in the same directory (so the rename
/// cannot cross file systems), flush and `fsync` it, rename it over `path` (atomic on
/// POSIX file systems and NTFS), then `fsync` the directory so the rename itself is
/// durable. If `write` or any step fails, the temporary file is removed and `path` is
/// untouched; if the process dies midway, `path` still holds the previous file and at
/// worst a stray `.<name>.<pid>.<n>.tmp` file is left beside it.
///
/// [`save_safetensors`](super::save_safetensors) and
/// [`Checkpoint::save`](super::Checkpoint::save) use it; it is public so that other
/// files (a training history, a log) can be replaced the same way.
///
/// ```
/// use std::io::Write;
/// # let dir = std::env::temp_dir().join(format!("nn-core-doc-atomic-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("notes.txt");
/// nn_core::io::write_file_atomically(&path, |w| Ok(w.write_all(b"epoch 3")?)).unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"epoch 3");
///
/// // A writer that fails halfway leaves the previous contents in place.
/// let failed = nn_core::io::write_file_atomically(&path, |w| {
///     w.write_all(b"epo")?;
///     Err(std::io::Error::other("disk full").into())
/// });
/// assert!(failed.is_err());
/// assert_eq!(std::fs::read(&path).unwrap(), b"epoch 3");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_file_atomically<F>(path: &Path, write: F) -> Result<(), SaveError>
where
    F: FnOnce(&mut dyn Write) -> Result<(), SaveError>,
{
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let (temp, file) = create_temp(dir, path).map_err(|e| SaveError::from(e).in_file(path))?;
    let result = write_and_sync(file, write).and_then(|()| Ok(fs::rename(&temp, path)?));
    if let Err(e) = result {
        // The temporary file is useless now; failing to remove it changes nothing.
        let _ = fs::remove_file(&temp);
        return Err(e.in_file(path));
    }
    sync_dir(dir);
    Ok(())
}

/// Creates `.<name>.<pid>.<n>.tmp` beside `path`, never reusing an existing file.
fn create_temp(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn write_and_sync<F>(file: File, write: F) -> Result<(), SaveError>
where
    F: FnOnce(&mut dyn Write) -> Result<(), SaveError>,
{
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

/// Makes a rename in `dir` durable. Best effort: the new file is already in place,
/// and some platforms and file systems cannot sync a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
