//! Which txns `log dump` prints.

use fk_net::txn::Txn;

use super::describe::{LOGGED_OPS, op_names, touched_paths};

/// Every condition given must hold. A multi matches `--op` by its own name or any op inside it, and
/// `--path-prefix` by any znode it touches (a closeSession by the ephemerals it deletes).
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    pub from_zxid: Option<i64>,
    pub to_zxid: Option<i64>,
    pub session: Option<i64>,
    /// A plain string prefix: `/app` matches `/app2` too (add the slash to mean the subtree).
    pub path_prefix: Option<String>,
    /// ZooKeeper op names; empty = any.
    pub ops: Vec<&'static str>,
}

impl Filter {
    pub(crate) fn matches(&self, txn: &Txn) -> bool {
        let h = &txn.header;
        self.from_zxid.is_none_or(|from| h.zxid >= from)
            && self.to_zxid.is_none_or(|to| h.zxid <= to)
            && self.session.is_none_or(|session| h.client_id == session)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| touched_paths(&txn.body).iter().any(|path| path.starts_with(prefix)))
            && (self.ops.is_empty() || op_names(&txn.body).iter().any(|op| self.ops.contains(op)))
    }

    /// Whether no txn at or after `zxid` can match: logs are in zxid order, so reading can stop.
    pub(crate) fn past_end(&self, zxid: i64) -> bool {
        self.to_zxid.is_some_and(|to| zxid > to)
    }
}

/// An op name as ZooKeeper spells it (any case accepted), for `--op`.
pub(crate) fn parse_op(text: &str) -> Result<&'static str, String> {
    LOGGED_OPS.iter().map(|op| op.name()).find(|name| name.eq_ignore_ascii_case(text)).ok_or_else(|| {
        let names: Vec<_> = LOGGED_OPS.iter().map(|op| op.name()).collect();
        format!("'{text}' is not an op a txn log holds; one of: {}", names.join(", "))
    })
}

/// A session id as ZooKeeper prints it: hex, with or without "0x".
pub(crate) fn parse_session(text: &str) -> Result<i64, String> {
    let hex = text.trim_start_matches("0x");
    u64::from_str_radix(hex, 16).map(|id| id as i64).map_err(|e| format!("'{text}' is not a hex session id: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fk_net::client::OpCode;
    use fk_net::txn::{CreateSessionTxn, SetDataTxn, TxnBody, TxnHeader};

    fn txn(zxid: i64, session: i64, body: TxnBody) -> Txn {
        let header = TxnHeader { client_id: session, cxid: 1, zxid, time: 0, txn_type: body.txn_type() };
        Txn { header, body, digest: None }
    }

    fn set(path: &str) -> TxnBody {
        TxnBody::SetData(SetDataTxn { path: path.into(), data: None, version: 1 })
    }

    #[test]
    fn every_condition_must_hold() {
        let delete = TxnBody::Delete { op: OpCode::Delete, path: "/q/x".into() };
        let multi = txn(5, 7, TxnBody::Multi(vec![set("/app/a"), delete]));
        let session = txn(6, 8, TxnBody::CreateSession(CreateSessionTxn { timeout_ms: 1 }));
        let close = txn(7, 7, TxnBody::CloseSession { paths_to_delete: Some(vec!["/live/e".into()]) });
        let plain = txn(8, 7, set("/app2"));
        let f = |edit: &dyn Fn(&mut Filter)| {
            let mut filter = Filter::default();
            edit(&mut filter);
            filter
        };
        // (filter, which of multi, session, close, plain match)
        let cases: Vec<(&str, Filter, [bool; 4])> = vec![
            ("none", f(&|_| {}), [true, true, true, true]),
            ("from", f(&|f| f.from_zxid = Some(6)), [false, true, true, true]),
            ("to", f(&|f| f.to_zxid = Some(6)), [true, true, false, false]),
            ("range", f(&|f| (f.from_zxid, f.to_zxid) = (Some(6), Some(7))), [false, true, true, false]),
            ("session", f(&|f| f.session = Some(7)), [true, false, true, true]),
            ("prefix in a multi", f(&|f| f.path_prefix = Some("/q/".into())), [true, false, false, false]),
            ("prefix is textual", f(&|f| f.path_prefix = Some("/app".into())), [true, false, false, true]),
            ("subtree", f(&|f| f.path_prefix = Some("/app/".into())), [true, false, false, false]),
            ("ephemerals closed", f(&|f| f.path_prefix = Some("/live".into())), [false, false, true, false]),
            ("op inside a multi", f(&|f| f.ops = vec!["delete"]), [true, false, false, false]),
            ("op multi", f(&|f| f.ops = vec!["multi"]), [true, false, false, false]),
            ("ops", f(&|f| f.ops = vec!["setData", "createSession"]), [true, true, false, true]),
            ("all", f(&|f| (f.session, f.ops) = (Some(7), vec!["setData"])), [true, false, false, true]),
        ];
        for (what, filter, expected) in cases {
            let got = [&multi, &session, &close, &plain].map(|t| filter.matches(t));
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn op_names_and_sessions_parse_as_zookeeper_prints_them() {
        assert_eq!(parse_op("setdata"), Ok("setData"));
        assert_eq!(parse_op("createTTL"), Ok("createTTL"));
        assert!(parse_op("getData").unwrap_err().contains("one of: create, create2"));
        assert_eq!(parse_session("0x100007ea1af0000"), Ok(0x100007ea1af0000));
        assert_eq!(parse_session("ffffffffffffffff"), Ok(-1));
        assert!(parse_session("xyz").is_err());
    }
}
