//! `CreateMode`: the kinds of znode, their wire flags and the opcode each is created with.

use fk_net::client::OpCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    /// Deleted by the server once its last child is gone.
    Container,
    /// Deleted by the server when unmodified and childless for this many milliseconds.
    PersistentWithTtl(i64),
    PersistentSequentialWithTtl(i64),
}

impl CreateMode {
    /// The `flags` of the create request (ZooKeeper's `CreateMode.toFlag`).
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl(_) => 5,
            CreateMode::PersistentSequentialWithTtl(_) => 6,
        }
    }

    pub fn ttl(self) -> Option<i64> {
        match self {
            CreateMode::PersistentWithTtl(ttl) | CreateMode::PersistentSequentialWithTtl(ttl) => Some(ttl),
            _ => None,
        }
    }

    /// Containers and TTL nodes have opcodes of their own; everything else goes as create2 (which
    /// also returns the new node's Stat).
    pub fn op_code(self) -> OpCode {
        match self {
            CreateMode::Container => OpCode::CreateContainer,
            CreateMode::PersistentWithTtl(_) | CreateMode::PersistentSequentialWithTtl(_) => OpCode::CreateTtl,
            _ => OpCode::Create2,
        }
    }

    /// zkCli's mode from its flags: `-s`, `-e`, `-c` and `-t ttl` (the shell refuses the combinations
    /// ZooKeeper refuses before calling this).
    pub fn from_cli(sequential: bool, ephemeral: bool, container: bool, ttl: Option<i64>) -> CreateMode {
        match (sequential, ephemeral, container, ttl) {
            (_, _, true, _) => CreateMode::Container,
            (false, _, _, Some(ttl)) => CreateMode::PersistentWithTtl(ttl),
            (true, _, _, Some(ttl)) => CreateMode::PersistentSequentialWithTtl(ttl),
            (true, true, _, None) => CreateMode::EphemeralSequential,
            (false, true, _, None) => CreateMode::Ephemeral,
            (true, false, _, None) => CreateMode::PersistentSequential,
            (false, false, _, None) => CreateMode::Persistent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_flags_map_to_modes() {
        let cases = [
            ((false, false, false, None), CreateMode::Persistent, 0, OpCode::Create2),
            ((false, true, false, None), CreateMode::Ephemeral, 1, OpCode::Create2),
            ((true, false, false, None), CreateMode::PersistentSequential, 2, OpCode::Create2),
            ((true, true, false, None), CreateMode::EphemeralSequential, 3, OpCode::Create2),
            ((false, false, true, None), CreateMode::Container, 4, OpCode::CreateContainer),
            ((false, false, false, Some(5)), CreateMode::PersistentWithTtl(5), 5, OpCode::CreateTtl),
            ((true, false, false, Some(5)), CreateMode::PersistentSequentialWithTtl(5), 6, OpCode::CreateTtl),
        ];
        for ((s, e, c, t), mode, flags, op) in cases {
            let got = CreateMode::from_cli(s, e, c, t);
            assert_eq!(got, mode);
            assert_eq!(got.flags(), flags);
            assert_eq!(got.op_code(), op);
        }
    }
}
