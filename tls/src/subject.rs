//! A certificate's subject as Java's `X500Principal.getName()` writes it (RFC 2253): ZooKeeper's x509
//! authentication makes it the client's ACL id (`x509:<subject>`), so the text must match Java's to the
//! character for existing ACLs to keep working.
//!
//! Java's rules (sun.security.x509.AVA.toRFC2253String, RDN, X500Name): relative names last-encoded
//! first, joined with `,`; the values of a multi-valued one in encoding order, joined with `+`; only the
//! keywords CN, C, L, ST, O, OU, STREET, DC and UID, any other type as its dotted OID; a value whose type
//! is an OID, or is not one of Java's string types, as `#` and the hex of its DER encoding; a string
//! value with `,=+<>#;"\` escaped by a backslash, a NUL as `\00`, and leading and trailing spaces (and
//! carriage returns) escaped.

use x509_parser::der_parser::asn1_rs::{Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

use crate::TlsError;

/// The RFC 2253 keywords Java writes, by OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of a DER certificate, as Java's `getSubjectX500Principal().getName()`.
pub fn java_subject_name(certificate_der: &[u8]) -> Result<String, TlsError> {
    let (_, certificate) = X509Certificate::from_der(certificate_der)
        .map_err(|e| TlsError::Certificate(format!("cannot parse the certificate: {e}")))?;
    let rdns: Vec<String> = certificate
        .subject()
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Result<Vec<_>, _>>().map(|avas| avas.join("+")))
        .collect::<Result<_, _>>()?;
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn attribute(ava: &AttributeTypeAndValue<'_>) -> Result<String, TlsError> {
    let oid = ava.attr_type().to_id_string();
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    let value = ava.attr_value();
    let is_java_string =
        [Tag::PrintableString, Tag::T61String, Tag::Ia5String, Tag::GeneralString, Tag::BmpString, Tag::Utf8String]
            .contains(&value.tag());
    match keyword {
        Some(keyword) if is_java_string => Ok(format!("{keyword}={}", escape(&String::from_utf8_lossy(value.data)))),
        _ => {
            let der = value.to_der_vec().map_err(|e| TlsError::Certificate(format!("attribute {oid}: {e}")))?;
            let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
            Ok(format!("{}=#{hex}", keyword.unwrap_or(&oid)))
        }
    }
}

fn escape(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = chars.iter().take_while(|c| blank(c)).count();
    let trail = chars.iter().rev().take_while(|c| blank(c)).count();
    let mut out = String::with_capacity(value.len());
    for (i, &c) in chars.iter().enumerate() {
        if ",=+<>#;\"\\".contains(c) || i < lead || i >= chars.len() - trail {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_java_does() {
        assert_eq!(escape("Example, Inc."), "Example\\, Inc.");
        assert_eq!(escape("a=b+c<d>e#f;g\"h\\i"), "a\\=b\\+c\\<d\\>e\\#f\\;g\\\"h\\\\i");
        assert_eq!(escape(" padded "), "\\ padded\\ ");
        assert_eq!(escape("nul\0"), "nul\\00");
        assert_eq!(escape("Zürich"), "Zürich");
    }

    /// The certificate ZooKeeper 3.8 logged as `Authenticated Id '…' for Scheme 'x509'`: an email
    /// address (an OID Java has no keyword for), a multi-valued name and a comma to escape.
    #[test]
    fn a_subject_as_zookeeper_named_it() {
        let pem = include_str!("../fixtures/odd-subject.pem");
        let (_, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(
            java_subject_name(&der).unwrap(),
            "1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d,CN=alice+UID=a1,OU=Test,\
             O=Example\\, Inc.,C=US"
        );
    }
}
