//! Replacing a file atomically: a crash while saving never destroys the previous file.
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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
/// Such strays do not pile up: every save first removes the temporary files of the
/// same target (exactly `.<name>.<digits>.<digits>.tmp`, regular files) that no
/// living writer holds. A writer holds a lock on its temporary file for as long as it
/// writes, so a save in progress in another thread or process is never disturbed,
/// and no other file is ever touched.
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
    remove_stale_temps(dir, path);
    let (temp, file, _writing) = create_temp(dir, path).map_err(|e| SaveError::from(e).in_file(path))?;
    // The handle (and with it the lock) lives until the rename is done.
    let result = write_and_sync(file, write).and_then(|_file| Ok(fs::rename(&temp, path)?));
    if let Err(e) = result {
        // The temporary file is useless now; failing to remove it changes nothing.
        let _ = fs::remove_file(&temp);
        return Err(e.in_file(path));
    }
    sync_dir(dir);
    Ok(())
}

/// The name of `path`'s file as its temporary files spell it.
fn target_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The names of the temporary files this process is writing: on file systems whose
/// locks belong to a process rather than to an open file, the lock alone would not
/// keep one thread's clean-up from another thread's save.
static WRITING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A temporary file name registered in [`WRITING`] until dropped.
struct Writing(String);

impl Writing {
    fn new(name: String) -> Self {
        WRITING.lock().unwrap_or_else(|e| e.into_inner()).push(name.clone());
        Writing(name)
    }

    fn contains(name: &str) -> bool {
        WRITING.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|n| n == name)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut names = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = names.iter().position(|n| *n == self.0) {
            names.swap_remove(at);
        }
    }
}

/// Creates `.<name>.<pid>.<n>.tmp` beside `path`, never reusing an existing file, and
/// locks it for as long as the returned handle lives.
fn create_temp(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, File, Writing)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target_name(path);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_name = format!(".{name}.{}.{n}.tmp", std::process::id());
        let temp = dir.join(&temp_name);
        let writing = Writing::new(temp_name);
        let file = match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        // Blocks only while another process's clean-up holds the lock it took between
        // our creation and this call; that clean-up then removed the file, so take a
        // new name. Once locked, the file is ours until the handle is dropped.
        match file.lock() {
            Ok(()) if temp.exists() => return Ok((temp, file, writing)),
            Ok(()) => continue,
            // A file system without locks: the file is still usable.
            Err(_) => return Ok((temp, file, writing)),
        }
    }
}

/// Whether `file_name` is a temporary file of the target `name`:
/// `.<name>.<digits>.<digits>.tmp` (the process id and a counter).
fn is_temp_of(file_name: &str, name: &str) -> bool {
    let middle = file_name
        .strip_prefix('.')
        .and_then(|f| f.strip_prefix(name))
        .and_then(|f| f.strip_prefix('.'))
        .and_then(|f| f.strip_suffix(".tmp"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    middle.and_then(|m| m.split_once('.')).is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Removes the temporary files of `path` that interrupted saves left in `dir`.
///
/// Only files named by [`create_temp`] for this target, regular files, that no save
/// is writing: not registered in [`WRITING`] by this process, and not locked (a save
/// holds its lock while it writes, and the lock of a process that died is released
/// with it). Best effort: a file that cannot be inspected, locked or removed stays.
fn remove_stale_temps(dir: &Path, path: &Path) {
    let name = target_name(path);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if !is_temp_of(file_name, &name) || Writing::contains(file_name) {
            continue;
        }
        let temp = entry.path();
        if !fs::symlink_metadata(&temp).is_ok_and(|m| m.file_type().is_file()) {
            continue;
        }
        let Ok(file) = File::open(&temp) else {
            continue;
        };
        if file.try_lock().is_ok() {
            // Removed while locked, so that a writer that created it a moment ago and
            // waits for the lock sees it gone (see `create_temp`).
            let _ = fs::remove_file(&temp);
        }
    }
}

/// Writes through `write`, flushes and syncs; returns the file still open (and locked).
fn write_and_sync<F>(file: File, write: F) -> Result<File, SaveError>
where
    F: FnOnce(&mut dyn Write) -> Result<(), SaveError>,
{
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh empty directory under the system's temporary directory.
    fn empty_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nn-core-atomic-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert!(is_temp_of(".model.ckpt.123.0.tmp", "model.ckpt"));
        assert!(is_temp_of(".a.5.12.tmp", "a"));
        for other in [
            ".model.ckpt.123.tmp",     // one number only
            ".model.ckpt.123.0.1.tmp", // another target's (`model.ckpt.123`)
            ".model.ckpt.x.0.tmp",
            ".model.ckpt.123.0.tmp~",
            "model.ckpt.123.0.tmp",
            ".model.ckpt..0.tmp",
            ".other.123.0.tmp",
            ".model.ckpt.-1.0.tmp",
        ] {
            assert!(!is_temp_of(other, "model.ckpt"), "{other}");
        }
        assert!(!is_temp_of(".a.5.12.tmp", "a.5"));
    }

    #[test]
    fn a_save_removes_stale_temps_of_its_target_and_nothing_else() {
        let dir = empty_dir("stale");
        let target = dir.join("model.ckpt");
        let stale = [".model.ckpt.4000001.0.tmp", ".model.ckpt.77.3.tmp", ".model.ckpt.1.999999999999.tmp"];
        let kept = [
            ".model.ckpt.77.tmp",
            ".model.ckpt.77.3.tmp.bak",
            ".other.ckpt.77.3.tmp",
            ".model.ckpt.old.77.3.tmp",
            "model.ckpt.77.3.tmp",
            "notes.txt",
        ];
        for name in stale.iter().chain(&kept) {
            fs::write(dir.join(name), vec![7u8; 1000]).unwrap();
        }
        // A directory and a symbolic link with a temporary file's name stay too.
        fs::create_dir(dir.join(".model.ckpt.5.5.tmp")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("notes.txt"), dir.join(".model.ckpt.6.6.tmp")).unwrap();

        write_file_atomically(&target, |w| Ok(w.write_all(b"new")?)).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let mut expected: Vec<String> = kept.iter().map(|s| s.to_string()).collect();
        expected.extend([".model.ckpt.5.5.tmp".to_string(), "model.ckpt".to_string()]);
        #[cfg(unix)]
        expected.push(".model.ckpt.6.6.tmp".to_string());
        expected.sort();
        assert_eq!(names(&dir), expected);
        assert_eq!(fs::read(dir.join("notes.txt")).unwrap(), vec![7u8; 1000]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_temp_file_being_written_is_left_alone() {
        let dir = empty_dir("busy");
        let target = dir.join("model.ckpt");
        // Another writer holds its temporary file locked, as a save in progress does.
        let busy = dir.join(".model.ckpt.4000002.0.tmp");
        let held = OpenOptions::new().write(true).create_new(true).open(&busy).unwrap();
        held.lock().unwrap();
        // One of this process's own saves in progress (registered, not locked here).
        let own = format!(".model.ckpt.{}.999999.tmp", std::process::id());
        fs::write(dir.join(&own), b"partial").unwrap();
        let writing = Writing::new(own.clone());

        write_file_atomically(&target, |w| Ok(w.write_all(b"new")?)).unwrap();
        assert!(busy.exists() && dir.join(&own).exists(), "{:?}", names(&dir));

        // Once both writers are gone, the next save removes them.
        drop((held, writing));
        write_file_atomically(&target, |w| Ok(w.write_all(b"newer")?)).unwrap();
        assert_eq!(names(&dir), ["model.ckpt"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
