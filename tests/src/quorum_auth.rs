//! The scenario the tests of authentication between members share, whatever the mechanism: a mixed
//! ensemble whose member 0 is Java authenticates every member; member 2 restarted with a JAAS file whose
//! credentials the others refuse is not admitted while the other two (a quorum) go on serving writes;
//! restarted with good ones it follows again and catches up.

use std::path::Path;
use std::time::Duration;

use crate::ensemble::{Mode, TestEnsemble};
use crate::zk;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// The member refused, then admitted again.
const REFUSED: usize = 2;

/// Runs the scenario; returns what member 2 logged while refused and what the other two logged
/// meanwhile, for the caller's mechanism-specific checks.
pub async fn refused_then_admitted(ensemble: &mut TestEnsemble, refused: &Path, admitted: &Path) -> (String, String) {
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    eprintln!("leader: member {leader} ({:?})", ensemble.implementation(leader));
    for i in 0..3 {
        let c = zk::synced_client(&ensemble.client_address(i).to_string(), Duration::from_secs(10), "/").await;
        c.create(&format!("/authenticated-{i}"), b"", &zk::persistent()).await.expect("create");
    }
    let java = ensemble.log_text(0);
    assert!(java.contains("Successfully completed the authentication using SASL"), "{java}");
    assert!(!java.contains("Maintaining learner connection despite SASL authentication failure"), "{java}");

    ensemble.append_config(REFUSED, &format!("java.security.auth.login.config={}\n", refused.display()));
    ensemble.restart(REFUSED);
    let c = zk::synced_client(&ensemble.client_address(0).to_string(), Duration::from_secs(10), "/").await;
    for n in 0..20 {
        c.create(&format!("/while-refused-{n}"), b"", &zk::persistent()).await.expect("a write without member 2");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !matches!(ensemble.mode(REFUSED), Some(Mode::Leader | Mode::Follower)),
        "member 2 joined with credentials the others refuse:\n{}",
        ensemble.log_text(REFUSED)
    );
    let logs = (ensemble.log_text(REFUSED), ensemble.log_text(0) + &ensemble.log_text(1));

    ensemble.append_config(REFUSED, &format!("java.security.auth.login.config={}\n", admitted.display()));
    ensemble.restart(REFUSED);
    ensemble.wait_for_mode(REFUSED, Some(Mode::Follower), ELECTION_TIMEOUT);
    let c = zk::synced_client(&ensemble.client_address(REFUSED).to_string(), Duration::from_secs(10), "/").await;
    for n in 0..20 {
        assert!(c.check_stat(&format!("/while-refused-{n}")).await.unwrap().is_some(), "member 2 caught up");
    }
    logs
}
