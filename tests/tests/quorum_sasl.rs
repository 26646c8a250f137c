//! SASL (DIGEST-MD5) between members, with an Apache ZooKeeper 3.8 member in the same ensemble, configured
//! as ZooKeeper documents it: `quorum.auth.enableSasl`, `learnerRequireSasl` and `serverRequireSasl`
//! true, and a JAAS file whose `QuorumServer` section lists the members' users and whose `QuorumLearner`
//! section holds this member's own (ZooKeeper takes the file as a JVM flag, ferrokeeper as the zoo.cfg
//! key). Every member authenticates every election and learner connection; a member with a wrong
//! password is not admitted and the other two go on serving; given the right one, it joins and catches
//! up. And ZooKeeper's rolling path to required SASL on a running ensemble under load. Skips with a printed
//! reason where Java or Debian's package is missing.

use std::time::Duration;

use fk_tests::ensemble::{EnsembleSpec, Implementation, TestEnsemble};
use fk_tests::zk;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);

fn jaas(dir: &std::path::Path, name: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_member=\"secret\";\n}};\n\
         QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"member\"\n  \
         password=\"{password}\";\n}};\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_ensemble_authenticates_its_members_and_refuses_a_wrong_password() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (good, wrong) = (jaas(dir.path(), "good.conf", "secret"), jaas(dir.path(), "wrong.conf", "guess"));
    let members = vec![Implementation::ZooKeeper, Implementation::Ferrokeeper, Implementation::Ferrokeeper];
    let spec = EnsembleSpec::new(members)
        .with_ticks(500, 10, 5)
        .with_extra(&format!(
            "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n\
             java.security.auth.login.config={}\n",
            good.display()
        ))
        .with_java_option(&format!("-Djava.security.auth.login.config={}", good.display()));
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    let (refused, others) = fk_tests::quorum_auth::refused_then_admitted(&mut ensemble, &wrong, &good).await;
    assert!(refused.contains("refused our credentials"), "{refused}");
    assert!(others.contains("wrong password") || others.contains("Failed to authenticate using SASL"), "{others}");
}

/// ZooKeeper's rolling path to required SASL on a running mixed ensemble under an acknowledged write
/// load: enableSasl with nothing required, then learnerRequireSasl, then serverRequireSasl, one restart
/// at a time; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_mixed_ensemble_moves_to_required_sasl_one_restart_at_a_time() {
    if fk_tests::ensemble::zookeeper_or_skip().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = jaas(dir.path(), "good.conf", "secret");
    let members = vec![Implementation::Ferrokeeper, Implementation::ZooKeeper, Implementation::Ferrokeeper];
    let spec = EnsembleSpec::new(members)
        .with_ticks(500, 10, 5)
        .with_java_option(&format!("-Djava.security.auth.login.config={}", good.display()));
    let Some(mut ensemble) = TestEnsemble::start_or_skip(spec) else { return };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let load = zk::WriteLoad::start(ensemble.connect_string());
    let steps = [
        format!("quorum.auth.enableSasl=true\njava.security.auth.login.config={}\n", good.display()),
        "quorum.auth.learnerRequireSasl=true\n".to_owned(),
        "quorum.auth.serverRequireSasl=true\n".to_owned(),
    ];
    ensemble.restart_through(&steps, || load.acknowledged()).await;
    let acked = load.finish().await;
    assert!(acked.len() > 90, "writes were acknowledged throughout ({})", acked.len());
    tokio::task::block_in_place(|| ensemble.assert_every_write_on_every_member(&acked));
    let java = ensemble.log_text(1);
    assert!(java.contains("Successfully completed the authentication using SASL"), "{java}");
}
