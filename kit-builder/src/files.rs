//! Files written whole or not at all: temp file in the same directory, fsync, rename, fsync the directory.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically with the given Unix mode. With `overwrite == false` an existing
/// file is an `AlreadyExists` error and is left untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> io::Result<()> {
    if !overwrite && path.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "file exists (use --force to replace it)",
        ));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".stella-tmp-")
        .tempfile_in(dir)?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Bytes written between two background syncs of a growing file.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// Writes a growing file back to disk while it is still being written: every 32 MiB a background thread
/// calls `fdatasync`, so the final `fsync` before the rename only waits for the last few MiB instead of
/// the whole file. Errors are left to that final `fsync`, which reports them.
#[derive(Debug)]
pub struct Writeback {
    tx: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pending: u64,
}

impl Writeback {
    /// Starts the background thread for `file` (a second handle to it is kept).
    pub fn new(file: &fs::File) -> io::Result<Writeback> {
        let file = file.try_clone()?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Several requests may have queued up while the last sync ran: one sync serves them all.
                    while rx.try_recv().is_ok() {}
                    let _ = file.sync_data();
                }
            })?;
        Ok(Writeback {
            tx: Some(tx),
            thread: Some(thread),
            pending: 0,
        })
    }

    /// Notes `n` more bytes written; asks for a background sync every 32 MiB.
    pub fn wrote(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= WRITEBACK_EVERY {
            self.pending = 0;
            if let Some(tx) = &self.tx {
                let _ = tx.send(());
            }
        }
    }

    /// Waits for the background thread to finish its last sync.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.stop();
    }
}
