//! A simulated filesystem ([`fk_engine::fs::Fs`]) that keeps what a disk would keep and nothing more, for
//! running the real txn log and recovery under storage faults drawn from a seed.
//!
//! Each file has a *cached* image (what reads see) and a *durable* one (what survives a crash), kept
//! per 512-byte sector. A write changes the cache and dirties its sectors; `sync_data` copies the dirty
//! sectors to the durable image — or fails with EIO, after which, as Linux does, the dirty pages are
//! marked clean whether or not they reached the disk: a later sync succeeds without them (a writer that
//! trusts it has lost data). Names are durable once their directory is synced. A crash keeps the
//! durable image plus any subset of the dirty sectors, one of them possibly torn half-way, and the
//! durable names. Faults at rest: a bit flipped in a durable byte. A misdirected write: the next write
//! to a log or snapshot lands some sectors before or after where it was aimed (the firmware bug FAST'18
//! and "Parity Lost and Parity Regained" describe), so what it meant to write is not where it belongs and
//! what was there is overwritten.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fk_engine::fs::{Contents, Fs, FsFile};
use fk_engine::snap::TreeAccess;
use fk_engine::tree::DataTree;

use super::rng::Rng;

pub const SECTOR: usize = 512;

/// Whether an error is the disk's (EIO, a full volume), which stops a server for its supervisor to
/// start again, rather than a refusal that would stop it for good.
pub fn disk_trouble(error: &str) -> bool {
    error.contains("Input/output error") || error.contains("No space left on device")
}

/// A tree nobody else holds, for the snapshot writer.
pub struct Held<'a>(pub &'a DataTree);

impl TreeAccess for Held<'_> {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(self.0)
    }
}

/// How often each fault strikes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsFaults {
    /// A `sync_data` fails with EIO.
    pub eio: f64,
    /// The machine dies during a `sync_data` (its writes since the last sync lost or torn, sector by
    /// sector); the call fails and the filesystem says so ([`SimFs::take_crash`]).
    pub crash_in_sync: f64,
    /// A write or an allocation fails with ENOSPC (the volume is full for that moment).
    pub enospc: f64,
    /// A crash may keep a file's unsynced sectors out of order (a later one kept, an earlier one lost
    /// or torn); otherwise it keeps a prefix of them, the last possibly torn.
    pub reorder: bool,
}

impl FsFaults {
    pub const NONE: FsFaults = FsFaults { eio: 0.0, crash_in_sync: 0.0, enospc: 0.0, reorder: false };
}

/// What the filesystem did to its files, for a run's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsTally {
    pub eio: u64,
    /// Writes and allocations refused for want of space.
    pub enospc: u64,
    /// Dirty sectors a crash lost, and sectors it tore.
    pub sectors_lost: u64,
    pub sectors_torn: u64,
    /// Names a crash lost (created or renamed since their directory's last sync).
    pub names_lost: u64,
    pub bits_flipped: u64,
    /// Crashes that kept a later unsynced sector of a file but lost or tore an earlier one.
    pub out_of_order: u64,
    /// Machine crashes: inside an fsync, or a power loss.
    pub crashes: u64,
    /// Writes that landed at the wrong offset.
    pub misdirected: u64,
}

impl FsTally {
    pub fn absorb(&mut self, other: FsTally) {
        let FsTally {
            eio,
            enospc,
            sectors_lost,
            sectors_torn,
            names_lost,
            bits_flipped,
            out_of_order,
            crashes,
            misdirected,
        } = other;
        self.eio += eio;
        self.enospc += enospc;
        self.sectors_lost += sectors_lost;
        self.sectors_torn += sectors_torn;
        self.names_lost += names_lost;
        self.bits_flipped += bits_flipped;
        self.out_of_order += out_of_order;
        self.crashes += crashes;
        self.misdirected += misdirected;
    }
}

#[derive(Debug, Default, Clone)]
struct Inode {
    cached: Vec<u8>,
    durable: Vec<u8>,
    dirty: BTreeSet<usize>,
}

impl Inode {
    fn write(&mut self, bytes: &[u8], offset: usize) {
        let end = offset + bytes.len();
        if self.cached.len() < end {
            self.resize(end);
        }
        self.cached[offset..end].copy_from_slice(bytes);
        self.dirty.extend(offset / SECTOR..end.div_ceil(SECTOR));
    }

    fn resize(&mut self, len: usize) {
        let old = self.cached.len();
        self.cached.resize(len, 0);
        self.dirty.retain(|&s| s * SECTOR < len);
        if len > old {
            self.dirty.extend(old / SECTOR..len.div_ceil(SECTOR));
        }
    }

    /// Copies sector `s` from the cache to the durable image (or the part of it that exists).
    fn persist(&mut self, s: usize, up_to: usize) {
        let start = s * SECTOR;
        let end = ((s + 1) * SECTOR).min(self.cached.len()).min(up_to.max(start));
        if self.durable.len() < end {
            self.durable.resize(end, 0);
        }
        self.durable[start..end].copy_from_slice(&self.cached[start..end]);
    }

    fn sync(&mut self) {
        for s in std::mem::take(&mut self.dirty) {
            self.persist(s, usize::MAX);
        }
        self.durable.truncate(self.cached.len());
        self.durable.resize(self.cached.len(), 0);
    }
}

#[derive(Debug, Default)]
struct State {
    inodes: BTreeMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    next_inode: u64,
    tally: FsTally,
    /// A crash happened inside a call, not yet taken by the run.
    /// The machine died in a call and has not been started again: every call fails.
    down: bool,
    /// The last crash kept sectors out of order ([`FsTally::out_of_order`]).
    last_crash_out_of_order: bool,
    /// The next write to a log or snapshot lands at the wrong offset.
    misdirect_armed: bool,
}

impl State {
    fn inode(&mut self, path: &Path) -> io::Result<&mut Inode> {
        let id = *self.names.get(path).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(self.inodes.get_mut(&id).expect("a name points at an inode"))
    }
}

/// The simulated filesystem. Cloning shares it (the writer and recovery see the same files).
#[derive(Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
    rng: Arc<Mutex<Rng>>,
    faults: Arc<Mutex<FsFaults>>,
    /// A handle for the simulation's own looks at the files, which work while the machine is down.
    inspector: bool,
}

impl SimFs {
    pub fn new(rng: Rng, faults: FsFaults) -> SimFs {
        let faults = Arc::new(Mutex::new(faults));
        SimFs { state: Arc::default(), rng: Arc::new(Mutex::new(rng)), faults, inspector: false }
    }

    /// The same files, for the simulation to look at (or flip bits in) even while the machine is down.
    pub fn inspector(&self) -> SimFs {
        SimFs { inspector: true, ..self.clone() }
    }

    fn faults(&self) -> FsFaults {
        *self.faults.lock().expect("single-threaded")
    }

    /// From now on, faults strike as `faults` says (none: the quiet end of a run).
    pub fn set_faults(&self, faults: FsFaults) {
        *self.faults.lock().expect("single-threaded") = faults;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("the simulation is single-threaded")
    }

    fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().expect("single-threaded").chance(p)
    }

    pub fn tally(&self) -> FsTally {
        self.state().tally
    }

    /// Whether the last crash kept a later unsynced sector of some file and lost or tore an earlier one.
    pub fn last_crash_out_of_order(&self) -> bool {
        self.state().last_crash_out_of_order
    }

    /// Whether the machine died inside a call (and is down: every call fails until [`SimFs::power_on`]).
    pub fn is_down(&self) -> bool {
        self.state().down
    }

    /// Starts the machine again after it died in a call.
    pub fn power_on(&self) {
        self.state().down = false;
    }

    /// Whether the machine died inside a call since the last time this was asked; starts it again.
    pub fn take_crash(&self) -> bool {
        std::mem::take(&mut self.state().down)
    }

    /// Whether this write or allocation finds the volume full.
    fn full(&self) -> io::Result<()> {
        if self.chance(self.faults().enospc) {
            self.state().tally.enospc += 1;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }

    fn up(&self) -> io::Result<()> {
        if self.state().down && !self.inspector { Err(io::Error::other("the machine is down")) } else { Ok(()) }
    }

    /// The machine dies: each file keeps its durable image and a random subset of its dirty sectors
    /// (one of which may be torn: only a prefix of it written); names not synced into their directory
    /// are lost.
    pub fn crash(&self) {
        let reorder = self.faults().reorder;
        let mut rng = self.rng.lock().expect("single-threaded");
        let mut state = self.state();
        let state = &mut *state;
        let mut out_of_order = false;
        for inode in state.inodes.values_mut() {
            let dirty: Vec<usize> = std::mem::take(&mut inode.dirty).into_iter().collect();
            let cached_len = inode.cached.len();
            let mut missing_before = false;
            // In order: the first `kept` sectors reach the disk, the next may be torn, the rest are lost.
            let kept = (!reorder).then(|| rng.below(dirty.len() as u64 + 1) as usize);
            for (i, s) in dirty.into_iter().enumerate() {
                let fate = match kept {
                    None => rng.below(4),
                    Some(kept) if i < kept => 2,
                    Some(kept) if i == kept => rng.below(2),
                    Some(_) => 0,
                };
                match fate {
                    0 => {
                        state.tally.sectors_lost += 1;
                        missing_before = true;
                    }
                    1 if s * SECTOR < cached_len => {
                        // Torn: the write reached the disk only part-way into the sector.
                        let cut = s * SECTOR + rng.below(SECTOR as u64) as usize;
                        inode.persist(s, cut);
                        state.tally.sectors_torn += 1;
                        out_of_order |= missing_before;
                        missing_before = true;
                    }
                    _ => {
                        inode.persist(s, usize::MAX);
                        out_of_order |= missing_before;
                    }
                }
            }
            inode.durable.truncate(cached_len.max(inode.durable.len()));
            inode.cached = inode.durable.clone();
        }
        state.tally.out_of_order += u64::from(out_of_order);
        state.tally.crashes += 1;
        state.last_crash_out_of_order = out_of_order;
        let lost = state.names.iter().filter(|(name, id)| state.durable_names.get(*name) != Some(id)).count();
        state.tally.names_lost += lost as u64;
        state.names = state.durable_names.clone();
        let live: BTreeSet<u64> = state.names.values().copied().collect();
        state.inodes.retain(|id, _| live.contains(id));
    }

    /// The next write to a log or snapshot will land some sectors away from its offset.
    pub fn misdirect_next_write(&self) {
        self.state().misdirect_armed = true;
    }

    /// Whether a misdirected write is armed and has not struck yet.
    pub fn misdirect_armed(&self) -> bool {
        self.state().misdirect_armed
    }

    /// Where a write to `path` at `offset` lands: where it was aimed, or — if a misdirected write is
    /// armed and this is a log or snapshot — 1 to 16 sectors before or after (never before the start).
    fn landing(&self, path: &Path, offset: usize) -> usize {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let mut state = self.state();
        if !state.misdirect_armed || !(name.starts_with("log.") || name.starts_with("snapshot.")) {
            return offset;
        }
        state.misdirect_armed = false;
        state.tally.misdirected += 1;
        let mut rng = self.rng.lock().expect("single-threaded");
        let distance = rng.between(1, 16) as usize * SECTOR;
        let landed = if rng.chance(0.5) && offset >= distance { offset - distance } else { offset + distance };
        tracing::info!(path = %path.display(), offset, landed, "fault: a misdirected write");
        landed
    }

    /// Flips one bit of `path` at byte `offset` (at rest: durable and cached alike).
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) {
        let mut state = self.state();
        state.tally.bits_flipped += 1;
        let inode = state.inode(path).expect("flip a bit of an existing file");
        inode.cached[offset] ^= 1 << bit;
        if offset < inode.durable.len() {
            inode.durable[offset] ^= 1 << bit;
        }
    }

    /// The length of `path` now, if it exists.
    pub fn len(&self, path: &Path) -> Option<usize> {
        self.state().inode(path).ok().map(|i| i.cached.len())
    }
}

impl Fs for SimFs {
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.up()?;
        Ok(self.state().names.keys().filter(|p| p.parent() == Some(dir)).cloned().collect())
    }

    fn read(&self, path: &Path) -> io::Result<Contents> {
        self.up()?;
        Ok(Contents::Owned(self.state().inode(path)?.cached.clone()))
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn FsFile>> {
        self.up()?;
        let mut state = self.state();
        match (state.names.get(path).copied(), create) {
            (Some(_), true) => state.inode(path)?.resize(0),
            (Some(_), false) => {}
            (None, true) => {
                let id = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(id, Inode::default());
                state.names.insert(path.to_owned(), id);
            }
            (None, false) => return Err(io::ErrorKind::NotFound.into()),
        }
        Ok(Box::new(SimFile { fs: self.clone(), path: path.to_owned() }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.up()?;
        let mut state = self.state();
        let id = state.names.remove(from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state.names.insert(to.to_owned(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.up()?;
        self.state().names.remove(path).map(drop).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.up()?;
        let mut state = self.state();
        let state = &mut *state;
        state.durable_names.retain(|p, _| p.parent() != Some(dir));
        for (name, id) in state.names.iter().filter(|(p, _)| p.parent() == Some(dir)) {
            state.durable_names.insert(name.clone(), *id);
        }
        Ok(())
    }
}

/// A file of a [`SimFs`], by name (as a descriptor would be, unless renamed while open: the log never
/// does that).
struct SimFile {
    fs: SimFs,
    path: PathBuf,
}

impl FsFile for SimFile {
    fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.fs.up()?;
        self.fs.full()?;
        let offset = self.fs.landing(&self.path, offset as usize);
        self.fs.state().inode(&self.path)?.write(bytes, offset);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fs.up()?;
        if self.fs.chance(self.fs.faults().crash_in_sync) {
            self.fs.crash();
            self.fs.state().down = true;
            return Err(io::Error::other("the machine died during fdatasync"));
        }
        let eio = self.fs.chance(self.fs.faults().eio);
        let mut rng = self.fs.rng.lock().expect("single-threaded");
        let mut state = self.fs.state();
        if eio {
            state.tally.eio += 1;
            let inode = state.inode(&self.path)?;
            // The failed writeback: each dirty page reached the disk or not, and is clean either way.
            for s in std::mem::take(&mut inode.dirty) {
                if rng.chance(0.5) {
                    inode.persist(s, usize::MAX);
                }
            }
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        state.inode(&self.path)?.sync();
        Ok(())
    }

    fn set_len_durably(&self, len: u64) -> io::Result<()> {
        self.fs.up()?;
        let mut state = self.fs.state();
        let inode = state.inode(&self.path)?;
        inode.resize(len as usize);
        inode.sync();
        Ok(())
    }

    fn allocate(&self, from: u64, to: u64) -> io::Result<()> {
        self.fs.up()?;
        self.fs.full()?;
        let mut state = self.fs.state();
        let inode = state.inode(&self.path)?;
        if (to as usize) > inode.cached.len() && to > from {
            inode.resize(to as usize);
        }
        Ok(())
    }

    fn raw_fd(&self) -> Option<std::os::unix::io::RawFd> {
        None
    }
}
