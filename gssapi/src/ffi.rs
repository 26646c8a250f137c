//! The GSS-API calls ZooKeeper's Kerberos needs (RFC 2744's C bindings, plus MIT's `gss_acquire_cred_from`
//! for keytabs named per credential) and libkrb5's default realm, from the system's MIT Kerberos
//! libraries opened at run time.
//!
//! Why at run time rather than linked: a server that never uses Kerberos then needs neither Kerberos
//! headers nor clang to build (a binding generated at build time would) nor the library to run; one that
//! is configured for Kerberos without the library stops start-up saying which package provides it. The
//! declarations below are the stable C ABI of `gssapi/gssapi.h` and `gssapi/gssapi_ext.h` (MIT krb5 1.11
//! and later); only this module touches raw pointers.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

use crate::GssError;

/// `gss_buffer_desc`.
#[repr(C)]
pub struct Buffer {
    pub length: usize,
    pub value: *mut c_void,
}

impl Buffer {
    pub const EMPTY: Buffer = Buffer { length: 0, value: std::ptr::null_mut() };

    /// A buffer over `bytes`, for input parameters (GSS-API does not write through them).
    pub fn borrowing(bytes: &[u8]) -> Buffer {
        Buffer { length: bytes.len(), value: bytes.as_ptr().cast_mut().cast() }
    }

    /// The bytes of a buffer GSS-API filled in.
    ///
    /// # Safety
    /// `value` points at `length` readable bytes (or `length` is 0).
    pub unsafe fn to_vec(&self) -> Vec<u8> {
        if self.length == 0 || self.value.is_null() {
            return Vec::new();
        }
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(self.value.cast::<u8>(), self.length) }.to_vec()
    }
}

/// `gss_OID_desc`.
#[repr(C)]
pub struct Oid {
    pub length: u32,
    pub elements: *mut c_void,
}

/// `gss_OID_set_desc`.
#[repr(C)]
pub struct OidSet {
    pub count: usize,
    pub elements: *mut Oid,
}

/// `gss_key_value_element_desc`.
#[repr(C)]
pub struct KeyValue {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// `gss_key_value_set_desc`.
#[repr(C)]
pub struct KeyValueSet {
    pub count: u32,
    pub elements: *const KeyValue,
}

pub type NameHandle = *mut c_void;
pub type CredHandle = *mut c_void;
pub type ContextHandle = *mut c_void;

pub const COMPLETE: u32 = 0;
pub const CONTINUE_NEEDED: u32 = 1;
/// The calling and routine error fields of a major status; supplementary bits are not errors.
pub const ERROR_MASK: u32 = 0xffff_0000;
pub const INDEFINITE: u32 = 0xffff_ffff;
pub const GSS_CODE: c_int = 1;
pub const MECH_CODE: c_int = 2;
pub const C_INITIATE: c_int = 1;
pub const C_ACCEPT: c_int = 2;
pub const MUTUAL_FLAG: u32 = 2;
pub const REPLAY_FLAG: u32 = 4;
pub const SEQUENCE_FLAG: u32 = 8;
pub const CONF_FLAG: u32 = 16;
pub const INTEG_FLAG: u32 = 32;

/// DER bodies of the object identifiers used: the Kerberos V5 mechanism (1.2.840.113554.1.2.2) and its
/// principal name type (1.2.840.113554.1.2.2.1), compared by value by the library.
pub const KRB5_MECHANISM: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
pub const KRB5_PRINCIPAL_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";

/// An OID descriptor over one of the constants above.
pub fn oid(body: &'static [u8]) -> Oid {
    Oid { length: body.len() as u32, elements: body.as_ptr().cast_mut().cast() }
}

type ImportName = unsafe extern "C" fn(*mut u32, *const Buffer, *const Oid, *mut NameHandle) -> u32;
type ReleaseName = unsafe extern "C" fn(*mut u32, *mut NameHandle) -> u32;
type DisplayName = unsafe extern "C" fn(*mut u32, NameHandle, *mut Buffer, *mut *mut Oid) -> u32;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut u32,
    NameHandle,
    u32,
    *const OidSet,
    c_int,
    *const KeyValueSet,
    *mut CredHandle,
    *mut *mut OidSet,
    *mut u32,
) -> u32;
type ReleaseCred = unsafe extern "C" fn(*mut u32, *mut CredHandle) -> u32;
type AcceptSecContext = unsafe extern "C" fn(
    *mut u32,
    *mut ContextHandle,
    CredHandle,
    *const Buffer,
    *const c_void,
    *mut NameHandle,
    *mut *mut Oid,
    *mut Buffer,
    *mut u32,
    *mut u32,
    *mut CredHandle,
) -> u32;
type InitSecContext = unsafe extern "C" fn(
    *mut u32,
    CredHandle,
    *mut ContextHandle,
    NameHandle,
    *const Oid,
    u32,
    u32,
    *const c_void,
    *const Buffer,
    *mut *mut Oid,
    *mut Buffer,
    *mut u32,
    *mut u32,
) -> u32;
type Wrap = unsafe extern "C" fn(*mut u32, ContextHandle, c_int, u32, *const Buffer, *mut c_int, *mut Buffer) -> u32;
type Unwrap = unsafe extern "C" fn(*mut u32, ContextHandle, *const Buffer, *mut Buffer, *mut c_int, *mut u32) -> u32;
type ReleaseBuffer = unsafe extern "C" fn(*mut u32, *mut Buffer) -> u32;
type DeleteSecContext = unsafe extern "C" fn(*mut u32, *mut ContextHandle, *mut Buffer) -> u32;
type DisplayStatus = unsafe extern "C" fn(*mut u32, u32, c_int, *const Oid, *mut u32, *mut Buffer) -> u32;
type Krb5InitContext = unsafe extern "C" fn(*mut *mut c_void) -> i32;
type Krb5FreeContext = unsafe extern "C" fn(*mut c_void);
type Krb5GetDefaultRealm = unsafe extern "C" fn(*mut c_void, *mut *mut c_char) -> i32;
type Krb5FreeDefaultRealm = unsafe extern "C" fn(*mut c_void, *mut c_char);

/// The library's entry points. The libraries stay loaded for the life of the process (the table lives in
/// a static), so the function pointers stay valid.
pub struct Api {
    pub import_name: ImportName,
    pub release_name: ReleaseName,
    pub display_name: DisplayName,
    pub acquire_cred_from: AcquireCredFrom,
    pub release_cred: ReleaseCred,
    pub accept_sec_context: AcceptSecContext,
    pub init_sec_context: InitSecContext,
    pub wrap: Wrap,
    pub unwrap: Unwrap,
    pub release_buffer: ReleaseBuffer,
    pub delete_sec_context: DeleteSecContext,
    pub display_status: DisplayStatus,
    pub krb5_init_context: Krb5InitContext,
    pub krb5_free_context: Krb5FreeContext,
    pub krb5_get_default_realm: Krb5GetDefaultRealm,
    pub krb5_free_default_realm: Krb5FreeDefaultRealm,
    _gssapi: libloading::Library,
    _krb5: libloading::Library,
}

const GSSAPI_LIBRARY: &str = "libgssapi_krb5.so.2";
const KRB5_LIBRARY: &str = "libkrb5.so.3";

/// The loaded library, or why it could not be loaded (the same answer every time).
pub fn api() -> Result<&'static Api, GssError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(|reason| GssError::Library(reason.clone()))
}

fn load() -> Result<Api, String> {
    // SAFETY: MIT's libraries run no initialisers with preconditions on the caller.
    let open = |name: &str| unsafe { libloading::Library::new(name) }.map_err(|e| format!("{name}: {e}"));
    let gssapi = open(GSSAPI_LIBRARY)?;
    let krb5 = open(KRB5_LIBRARY)?;
    macro_rules! symbol {
        ($library:expr, $name:literal) => {
            // SAFETY: the type given by the field this initialises is the function's C prototype.
            *unsafe { $library.get(concat!($name, "\0").as_bytes()) }.map_err(|e| format!("{}: {e}", $name))?
        };
    }
    Ok(Api {
        import_name: symbol!(gssapi, "gss_import_name"),
        release_name: symbol!(gssapi, "gss_release_name"),
        display_name: symbol!(gssapi, "gss_display_name"),
        acquire_cred_from: symbol!(gssapi, "gss_acquire_cred_from"),
        release_cred: symbol!(gssapi, "gss_release_cred"),
        accept_sec_context: symbol!(gssapi, "gss_accept_sec_context"),
        init_sec_context: symbol!(gssapi, "gss_init_sec_context"),
        wrap: symbol!(gssapi, "gss_wrap"),
        unwrap: symbol!(gssapi, "gss_unwrap"),
        release_buffer: symbol!(gssapi, "gss_release_buffer"),
        delete_sec_context: symbol!(gssapi, "gss_delete_sec_context"),
        display_status: symbol!(gssapi, "gss_display_status"),
        krb5_init_context: symbol!(krb5, "krb5_init_context"),
        krb5_free_context: symbol!(krb5, "krb5_free_context"),
        krb5_get_default_realm: symbol!(krb5, "krb5_get_default_realm"),
        krb5_free_default_realm: symbol!(krb5, "krb5_free_default_realm"),
        _gssapi: gssapi,
        _krb5: krb5,
    })
}

/// The library's text for a failed call: the GSS-API status, then the mechanism's (Kerberos') own.
pub fn status_text(api: &Api, major: u32, minor: u32) -> String {
    let mut parts = Vec::new();
    for (code, kind) in [(major, GSS_CODE), (minor, MECH_CODE)] {
        if code == 0 {
            continue;
        }
        let mut context = 0u32;
        loop {
            let mut ignored = 0u32;
            let mut text = Buffer::EMPTY;
            let krb5 = oid(KRB5_MECHANISM);
            // SAFETY: every pointer is to a live local; the buffer is released below.
            let status = unsafe { (api.display_status)(&mut ignored, code, kind, &krb5, &mut context, &mut text) };
            if status & ERROR_MASK != 0 {
                break;
            }
            // SAFETY: filled in by the library.
            parts.push(String::from_utf8_lossy(&unsafe { text.to_vec() }).into_owned());
            // SAFETY: a buffer the library allocated.
            unsafe { (api.release_buffer)(&mut ignored, &mut text) };
            if context == 0 {
                break;
            }
        }
    }
    if parts.is_empty() { format!("GSS-API status {major:#x}/{minor}") } else { parts.join(": ") }
}
