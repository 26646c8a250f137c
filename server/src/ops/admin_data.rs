//! The AdminServer's commands that move a whole database, from ZooKeeper 3.9:
//!
//! - `snapshot`/`snap` (GET): writes a snapshot of one state of the tree into the data directory and
//!   streams the file, with its zxid in a `last_zxid` header (`0x…`) and its length in `snapshot_size`;
//!   `?streaming=false` writes it without sending it. The file ends with ZooKeeper 3.9's
//!   last-processed-zxid record, so it can be restored from the stream alone.
//! - `restore`/`rest` (POST, the snapshot as the body): replaces a standalone server's state
//!   ([`crate::pipeline::restore`]); answers `last_zxid`. An ensemble member refuses (see there).
//!
//! Both need an `Authorization` header naming an identity that holds ALL on `/`, as ZooKeeper checks it:
//! `digest user:password`, or `ip` (the request's address); a missing header or a failed authentication
//! is 401, an identity without the permission 403. Both are rate limited: one of each per
//! `admin.rateLimiterIntervalInMS` (5 minutes), then 429. (ZooKeeper 3.9 measures the snapshot's interval
//! in microseconds by mistake, so it lets one through every 300 ms; here both use the documented
//! interval.) `admin.snapshot.enabled=false` / `admin.restore.enabled=false` answer 503.

use std::io::Read;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use super::figures::Figures;
use super::http::{Body, Method, Reply, Request};
use crate::auth::{AuthIds, check_acl};
use crate::config::AdminEndpoint;

/// The primary names of the two commands, and their other names.
pub const SNAPSHOT: &[&str] = &["snapshot", "snap"];
pub const RESTORE: &[&str] = &["restore", "rest"];

/// ZooKeeper's `RateLimiter` with one permit per interval.
pub struct RateLimiter {
    interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(interval: Duration) -> RateLimiter {
        RateLimiter { interval, last: Mutex::new(None) }
    }

    fn allow(&self, now: Instant) -> bool {
        let mut last = self.last.lock();
        let allowed = last.is_none_or(|at| now.saturating_duration_since(at) >= self.interval);
        if allowed {
            *last = Some(now);
        }
        allowed
    }
}

/// What the two commands keep between requests.
pub struct DataCommands {
    settings: AdminEndpoint,
    snapshots: RateLimiter,
    restores: RateLimiter,
}

impl DataCommands {
    pub fn new(settings: &AdminEndpoint) -> DataCommands {
        let interval = Duration::from_millis(settings.rate_limit_interval_ms);
        DataCommands {
            settings: settings.clone(),
            snapshots: RateLimiter::new(interval),
            restores: RateLimiter::new(interval),
        }
    }

    /// Whether `name` is one of the two commands.
    pub fn serves(name: &str) -> bool {
        SNAPSHOT.contains(&name) || RESTORE.contains(&name)
    }

    /// Answers `name`, one of the two commands ([`Self::serves`]).
    pub fn handle(&self, figures: &dyn Figures, name: &str, request: Request<'_>) -> Reply {
        let snapshot = SNAPSHOT.contains(&name);
        let primary = if snapshot { SNAPSHOT[0] } else { RESTORE[0] };
        if request.method != (if snapshot { Method::Get } else { Method::Post }) {
            return Reply::method_not_allowed();
        }
        // As for every command that needs a running server, before authentication (ZooKeeper's order).
        if !figures.mode().1 {
            return answer(200, primary, Some(super::admin::NOT_SERVING.into()), Map::new());
        }
        if let Err((status, error)) = authorize(figures, &request) {
            return answer(status, primary, Some(error.into()), Map::new());
        }
        if snapshot { self.snapshot(figures, request.query) } else { self.restore(figures, request.body) }
    }

    fn snapshot(&self, figures: &dyn Figures, query: &str) -> Reply {
        let name = SNAPSHOT[0];
        if !self.settings.snapshot_enabled {
            return answer(503, name, None, Map::new());
        }
        if !self.snapshots.allow(Instant::now()) {
            return answer(429, name, None, Map::new());
        }
        let streaming = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "streaming")
            .is_none_or(|(_, value)| value.eq_ignore_ascii_case("true"));
        match figures.take_snapshot() {
            Ok(written) => {
                let size = std::fs::metadata(&written.path).map_or(0, |m| m.len());
                let reply = if streaming {
                    Reply {
                        status: 200,
                        content_type: "application/octet-stream",
                        headers: Vec::new(),
                        body: Body::File(written.path),
                    }
                } else {
                    answer(200, name, None, Map::new())
                };
                reply.header("last_zxid", format!("0x{:x}", written.zxid)).header("snapshot_size", size.to_string())
            }
            Err(e) => {
                tracing::warn!("the AdminServer's snapshot failed: {e}");
                answer(500, name, Some(e), Map::new())
            }
        }
    }

    fn restore(&self, figures: &dyn Figures, body: &mut dyn Read) -> Reply {
        let name = RESTORE[0];
        if !self.settings.restore_enabled {
            return answer(503, name, None, Map::new());
        }
        if !self.restores.allow(Instant::now()) {
            return answer(429, name, None, Map::new());
        }
        let upload = figures.snapshot_dir().join(format!(".restore-{}.upload", std::process::id()));
        let received = std::fs::File::create(&upload).and_then(|mut file| {
            std::io::copy(body, &mut file)?;
            file.sync_all()
        });
        if let Err(e) = received {
            let _ = std::fs::remove_file(&upload);
            return answer(
                500,
                name,
                Some(format!("cannot receive the snapshot into {}: {e}", upload.display())),
                Map::new(),
            );
        }
        match figures.restore(upload) {
            Ok(zxid) => {
                let mut fields = Map::new();
                fields.insert("last_zxid".into(), json!(zxid));
                answer(200, name, None, fields)
            }
            Err(e) => {
                tracing::warn!("the AdminServer's restore failed: {e}");
                answer(500, name, Some(e), Map::new())
            }
        }
    }
}

/// ZooKeeper's authentication of an admin request (`Authorization: <scheme> [<credentials>]`) and its
/// check of ALL on `/`: the status and error of a refusal.
fn authorize(figures: &dyn Figures, request: &Request<'_>) -> Result<(), (u16, &'static str)> {
    let header = request.authorization.ok_or((401, "Auth info is missing for the command"))?;
    let not_authenticated = (401, "Not authenticated");
    let mut parts = header.split(' ');
    let (scheme, credentials) = (parts.next().unwrap_or_default(), parts.next());
    if parts.next().is_some() {
        return Err(not_authenticated);
    }
    let remote = request.remote.ok_or(not_authenticated)?;
    let mut auth = AuthIds::for_peer(remote);
    match (scheme, credentials) {
        ("digest", Some(credentials)) => {
            let super_digest = figures.config().super_digest.as_deref();
            auth.authenticate("digest", credentials.as_bytes(), super_digest).map_err(|_| not_authenticated)?;
            // The identity is the one named, not the address the request came from.
            auth.ids.retain(|id| id.scheme != "ip");
        }
        ("ip", None) => {}
        _ => return Err(not_authenticated),
    }
    let tree = figures.tree();
    let root_acl = tree.acl(tree.root());
    if check_acl(root_acl, &auth, fk_net::client::perms::ALL, figures.config().skip_acl) {
        Ok(())
    } else {
        Err((403, "Not authorized"))
    }
}

/// A JSON answer in ZooKeeper's shape: the command, its error (null if none), and `fields`.
fn answer(status: u16, command: &str, error: Option<String>, mut fields: Map<String, Value>) -> Reply {
    fields.insert("command".into(), json!(command));
    fields.insert("error".into(), error.map_or(Value::Null, Value::from));
    Reply::with_status(status, "application/json", super::jackson::to_string(&Value::Object(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_permit_per_interval() {
        let limiter = RateLimiter::new(Duration::from_secs(300));
        let start = Instant::now();
        assert!(limiter.allow(start));
        assert!(!limiter.allow(start + Duration::from_secs(299)));
        assert!(limiter.allow(start + Duration::from_secs(300)));
        assert!(!limiter.allow(start + Duration::from_secs(301)));
    }
}
