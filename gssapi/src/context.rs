//! Safe handles over the library's names, credentials and security contexts, each released when
//! dropped.

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::GssError;
use crate::ffi::{self, Api, Buffer, ContextHandle, CredHandle, NameHandle};

/// Turns a failed call's status into an error naming what was being done.
fn check(api: &Api, doing: &'static str, major: u32, minor: u32) -> Result<u32, GssError> {
    if major & ffi::ERROR_MASK == 0 {
        return Ok(major);
    }
    Err(GssError::Call { doing, reason: ffi::status_text(api, major, minor) })
}

/// A Kerberos principal name (`service/host@REALM` or `user@REALM`).
pub struct Name {
    api: &'static Api,
    handle: NameHandle,
}

impl Name {
    pub fn principal(text: &str) -> Result<Name, GssError> {
        let api = ffi::api()?;
        let mut minor = 0;
        let mut handle = std::ptr::null_mut();
        let kind = ffi::oid(ffi::KRB5_PRINCIPAL_NAME);
        // SAFETY: the input buffer borrows `text` for the call; the library copies it.
        let major = unsafe { (api.import_name)(&mut minor, &Buffer::borrowing(text.as_bytes()), &kind, &mut handle) };
        check(api, "reading a principal name", major, minor)?;
        Ok(Name { api, handle })
    }

    fn from_handle(api: &'static Api, handle: NameHandle) -> Name {
        Name { api, handle }
    }

    /// The name as Kerberos writes it (`client@EXAMPLE.COM`).
    pub fn text(&self) -> Result<String, GssError> {
        let mut minor = 0;
        let mut out = Buffer::EMPTY;
        // SAFETY: a live name; the output buffer is released below.
        let major = unsafe { (self.api.display_name)(&mut minor, self.handle, &mut out, std::ptr::null_mut()) };
        check(self.api, "writing a principal name", major, minor)?;
        // SAFETY: filled in by the library, then released.
        let text = unsafe { out.to_vec() };
        unsafe { (self.api.release_buffer)(&mut minor, &mut out) };
        String::from_utf8(text)
            .map_err(|_| GssError::Call { doing: "writing a principal name", reason: "not UTF-8".into() })
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: a name this handle owns.
        unsafe { (self.api.release_name)(&mut minor, &mut self.handle) };
    }
}

/// What a credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Accepting contexts (a server: its service key from a keytab).
    Accept,
    /// Initiating them (a client: a ticket, from a keytab or a ticket cache).
    Initiate,
}

/// A credential of one principal.
pub struct Credential {
    api: &'static Api,
    handle: CredHandle,
}

// SAFETY: MIT's credential records carry their own lock; the library allows a credential to be used from
// several threads, each with its own contexts.
unsafe impl Send for Credential {}
unsafe impl Sync for Credential {}

impl Credential {
    /// `principal`'s credential for `usage` from the credential store `store`, MIT's `key=value` pairs
    /// (`keytab`, `client_keytab`, `ccache`); the library's defaults for anything the store leaves out.
    pub fn acquire(principal: Option<&str>, usage: Usage, store: &[(&str, &str)]) -> Result<Credential, GssError> {
        let api = ffi::api()?;
        let name = principal.map(Name::principal).transpose()?;
        let owned: Vec<(CString, CString)> = store
            .iter()
            .map(|(k, v)| Ok((CString::new(*k)?, CString::new(*v)?)))
            .collect::<Result<_, std::ffi::NulError>>()
            .map_err(|_| GssError::Call { doing: "acquiring a credential", reason: "a NUL byte in a path".into() })?;
        let elements: Vec<ffi::KeyValue> =
            owned.iter().map(|(k, v)| ffi::KeyValue { key: k.as_ptr(), value: v.as_ptr() }).collect();
        let set = ffi::KeyValueSet { count: elements.len() as u32, elements: elements.as_ptr() };
        let mut krb5 = ffi::oid(ffi::KRB5_MECHANISM);
        let mechanisms = ffi::OidSet { count: 1, elements: &mut krb5 };
        let usage = match usage {
            Usage::Accept => ffi::C_ACCEPT,
            Usage::Initiate => ffi::C_INITIATE,
        };
        let mut minor = 0;
        let mut handle = std::ptr::null_mut();
        // SAFETY: every input lives until the call returns; no actual-mechanism set or time is asked for.
        let major = unsafe {
            (api.acquire_cred_from)(
                &mut minor,
                name.as_ref().map_or(std::ptr::null_mut(), |n| n.handle),
                ffi::INDEFINITE,
                &mechanisms,
                usage,
                &set,
                &mut handle,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        check(api, "acquiring a credential", major, minor)?;
        Ok(Credential { api, handle })
    }
}

impl Credential {
    /// A server's credential: `principal`'s key from `keytab` (the library's default keytab if `None`).
    pub fn acceptor(principal: &str, keytab: Option<&Path>) -> Result<Credential, GssError> {
        let keytab = keytab.map(path_text).transpose()?;
        let store: Vec<(&str, &str)> = keytab.iter().map(|k| ("keytab", k.as_str())).collect();
        Credential::acquire(Some(principal), Usage::Accept, &store)
    }

    /// A client's credential whose tickets are got with `principal`'s key from `keytab` (the library's
    /// default client keytab if `None`) and kept in a cache in this process's memory, its own: no other
    /// credential or program sees or replaces them.
    pub fn initiator_from_keytab(principal: Option<&str>, keytab: Option<&Path>) -> Result<Credential, GssError> {
        static CACHES: AtomicU64 = AtomicU64::new(0);
        let cache = format!("MEMORY:fk-{}-{}", std::process::id(), CACHES.fetch_add(1, Ordering::Relaxed));
        let keytab = keytab.map(path_text).transpose()?;
        let mut store = vec![("ccache", cache.as_str())];
        store.extend(keytab.iter().map(|k| ("client_keytab", k.as_str())));
        Credential::acquire(principal, Usage::Initiate, &store)
    }

    /// A client's credential from the tickets in the cache `cache` (the default cache if `None`), as
    /// `kinit` left them.
    pub fn initiator_from_cache(principal: Option<&str>, cache: Option<&Path>) -> Result<Credential, GssError> {
        let cache = cache.map(|c| path_text(c).map(|c| format!("FILE:{c}"))).transpose()?;
        let store: Vec<(&str, &str)> = cache.iter().map(|c| ("ccache", c.as_str())).collect();
        Credential::acquire(principal, Usage::Initiate, &store)
    }
}

fn path_text(path: &Path) -> Result<String, GssError> {
    path.to_str().map(str::to_owned).ok_or_else(|| GssError::Call {
        doing: "acquiring a credential",
        reason: format!("{} is not UTF-8", path.display()),
    })
}

impl Drop for Credential {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: a credential this handle owns.
        unsafe { (self.api.release_cred)(&mut minor, &mut self.handle) };
    }
}

/// One security context, either side, established by exchanging tokens.
pub struct SecurityContext {
    api: &'static Api,
    handle: ContextHandle,
    established: bool,
}

// SAFETY: a context is used by one thread at a time (`&mut self`); MIT contexts hold no thread-local state.
unsafe impl Send for SecurityContext {}

/// The flags an initiator asks for: mutual authentication (the server proves its key too), and the
/// integrity and confidentiality the SASL security-layer negotiation wraps its tokens with.
const INITIATOR_FLAGS: u32 =
    ffi::MUTUAL_FLAG | ffi::REPLAY_FLAG | ffi::SEQUENCE_FLAG | ffi::INTEG_FLAG | ffi::CONF_FLAG;

impl SecurityContext {
    pub fn new() -> Result<SecurityContext, GssError> {
        Ok(SecurityContext { api: ffi::api()?, handle: std::ptr::null_mut(), established: false })
    }

    pub fn is_established(&self) -> bool {
        self.established
    }

    /// The acceptor's step: the initiator's token in, the token to answer with out (empty when none), and
    /// once established the initiator's principal.
    pub fn accept(&mut self, credential: &Credential, token: &[u8]) -> Result<(Vec<u8>, Option<String>), GssError> {
        assert!(!self.established, "a token accepted after the context was established");
        let mut minor = 0;
        let mut source = std::ptr::null_mut();
        let mut out = Buffer::EMPTY;
        // SAFETY: the context handle is ours (null before the first call); the output buffer and source
        // name are released or owned below.
        let major = unsafe {
            (self.api.accept_sec_context)(
                &mut minor,
                &mut self.handle,
                credential.handle,
                &Buffer::borrowing(token),
                std::ptr::null(),
                &mut source,
                std::ptr::null_mut(),
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let source = (!source.is_null()).then(|| Name::from_handle(self.api, source));
        let reply = self.take(&mut out);
        let major = check(self.api, "accepting a Kerberos authentication", major, minor)?;
        if major & ffi::CONTINUE_NEEDED != 0 {
            return Ok((reply, None));
        }
        self.established = true;
        let peer = source
            .ok_or(GssError::Call { doing: "accepting a Kerberos authentication", reason: "no initiator name".into() })?
            .text()?;
        Ok((reply, Some(peer)))
    }

    /// The initiator's step: `None` to start, then each of the acceptor's tokens; the token to send out
    /// (empty when none).
    pub fn initiate(
        &mut self,
        credential: &Credential,
        target: &Name,
        token: Option<&[u8]>,
    ) -> Result<Vec<u8>, GssError> {
        assert!(!self.established, "a token given after the context was established");
        let mut minor = 0;
        let mut out = Buffer::EMPTY;
        let krb5 = ffi::oid(ffi::KRB5_MECHANISM);
        let input = Buffer::borrowing(token.unwrap_or_default());
        // SAFETY: as in `accept`.
        let major = unsafe {
            (self.api.init_sec_context)(
                &mut minor,
                credential.handle,
                &mut self.handle,
                target.handle,
                &krb5,
                INITIATOR_FLAGS,
                0,
                std::ptr::null(),
                &input,
                std::ptr::null_mut(),
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let reply = self.take(&mut out);
        let major = check(self.api, "authenticating with Kerberos", major, minor)?;
        self.established = major & ffi::CONTINUE_NEEDED == 0;
        Ok(reply)
    }

    /// `message` protected for the peer: integrity always, confidentiality when `seal`.
    pub fn wrap(&self, message: &[u8], seal: bool) -> Result<Vec<u8>, GssError> {
        assert!(self.established, "wrap before the context was established");
        let mut minor = 0;
        let mut out = Buffer::EMPTY;
        // SAFETY: an established context; the output buffer is released in `take`.
        let major = unsafe {
            (self.api.wrap)(
                &mut minor,
                self.handle,
                i32::from(seal),
                0,
                &Buffer::borrowing(message),
                std::ptr::null_mut(),
                &mut out,
            )
        };
        let token = self.take(&mut out);
        check(self.api, "wrapping a message", major, minor)?;
        Ok(token)
    }

    /// The message inside a token the peer wrapped; an error when the token was not made by the peer of
    /// this context or was altered.
    pub fn unwrap(&self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        assert!(self.established, "unwrap before the context was established");
        let mut minor = 0;
        let mut out = Buffer::EMPTY;
        // SAFETY: as in `wrap`.
        let major = unsafe {
            (self.api.unwrap)(
                &mut minor,
                self.handle,
                &Buffer::borrowing(token),
                &mut out,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let message = self.take(&mut out);
        check(self.api, "unwrapping a message", major, minor)?;
        Ok(message)
    }

    /// The bytes of an output buffer, which is then released.
    fn take(&self, out: &mut Buffer) -> Vec<u8> {
        // SAFETY: an output buffer of this library, filled in or left empty.
        let bytes = unsafe { out.to_vec() };
        let mut minor = 0;
        // SAFETY: releasing an empty buffer is allowed.
        unsafe { (self.api.release_buffer)(&mut minor, out) };
        bytes
    }
}

impl Drop for SecurityContext {
    fn drop(&mut self) {
        if self.handle.is_null() {
            return;
        }
        let mut minor = 0;
        // SAFETY: a context this handle owns; no output token is wanted.
        unsafe { (self.api.delete_sec_context)(&mut minor, &mut self.handle, std::ptr::null_mut()) };
    }
}
