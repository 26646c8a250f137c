//! The loop every driver of a [`MemberCore`] runs over its effects — one copy, used by the production
//! member thread (`ferrokeeper::pipeline::member`) and by the simulator (tests/src/sim), so that both take the
//! same path through a batch, a failed effect and a role's end.
//!
//! The rules: effects are carried out in the order the core queued them; `RoleEnded` is noted, not
//! carried out; an effect that fails ends the role — the rest of its batch depended on it and is dropped,
//! and the core is told ([`MemberCore::role_failed`]); after each batch the driver gets a moment (figures,
//! the applier, flushing links); once the role ended, only election notifications queued since survive,
//! and the driver goes between roles ([`between_roles`]: links closed, pipeline settled, clients
//! closed, then [`MemberCore::look`], which queues the next batch).

use super::{Effect, MemberCore};

/// What a driver does with the core's effects; [`drive`] calls it.
pub trait EffectDriver {
    /// The core and its queue of effects; `None` once the member is down (a simulated crash).
    fn core_and_effects(&mut self) -> Option<(&mut MemberCore, &mut Vec<Effect>)>;
    /// Carries out one effect; an error ends the role.
    fn carry_out_one(&mut self, effect: Effect) -> Result<(), String>;
    /// After each batch.
    fn after_batch(&mut self);
    /// Between roles: the role's quorum links close.
    fn close_links(&mut self);
    /// Between roles: everything logged becomes durable and applied, and the replies it releases reach
    /// the clients (a driver that cannot settle stops the process).
    fn settle(&mut self);
    /// Between roles: the clients' connections close (they reconnect, here or elsewhere).
    fn close_clients(&mut self);
    /// The core looks again, with the disk's facts ([`MemberCore::look`]).
    fn look(&mut self);
}

/// A role's end, in its order: the links close (nothing more arrives from the old role), the pipeline
/// settles — what was committed is applied and its replies are delivered before the clients go (a
/// reconfig forwarded by this member gets its answer, as ZooKeeper's follower answers a txn it committed
/// with COMMITANDACTIVATE before it leaves its role) — then the clients close, then the core looks.
pub fn between_roles(driver: &mut impl EffectDriver) {
    driver.close_links();
    driver.settle();
    driver.close_clients();
    driver.look();
}

/// Carries out the queued effects, and those they lead to, until none is left.
pub fn drive(driver: &mut impl EffectDriver) {
    loop {
        let Some((_, effects)) = driver.core_and_effects() else { return };
        if effects.is_empty() {
            return;
        }
        let batch = std::mem::take(effects);
        let mut ended = false;
        for effect in batch {
            if let Effect::RoleEnded(_) = effect {
                ended = true;
                continue;
            }
            if let Err(reason) = driver.carry_out_one(effect) {
                let Some((core, effects)) = driver.core_and_effects() else { return };
                effects.clear();
                core.role_failed(reason, effects);
                break;
            }
        }
        driver.after_batch();
        let Some((core, effects)) = driver.core_and_effects() else { return };
        if ended || core.awaits_look() {
            effects.retain(|e| matches!(e, Effect::Notify { .. }));
            between_roles(driver);
        }
    }
}
