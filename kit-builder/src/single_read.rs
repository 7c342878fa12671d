//! The single-read build: every large payload is compressed while it is hashed, straight into the output
//! file, so its bytes are read once; the head (manifest and envelope, which need every digest) is inserted in
//! front of them at the end with `FALLOC_FL_INSERT_RANGE`.
//!
//! Lanes (one per core) take payloads in name order. The lane holding the oldest unfinished large payload
//! (the "head") writes its frames directly into the file; a lane that runs ahead spills its frames to a
//! temporary file in the output's directory, copied in (`copy_file_range`) when its turn comes. Spills
//! are capped at [`SPILL_LIMIT`] in total: a lane that would go beyond waits for its turn, so temporary disk
//! never exceeds the cap whatever the kit's size. Each large entry starts with a fixed-size header slot
//! (its tar path is its digest, known only at the end), written in place once the payload is hashed.
//! The output is the same, byte for byte, as the two-pass build's (see [`crate::layout`]).

use crate::build::{
    io_err, read_job, read_job_pipelined, run_lanes, BuildError, Hashed, Plan, READ_BUF,
};
use crate::files::Writeback;
use crate::layout::{self, FrameEncoder};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// The most frame bytes held in spill files at once (payloads compressed ahead of their turn).
pub const SPILL_LIMIT: u64 = 256 << 20;

/// Whether a range can be inserted at the front of a file in `dir` (ext4 and XFS can; tmpfs, btrfs, FAT and
/// most network file systems cannot, and builds there read their inputs twice).
pub(crate) fn supported(dir: &Path) -> bool {
    let probe = || -> io::Result<bool> {
        let mut f = tempfile::tempfile_in(dir)?;
        f.write_all(&[0u8; 2 * layout::HEAD_ALIGN])?;
        rustix::fs::fallocate(
            &f,
            rustix::fs::FallocateFlags::INSERT_RANGE,
            0,
            layout::HEAD_ALIGN as u64,
        )?;
        Ok(f.metadata()?.len() == 3 * layout::HEAD_ALIGN as u64)
    };
    probe().unwrap_or(false)
}

/// The output file while payloads are written into it.
pub(crate) struct Body {
    file: tempfile::NamedTempFile,
    dir: PathBuf,
    state: Mutex<State>,
    /// Signalled when the head moves, spill space frees up or a lane fails.
    turn: Condvar,
    /// A copy of `State::head` for lanes to check without the lock.
    head: AtomicUsize,
    failed: AtomicBool,
    /// At most this many bytes in spill files at once.
    spill_limit: u64,
}

struct State {
    /// Bytes in the file.
    len: u64,
    /// The first job not yet written (or skipped).
    head: usize,
    /// Jobs finished ahead of their turn.
    done: Vec<Option<Done>>,
    /// Bytes in spill files, not yet copied in.
    spilled: u64,
    /// Tar paths written, so a payload with the bytes of an earlier one is not written twice.
    paths: HashSet<String>,
    /// The jobs whose entries were written, in order.
    written: Vec<usize>,
    writeback: Writeback,
}

/// A finished job waiting for its turn.
struct Done {
    /// For a large payload: its tar path and header slot.
    entry: Option<(String, Vec<u8>)>,
    /// Its frames, if it spilled any: a closed file (however many payloads wait, none holds a file
    /// descriptor), removed once copied.
    spill: Option<(tempfile::TempPath, u64)>,
}

impl State {
    fn append(&mut self, file: &File, buf: &[u8]) -> io::Result<()> {
        file.write_all_at(buf, self.len)?;
        self.len += buf.len() as u64;
        self.writeback.wrote(buf.len() as u64);
        Ok(())
    }

    fn append_spill(&mut self, file: &File, spill: &mut File, n: u64) -> io::Result<()> {
        spill.seek(SeekFrom::Start(0))?;
        let mut out = file;
        out.seek(SeekFrom::Start(self.len))?;
        // File to file: the kernel copies (copy_file_range), no round trip through user space.
        let copied = io::copy(&mut spill.take(n), &mut out)?;
        if copied != n {
            return Err(io::Error::other(format!(
                "spill file holds {copied} bytes, {n} expected"
            )));
        }
        self.len += n;
        self.spilled -= n;
        self.writeback.wrote(n);
        Ok(())
    }

    /// Writes (or, for a duplicate, drops) a job that finished before its turn.
    fn write_done(&mut self, file: &File, job: usize, done: Done) -> io::Result<()> {
        let Some((path, slot)) = done.entry else {
            return Ok(());
        };
        if self.paths.contains(&path) {
            if let Some((_, n)) = done.spill {
                self.spilled -= n;
            }
            return Ok(());
        }
        self.append(file, &slot)?;
        if let Some((path, n)) = done.spill {
            self.append_spill(file, &mut File::open(&path)?, n)?;
            // Dropping the path removes the file.
        }
        self.paths.insert(path);
        self.written.push(job);
        Ok(())
    }

    /// Moves past the head job, then past every following job that already finished.
    fn advance(&mut self, file: &File) -> io::Result<()> {
        self.head += 1;
        while let Some(slot) = self.done.get_mut(self.head) {
            let Some(done) = slot.take() else { break };
            self.write_done(file, self.head, done)?;
            self.head += 1;
        }
        Ok(())
    }
}

impl Body {
    /// A temporary output file in `dir` (mode 0644: kits are published artifacts) for `jobs` payloads,
    /// with at most `spill_limit` bytes in spill files at once.
    pub(crate) fn create(dir: &Path, jobs: usize, spill_limit: u64) -> io::Result<Body> {
        let file = tempfile::Builder::new()
            .prefix(".stella-kit-")
            .tempfile_in(dir)?;
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        let writeback = Writeback::new(file.as_file())?;
        Ok(Body {
            file,
            dir: dir.to_owned(),
            state: Mutex::new(State {
                len: 0,
                head: 0,
                done: (0..jobs).map(|_| None).collect(),
                spilled: 0,
                paths: HashSet::new(),
                written: Vec::new(),
                writeback,
            }),
            turn: Condvar::new(),
            head: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            spill_limit,
        })
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| io::Error::other("internal: a lane panicked"))
    }

    fn publish(&self, st: &State) {
        self.head.store(st.head, Ordering::SeqCst);
        self.turn.notify_all();
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
        // Taking the lock orders this with lanes about to wait, so none misses the wake-up.
        let _guard = self.state.lock();
        self.turn.notify_all();
    }

    fn aborted() -> io::Error {
        io::Error::other("stopped: another input failed")
    }

    /// A job that wrote nothing (a small payload, hashed only) finished.
    fn finish_small(&self, job: usize) -> io::Result<()> {
        let file = self.file.as_file();
        let mut st = self.lock()?;
        if st.head == job {
            st.advance(file)?;
        } else {
            st.done[job] = Some(Done {
                entry: None,
                spill: None,
            });
        }
        self.publish(&st);
        Ok(())
    }

    /// A large payload finished: fill in its header slot (or drop it if an earlier payload had its
    /// bytes), or leave it for its turn.
    fn finish_large(&self, sink: Sink<'_>, path: String, slot: Vec<u8>) -> io::Result<()> {
        let file = self.file.as_file();
        let mut st = self.lock()?;
        let job = sink.job;
        match sink.slot_at {
            // It was the head and wrote in place.
            Some(at) => {
                if st.paths.contains(&path) {
                    file.set_len(at)?;
                    st.len = at;
                } else {
                    file.write_all_at(&slot, at)?;
                    st.paths.insert(path);
                    st.written.push(job);
                }
                st.advance(file)?;
            }
            None => {
                let done = Done {
                    entry: Some((path, slot)),
                    spill: sink.spill.map(|(f, n)| (f.into_temp_path(), n)),
                };
                if st.head == job {
                    st.write_done(file, job, done)?;
                    st.advance(file)?;
                } else {
                    st.done[job] = Some(done);
                }
            }
        }
        self.publish(&st);
        Ok(())
    }

    /// Appends the tail (written by `tail`), inserts `head` in front and publishes the file as `out`.
    /// `large` lists the jobs whose entries the manifest carries as large entries, in order: exactly those
    /// must have been written. Returns the kit's size.
    pub(crate) fn finish(
        self,
        large: &[usize],
        head: &[u8],
        out: &Path,
        tail: impl FnOnce(&mut dyn Write) -> Result<(), BuildError>,
    ) -> Result<u64, BuildError> {
        let label = out.display().to_string();
        let Body {
            file, dir, state, ..
        } = self;
        let st = state
            .into_inner()
            .map_err(|_| BuildError::Input("internal: a lane panicked".into()))?;
        if st.written != large {
            return Err(BuildError::Input(
                "internal: the payloads written differ from the manifest's".into(),
            ));
        }
        let State { len, writeback, .. } = st;
        let mut at = PositionalWriter {
            file: file.as_file(),
            at: len,
            writeback,
        };
        {
            let mut w = io::BufWriter::with_capacity(READ_BUF, &mut at);
            tail(&mut w)?;
            w.flush().map_err(io_err(format!("{label}: writing")))?;
        }
        let body_len = at.at;
        at.writeback.finish();
        let inserted = rustix::fs::fallocate(
            file.as_file(),
            rustix::fs::FallocateFlags::INSERT_RANGE,
            0,
            head.len() as u64,
        );
        let file = match inserted {
            Ok(()) => {
                file.as_file()
                    .write_all_at(head, 0)
                    .map_err(io_err(format!("{label}: writing")))?;
                file
            }
            // The probe said yes but the insert failed (another file system mounted meanwhile?): copy the
            // body behind the head into a new file. Same bytes, one more write.
            Err(e) => {
                tracing::warn!(error = %e, "cannot insert the kit head in place; copying the kit once");
                copy_behind(&file, body_len, head, &dir)
                    .map_err(io_err(format!("{label}: writing")))?
            }
        };
        file.as_file()
            .sync_all()
            .map_err(io_err(format!("{label}: writing")))?;
        file.persist(out)
            .map_err(|e| io_err(format!("{label}: writing"))(e.error))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(format!("{}: sync", dir.display())))?;
        Ok(body_len + head.len() as u64)
    }
}

/// A new temporary file holding `head` followed by the first `len` bytes of `body`.
fn copy_behind(
    body: &tempfile::NamedTempFile,
    len: u64,
    head: &[u8],
    dir: &Path,
) -> io::Result<tempfile::NamedTempFile> {
    let mut out = tempfile::Builder::new()
        .prefix(".stella-kit-")
        .tempfile_in(dir)?;
    {
        use std::os::unix::fs::PermissionsExt;
        out.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    out.write_all(head)?;
    let mut src = body.as_file();
    src.seek(SeekFrom::Start(0))?;
    let copied = io::copy(&mut src.take(len), out.as_file_mut())?;
    if copied != len {
        return Err(io::Error::other("the kit body changed while it was copied"));
    }
    Ok(out)
}

/// Writes at a position of a file, without moving its cursor.
struct PositionalWriter<'a> {
    file: &'a File,
    at: u64,
    writeback: Writeback,
}

impl Write for PositionalWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.at)?;
        self.at += buf.len() as u64;
        self.writeback.wrote(buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where one large payload's frames go: into the file when it is the head, else into a spill file.
struct Sink<'b> {
    body: &'b Body,
    job: usize,
    /// Where its header slot is, once it writes in place.
    slot_at: Option<u64>,
    /// Its frames written before its turn, and how many bytes.
    spill: Option<(tempfile::NamedTempFile, u64)>,
}

impl Sink<'_> {
    /// Its turn came: reserve the header slot, copy what it spilled, and write in place from now on.
    fn go_direct(&mut self) -> io::Result<()> {
        let file = self.body.file.as_file();
        let mut st = self.body.lock()?;
        let at = st.len;
        st.append(file, &[0u8; layout::HEADER_SLOT])?;
        if let Some((mut f, n)) = self.spill.take() {
            st.append_spill(file, f.as_file_mut(), n)?;
        }
        self.slot_at = Some(at);
        self.body.turn.notify_all();
        Ok(())
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.body.failed.load(Ordering::SeqCst) {
            return Err(Body::aborted());
        }
        if self.slot_at.is_none() && self.body.head.load(Ordering::SeqCst) == self.job {
            self.go_direct()?;
        }
        if self.slot_at.is_some() {
            self.body.lock()?.append(self.body.file.as_file(), buf)?;
            return Ok(buf.len());
        }
        if self.spill.is_none() {
            let f = tempfile::Builder::new()
                .prefix(".stella-kit-spill-")
                .tempfile_in(&self.body.dir)?;
            self.spill = Some((f, 0));
        }
        {
            let mut st = self.body.lock()?;
            loop {
                if self.body.failed.load(Ordering::SeqCst) {
                    return Err(Body::aborted());
                }
                if st.head == self.job {
                    drop(st);
                    self.go_direct()?;
                    self.body.lock()?.append(self.body.file.as_file(), buf)?;
                    return Ok(buf.len());
                }
                // At the cap, wait for this payload's turn (the head never waits, so it comes).
                if st.spilled == 0 || st.spilled + buf.len() as u64 <= self.body.spill_limit {
                    st.spilled += buf.len() as u64;
                    break;
                }
                st = self
                    .body
                    .turn
                    .wait(st)
                    .map_err(|_| io::Error::other("internal: a lane panicked"))?;
            }
        }
        if let Some((f, n)) = self.spill.as_mut() {
            f.write_all(buf)?;
            *n += buf.len() as u64;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One lane's reusable state.
struct Lane {
    buf: Vec<u8>,
    enc: FrameEncoder,
}

/// Reads every payload once with one lane per core: hashes all of them, and compresses each large one
/// into `body` in name order. Returns the digests in job order.
pub(crate) fn run(plan: &Plan<'_>, body: &Body) -> Result<Vec<Hashed>, BuildError> {
    // Large payloads from each one on, itself included.
    let mut large_from = vec![0usize; plan.jobs.len() + 1];
    for (i, job) in plan.jobs.iter().enumerate().rev() {
        large_from[i] = large_from[i + 1] + usize::from(job.large());
    }
    let hashed = run_lanes(
        plan,
        || {
            Ok(Lane {
                buf: vec![0u8; READ_BUF],
                enc: FrameEncoder::new(plan.level, plan.workers).map_err(io_err("zstd"))?,
            })
        },
        |lane, i| {
            let job = &plan.jobs[i];
            let label = job.planned.source.label();
            // A lane stopped by another's failure reports nothing of its own.
            let stopped = |e: BuildError| {
                if body.failed.load(Ordering::SeqCst) {
                    Ok(None)
                } else {
                    Err(e)
                }
            };
            let Lane { buf, enc } = lane;
            if !job.large() {
                let hashed = match read_job(plan, job, buf, &mut |_| Ok(())) {
                    Ok(h) => h,
                    Err(e) => return stopped(e),
                };
                body.finish_small(i)
                    .map_err(io_err(format!("{label}: writing")))?;
                return Ok(Some(hashed));
            }
            let mut sink = Sink {
                body,
                job: i,
                slot_at: None,
                spill: None,
            };
            let mut compress = |chunk: &[u8]| {
                enc.write(chunk, &mut sink)
                    .map_err(io_err(format!("{label}: compressing")))
            };
            // With fewer large payloads left than lanes, cores would idle: hash on a thread of its own.
            // Otherwise the other lanes keep the cores busy, and the extra thread only costs.
            let read = if large_from[i] < plan.lanes {
                read_job_pipelined(plan, job, &mut compress)
            } else {
                read_job(plan, job, buf, &mut compress)
            };
            let hashed = match read {
                Ok(h) => h,
                Err(e) => return stopped(e),
            };
            let ended = enc
                .write(layout::tar_padding(hashed.0), &mut sink)
                .and_then(|_| enc.end(&mut sink));
            if let Err(e) = ended {
                return stopped(io_err(format!("{label}: compressing"))(e));
            }
            let hex = hashed.1.get(&plan.addressing).cloned().unwrap_or_default();
            let path = crate::manifest::blob_path(plan.addressing, &hex);
            let slot =
                layout::header_slot(enc, &path, hashed.0, plan.mtime).map_err(io_err("zstd"))?;
            body.finish_large(sink, path, slot)
                .map_err(io_err(format!("{label}: writing")))?;
            Ok(Some(hashed))
        },
        || body.fail(),
    )?;
    let st = body.lock().map_err(io_err("internal"))?;
    if st.head != plan.jobs.len() || st.spilled != 0 {
        return Err(BuildError::Input(format!(
            "internal: {} of {} payloads written, {} bytes left in spill files",
            st.head,
            plan.jobs.len(),
            st.spilled
        )));
    }
    Ok(hashed)
}
