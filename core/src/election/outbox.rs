//! What an election link keeps for one peer, as ZooKeeper 3.8's `QuorumCnxManager` keeps it: a send queue
//! of one message (`CircularBlockingQueue` of capacity 1: a newer message replaces the unsent one) and the
//! last message handed to a connection (`lastMessageSent`), which a new connection sends first when
//! nothing newer waits (`SendWorker.run`): the old connection may have died before the peer read it, and
//! a duplicate notification is harmless.
//!
//! One copy of that rule, for the production election links (`ferrokeeper::peers::election_link`, where a
//! sender thread per connection drains it) and for the simulator's network (where a healed cut is a new
//! connection).

/// One peer's outgoing election messages.
#[derive(Debug, Clone)]
pub struct PeerOutbox<M> {
    waiting: Option<M>,
    last_sent: Option<M>,
}

impl<M> Default for PeerOutbox<M> {
    fn default() -> Self {
        PeerOutbox { waiting: None, last_sent: None }
    }
}

impl<M: Clone> PeerOutbox<M> {
    /// Queues `message`; returns whether it replaced an unsent one.
    pub fn queue(&mut self, message: M) -> bool {
        self.waiting.replace(message).is_some()
    }

    /// The message a connection sends next, if any. It becomes the last sent before it is written (as
    /// in `SendWorker.send`), so that if the connection dies with it, the next connection resends it.
    pub fn take(&mut self) -> Option<M> {
        let message = self.waiting.take()?;
        self.last_sent = Some(message.clone());
        Some(message)
    }

    /// What a new connection sends before anything else: the last message sent, unless a newer one is
    /// waiting (which the connection sends next anyway).
    pub fn on_connect(&self) -> Option<M> {
        if self.waiting.is_some() { None } else { self.last_sent.clone() }
    }

    /// A message its connection could not write goes back, unless a newer one is already waiting.
    /// (ZooKeeper loses it and counts on the resend above; putting it back costs nothing.)
    pub fn unsent(&mut self, message: M) {
        if self.waiting.is_none() {
            self.waiting = Some(message);
        }
    }

    /// Whether nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_message_wins_and_a_new_connection_resends_the_last() {
        let mut outbox = PeerOutbox::default();
        assert_eq!(outbox.on_connect(), None, "nothing sent yet");
        assert!(!outbox.queue("one"), "nothing to replace yet");
        assert!(outbox.queue("two"), "the unsent message is replaced");
        assert_eq!(outbox.on_connect(), None, "a waiting message goes next anyway");
        assert_eq!(outbox.take(), Some("two"));
        assert!(outbox.is_empty());
        assert_eq!(outbox.on_connect(), Some("two"), "the last message, again, on a new connection");

        outbox.queue("three");
        outbox.unsent("two");
        assert_eq!(outbox.take(), Some("three"), "a put-back message never displaces a newer one");
        outbox.unsent("three");
        assert_eq!(outbox.take(), Some("three"));
        assert_eq!(outbox.take(), None);
    }
}
