//! TLS between members, with Apache ZooKeeper 3.8 members in the same ensemble: `sslQuorum=true` and
//! the `ssl.quorum.*` stores on every member, election and learner connections over mutually
//! authenticated TLS with each side's certificate checked against the other's address; plaintext on
//! those ports is refused. And the rolling move of a running mixed ensemble from plaintext to TLS as
//! ZooKeeper documents it (portUnification=true everywhere, then sslQuorum=true, then
//! portUnification=false, one restart at a time) under an acknowledged write load, nothing lost. With
//! `sslQuorumReloadCertFiles`, rewritten stores are read again and the next connections use them.
//! Skips with a printed reason where Java, Debian's package or openssl is missing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fk_tests::ensemble::{EnsembleSpec, Implementation, TestEnsemble};
use fk_tests::pki::Pki;
use fk_tests::zk;

const ELECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The `ssl.quorum.*` stores of every member: one certificate for 127.0.0.1, the test CA.
fn stores(pki: &Pki) -> String {
    format!(
        "ssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n",
        pki.path("server.pem").display(),
        pki.path("ca.pem").display()
    )
}

fn start_or_skip(spec: EnsembleSpec) -> Option<TestEnsemble> {
    fk_tests::ensemble::zookeeper_or_skip()?;
    TestEnsemble::start_or_skip(spec)
}

/// Whether a plaintext peer is refused at `address`: it sends an election opening (protocol version,
/// sid 99, an address) and gets the connection closed, with nothing or only a TLS alert said.
fn plaintext_is_refused(address: std::net::SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else { return true };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut opening = Vec::new();
    opening.extend_from_slice(&(-65536i64).to_be_bytes());
    opening.extend_from_slice(&99i64.to_be_bytes());
    let host = b"127.0.0.1:1";
    opening.extend_from_slice(&(host.len() as i32).to_be_bytes());
    opening.extend_from_slice(host);
    let _ = stream.write_all(&opening);
    let mut answer = Vec::new();
    const TLS_ALERT_RECORD: u8 = 0x15;
    match stream.read_to_end(&mut answer) {
        Ok(_) => answer.first().is_none_or(|&b| b == TLS_ALERT_RECORD),
        // Reset by the peer: refused; still open after the timeout: taken.
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

async fn writes_reach_every_member(ensemble: &TestEnsemble, tag: &str) {
    for i in 0..ensemble.len() {
        let c = zk::synced_client(&ensemble.client_address(i).to_string(), Duration::from_secs(10), "/").await;
        c.create(&format!("/{tag}-{i}"), b"", &zk::persistent()).await.expect("create");
    }
    for reader in 0..ensemble.len() {
        let c = zk::synced_client(&ensemble.client_address(reader).to_string(), Duration::from_secs(10), "/").await;
        for writer in 0..ensemble.len() {
            let path = format!("/{tag}-{writer}");
            assert!(c.check_stat(&path).await.unwrap().is_some(), "member {reader} lacks {path}");
        }
    }
}

/// A Java leader or follower and ferrokeeper members, all on quorum TLS from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_ensemble_over_quorum_tls() {
    let Some(pki) = Pki::make() else { return };
    let members = vec![Implementation::ZooKeeper, Implementation::Ferrokeeper, Implementation::Ferrokeeper];
    let spec = EnsembleSpec::new(members)
        .with_ticks(500, 10, 5)
        .with_extra(&format!("sslQuorum=true\nsslQuorumReloadCertFiles=true\n{}", stores(&pki)));
    let Some(mut ensemble) = start_or_skip(spec) else { return };
    let leader = ensemble.wait_for_leader(ELECTION_TIMEOUT);
    eprintln!("leader: member {leader} ({:?})", ensemble.implementation(leader));
    writes_reach_every_member(&ensemble, "tls").await;
    for i in 1..3 {
        assert!(plaintext_is_refused(ensemble.election_address(i)), "member {i} took a plaintext election peer");
        assert!(plaintext_is_refused(ensemble.quorum_address(i)), "member {i} took a plaintext quorum peer");
        let log = ensemble.log_text(i);
        assert!(log.contains("TLS between members"), "member {i} did not say TLS is on:\n{log}");
    }
    // sslQuorumReloadCertFiles: the key store rewritten in place is read again (and still serves).
    std::thread::sleep(Duration::from_millis(1100));
    let key_store = pki.path("server.pem");
    std::fs::write(&key_store, std::fs::read(&key_store).unwrap()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reloaded = "sslQuorumReloadCertFiles: the ssl.quorum stores were read again";
    while !(1..3).all(|i| ensemble.log_text(i).contains(reloaded)) {
        assert!(std::time::Instant::now() < deadline, "the rewritten key store was not read again");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The Java member leads, then a ferrokeeper one: kill whoever leads and the others carry on.
    ensemble.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    ensemble.wait_for_leader_among(&survivors, ELECTION_TIMEOUT);
    let c = zk::synced_client(&ensemble.client_address(survivors[0]).to_string(), Duration::from_secs(10), "/").await;
    c.create("/after", b"", &zk::persistent()).await.expect("a write after the leader died");
    ensemble.restart(leader);
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let c = zk::synced_client(&ensemble.client_address(leader).to_string(), Duration::from_secs(10), "/").await;
    assert!(c.check_stat("/after").await.unwrap().is_some(), "the restarted member caught up over TLS");
}

/// ZooKeeper's documented rolling move to quorum TLS, on a running mixed ensemble under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_mixed_ensemble_moves_to_quorum_tls_one_restart_at_a_time() {
    let Some(pki) = Pki::make() else { return };
    let members = vec![Implementation::Ferrokeeper, Implementation::ZooKeeper, Implementation::Ferrokeeper];
    let Some(mut ensemble) = start_or_skip(EnsembleSpec::new(members).with_ticks(500, 10, 5)) else { return };
    ensemble.wait_for_leader(ELECTION_TIMEOUT);
    let load = zk::WriteLoad::start(ensemble.connect_string());
    let steps = [
        format!("portUnification=true\n{}", stores(&pki)),
        "sslQuorum=true\n".into(),
        "portUnification=false\n".into(),
    ];
    ensemble.restart_through(&steps, || load.acknowledged()).await;
    let acked = load.finish().await;
    assert!(acked.len() > 90, "writes were acknowledged throughout ({})", acked.len());
    tokio::task::block_in_place(|| ensemble.assert_every_write_on_every_member(&acked));
    for i in [0, 2] {
        assert!(plaintext_is_refused(ensemble.election_address(i)), "member {i} still takes plaintext");
    }
    let java = ensemble.log_text(1);
    assert!(java.contains("SSL handshake complete"), "the Java member dialled over TLS at the end:\n{java}");
    for i in (0..3).filter(|&i| ensemble.implementation(i) == Implementation::ZooKeeper) {
        let mntr = ensemble.four_letter(i, "mntr");
        assert!(mntr.contains("zk_digest_mismatches_count\t0"), "member {i}: {mntr}");
    }
}
