//! The output folder's lock: one writer at a time. `dssim run` (and `merge`) take an
//! exclusive lock (`fs4`, an OS file lock: released when the process ends, however it ends)
//! on `dssim.lock` in the folder before touching anything in it, and write who holds it
//! (process id, host, command line) into the file. A second writer is refused at once,
//! naming the folder and the holder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::LabError;

/// The lock file's name inside an output folder.
pub const FILE: &str = "dssim.lock";

/// A held lock; dropping it releases the folder.
#[derive(Debug)]
pub struct FolderLock {
    file: File,
    path: PathBuf,
}

impl FolderLock {
    /// Creates `dir` if needed and locks it for `command`, or says who holds it.
    pub fn acquire(dir: &Path, command: &[String]) -> Result<FolderLock, LabError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LabError::io(dir, format!("cannot create the output folder: {e}")))?;
        let path = dir.join(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LabError::io(&path, format!("cannot open the folder's lock: {e}")))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = (&file).take(4096).read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LabError::Run(format!(
                    "{} is in use by another dssim ({}); wait for it to finish, or use another --out",
                    dir.display(),
                    if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.replace('\n', ", ")
                    }
                )));
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(LabError::io(&path, format!("cannot lock the folder: {e}")))
            }
        }
        let who = format!(
            "pid {} on host {}\ncommand: {}\n",
            std::process::id(),
            host(),
            command.join(" ")
        );
        let _ = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(who.as_bytes()))
            .and_then(|_| file.flush());
        Ok(FolderLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

/// This machine's name, for the holder line.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
