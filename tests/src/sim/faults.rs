//! The faults a run may inject, and the mix a seed draws (swarm testing: each run enables a random
//! subset, so that rare combinations — say, crashes under slow fsyncs without partitions — come up as
//! often as the full mix).

use super::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL of a member, restarted after a while; unsynced writes lost or torn.
    Crash,
    /// Every member loses power at once (their unsynced writes with it) and comes back.
    PowerLoss,
    /// A minority (sometimes holding the leader) cut off from the rest for a while.
    Partition,
    /// A brief cut between two members: what crosses it is lost and the connections between them hang
    /// (their ends find out by timeout, as with a real TCP connection that stopped delivering).
    BreakLinks,
    /// What one member sends another is lost for a while, the other way still works: quorum
    /// connections between them hang (TCP needs both ways), election notifications one way still flow.
    OneWayCut,
    /// fsyncs take 20–300 ms for a while.
    SlowFsync,
    /// Deliveries take 5–150 ms for a while (channels stay FIFO; different ones reorder).
    SlowNetwork,
    /// A member's wall clock jumps up to a minute either way (txn times and new session ids come from
    /// it; timeouts use the monotonic clock, which does not jump).
    ClockJump,
    /// Every client goes quiet (no requests, no pings) for longer than many session timeouts: sessions
    /// expire in a crowd, and their ephemerals go with them.
    ExpiryStorm,
    /// A storage fault: a member is killed and restarts to find its log damaged part-way. It keeps the
    /// txns before the damage — losing some it acknowledged — and recovers the rest from its ensemble
    /// (fk_engine::damage), not voting until then.
    Damage,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Crash,
        FaultKind::PowerLoss,
        FaultKind::Partition,
        FaultKind::BreakLinks,
        FaultKind::OneWayCut,
        FaultKind::SlowFsync,
        FaultKind::SlowNetwork,
        FaultKind::ClockJump,
        FaultKind::ExpiryStorm,
    ];

    /// Faults of the disk itself, drawn on top of a seed's mix with `--faults storage`.
    pub const STORAGE: [FaultKind; 1] = [FaultKind::Damage];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::Partition => "partition",
            FaultKind::BreakLinks => "break-links",
            FaultKind::OneWayCut => "one-way-cut",
            FaultKind::SlowFsync => "slow-fsync",
            FaultKind::SlowNetwork => "slow-network",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::ExpiryStorm => "expiry-storm",
            FaultKind::Damage => "damage",
        }
    }

    pub fn parse(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().chain(FaultKind::STORAGE).find(|k| k.name() == name)
    }
}

/// Which faults a run injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultMix {
    pub kinds: Vec<FaultKind>,
    /// When a cut heals, the last election notification across it arrives again (ZooKeeper resends
    /// the last message on a new election connection), so a member may get one twice.
    pub duplicate_notifications: bool,
}

impl FaultMix {
    pub fn none() -> FaultMix {
        FaultMix { kinds: Vec::new(), duplicate_notifications: false }
    }

    pub fn all() -> FaultMix {
        FaultMix { kinds: FaultKind::ALL.to_vec(), duplicate_notifications: true }
    }

    /// A random subset of every fault (each kind in with probability one half).
    pub fn drawn(rng: &mut Rng) -> FaultMix {
        let kinds = FaultKind::ALL.into_iter().filter(|_| rng.chance(0.5)).collect();
        FaultMix { kinds, duplicate_notifications: rng.chance(0.5) }
    }

    /// `crash,partition,...` (names as [`FaultKind::name`] prints them, `dup-notifications`, `all`,
    /// `none`). `all` is every fault but the storage ones.
    pub fn parse(text: &str) -> Result<FaultMix, String> {
        let mut mix = FaultMix::none();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => mix = FaultMix::all(),
                "none" => {}
                "dup-notifications" => mix.duplicate_notifications = true,
                name => mix.kinds.push(FaultKind::parse(name).ok_or_else(|| format!("no fault called '{name}'"))?),
            }
        }
        Ok(mix)
    }

    pub fn draw(&self, rng: &mut Rng) -> Option<FaultKind> {
        (!self.kinds.is_empty()).then(|| *rng.pick(&self.kinds))
    }
}

impl std::fmt::Display for FaultMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        if self.duplicate_notifications {
            names.push("dup-notifications");
        }
        if names.is_empty() {
            names.push("none");
        }
        write!(f, "{}", names.join(","))
    }
}

/// What `--faults` asks for: a fixed mix or each seed's own draw (`None`), and whether the storage
/// faults come on top (`storage` among the names).
pub fn parse_choice(text: &str) -> Result<(Option<FaultMix>, bool), String> {
    let names: Vec<&str> = text.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    let storage = names.contains(&"storage");
    let rest: Vec<&str> = names.into_iter().filter(|n| *n != "storage").collect();
    let fixed = if rest.is_empty() && storage { None } else { Some(FaultMix::parse(&rest.join(","))?) };
    Ok((fixed, storage))
}

/// A scheduled fault event.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Draw the next fault from the mix.
    Draw,
    /// A cut (from, to) ends.
    Rejoin(usize, usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_print_back() {
        let mix = FaultMix::parse("crash, slow-fsync,dup-notifications").unwrap();
        assert_eq!(mix.kinds, vec![FaultKind::Crash, FaultKind::SlowFsync]);
        assert!(mix.duplicate_notifications);
        assert_eq!(FaultMix::parse(&mix.to_string()).unwrap(), mix);
        assert_eq!(parse_choice("storage").unwrap(), (None, true));
        assert_eq!(parse_choice("crash,storage").unwrap(), (Some(FaultMix::parse("crash").unwrap()), true));
        assert_eq!(parse_choice("crash").unwrap(), (Some(FaultMix::parse("crash").unwrap()), false));
        assert_eq!(FaultMix::parse("damage").unwrap().kinds, vec![FaultKind::Damage]);
        assert_eq!(FaultMix::parse("all").unwrap(), FaultMix::all());
        assert!(FaultMix::parse("crash,meteor").unwrap_err().contains("meteor"));
        assert_eq!(FaultMix::none().draw(&mut Rng::new(1)), None);
    }
}
