//! The loop every driver of a [`MemberCore`] runs over its effects — one copy, used by the production
//! member thread (`ferrokeeper::pipeline::member`) and by the simulator (tests/src/sim), so that both take the
//! same path through a batch, a failed effect and a role's end.
//!
//! The rules: effects are carried out in the order the core queued them; `RoleEnded` is noted, not
//! carried out; an effect that fails ends the role — the rest of its batch depended on it and is dropped,
//! and the core is told ([`MemberCore::role_failed`]); after each batch the driver gets a moment (figures,
//! the applier, flushing links); once the role ended, only election notifications queued since survive,
//! and the driver goes between roles (settle, close clients, then [`MemberCore::look`], which queues the
//! next batch).

use super::{Effect, MemberCore};

/// What a driver does with the core's effects; [`drive`] calls it.
pub trait EffectDriver {
    /// The core and its queue of effects; `None` once the member is down (a simulated crash).
    fn core_and_effects(&mut self) -> Option<(&mut MemberCore, &mut Vec<Effect>)>;
    /// Carries out one effect; an error ends the role.
    fn carry_out_one(&mut self, effect: Effect) -> Result<(), String>;
    /// After each batch.
    fn after_batch(&mut self);
    /// The role ended: settle, close the clients, look again.
    fn between_roles(&mut self);
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
            driver.between_roles();
        }
    }
}
