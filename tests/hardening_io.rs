//! Interrupted saves: processes killed while saving leave temporary files, and the next
//! save of the same target removes them, and nothing else.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nn_core::io::write_file_atomically;

/// Set in the child process: the file it saves in a loop.
const TARGET_VAR: &str = "NN_HARDENING_SAVE_LOOP_TARGET";
/// Bytes per save: large enough that most kills land inside a save.
const PAYLOAD: usize = 4 << 20;

fn payload(generation: u8) -> Vec<u8> {
    vec![generation; PAYLOAD]
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Not a test of its own: with `NN_HARDENING_SAVE_LOOP_TARGET` set (by the test below),
/// saves that file over and over until the process is killed.
#[test]
fn save_loop_child() {
    let Some(target) = std::env::var_os(TARGET_VAR) else {
        return;
    };
    let target = PathBuf::from(target);
    for generation in (1..=u8::MAX).cycle() {
        let bytes = payload(generation);
        write_file_atomically(&target, |w| Ok(w.write_all(&bytes)?)).unwrap();
    }
}

#[test]
fn saves_killed_midway_leave_temp_files_that_the_next_save_removes() {
    let dir = std::env::temp_dir().join(format!("nn-core-hardening-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("model.ckpt");
    std::fs::write(dir.join("notes.txt"), b"keep me").unwrap();
    std::fs::write(dir.join(".other.ckpt.1.1.tmp"), b"another target's").unwrap();

    let is_temp = |n: &String| n.starts_with(".model.ckpt.") && n.ends_with(".tmp");
    let exe = std::env::current_exe().unwrap();
    let kills = 20;
    let mut interrupted = 0;
    for k in 0..kills {
        let mut child = Command::new(&exe)
            // A filter, not `--exact`: the test keeps working inside a module.
            .args(["save_loop_child", "--test-threads", "1", "--quiet"])
            .env(TARGET_VAR, &target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + 37 * (k % 7)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Each child's first save removed what the previous one left: strays never
        // pile up.
        let strays = names(&dir).into_iter().filter(is_temp).count();
        assert!(strays <= 1, "after kill {}: {:?}", k + 1, names(&dir));
        interrupted += strays;
    }
    eprintln!("{interrupted} of {kills} kills interrupted a save");
    // Kills land mostly inside the write or the sync of a 4 MB file.
    assert!(interrupted >= 1, "no kill interrupted a save: {:?}", names(&dir));

    // Whatever survived is a complete file of one generation.
    if let Ok(bytes) = std::fs::read(&target) {
        assert_eq!(bytes.len(), PAYLOAD);
        assert!(bytes.iter().all(|&b| b == bytes[0]));
    }
    write_file_atomically(&target, |w| Ok(w.write_all(&payload(0))?)).unwrap();
    assert_eq!(names(&dir), [".other.ckpt.1.1.tmp", "model.ckpt", "notes.txt"]);
    assert_eq!(std::fs::read(&target).unwrap(), payload(0));
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}
