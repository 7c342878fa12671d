//! The only `unsafe` code in the workspace: OpenSSL calls that the `openssl` crate does not bind.
//!
//! * `ENGINE_by_id` / `ENGINE_init` / `ENGINE_set_default` / `ENGINE_free`: load Debian's GOST engine
//!   (`libengine-gost-openssl`). On bookworm the GOST *provider* has digests only; signatures and key
//!   management exist only in the engine, so the engine is the one way to GOST R 34.10-2012.
//! * `EVP_PKEY_CTX_ctrl_str`: the engine's `paramset` control for GOST key generation.
//! * `EVP_PKEY_CTX_set1_id`: the SM2 distinguishing ID. OpenSSL 3.0 does not apply the GM/T 0009 default
//!   ID by itself, so it must be set explicitly on every sign and verify.
//! * `OBJ_sn2nid`: GOST 2012 NIDs have no constants in the crate.
//!
//! Every function checks its inputs and return codes and turns failures into `ErrorStack`s; no raw
//! pointer leaves this module.
#![allow(unsafe_code)]

use foreign_types_shared::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::{PkeyCtx, PkeyCtxRef};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;

unsafe extern "C" {
    fn ENGINE_by_id(id: *const c_char) -> *mut c_void;
    fn ENGINE_init(e: *mut c_void) -> c_int;
    fn ENGINE_set_default(e: *mut c_void, flags: c_uint) -> c_int;
    fn ENGINE_free(e: *mut c_void) -> c_int;
    fn EVP_PKEY_CTX_ctrl_str(
        ctx: *mut openssl_sys::EVP_PKEY_CTX,
        typ: *const c_char,
        value: *const c_char,
    ) -> c_int;
    fn EVP_PKEY_CTX_set1_id(
        ctx: *mut openssl_sys::EVP_PKEY_CTX,
        id: *const c_void,
        len: c_int,
    ) -> c_int;
}

const ENGINE_METHOD_ALL: c_uint = 0xFFFF;

static GOST_ENGINE: OnceLock<Result<(), String>> = OnceLock::new();

/// Loads and activates OpenSSL's `gost` engine once per process. The error text is OpenSSL's own
/// reason; callers add the package name.
pub(crate) fn load_gost_engine() -> Result<(), String> {
    GOST_ENGINE
        .get_or_init(|| {
            openssl::init();
            let id = CString::new("gost").map_err(|e| e.to_string())?;
            // SAFETY: `id` is a valid NUL-terminated string that outlives the call; the engine pointer is
            // checked for NULL before use and released with ENGINE_free after ENGINE_init took its own
            // functional reference, as the ENGINE API documents.
            unsafe {
                let e = ENGINE_by_id(id.as_ptr());
                if e.is_null() {
                    return Err(ErrorStack::get().to_string());
                }
                if ENGINE_init(e) != 1 {
                    let err = ErrorStack::get().to_string();
                    ENGINE_free(e);
                    return Err(err);
                }
                let ok = ENGINE_set_default(e, ENGINE_METHOD_ALL) == 1;
                let err = ErrorStack::get().to_string();
                ENGINE_free(e);
                if !ok {
                    return Err(err);
                }
            }
            Ok(())
        })
        .clone()
}

/// Looks up a NID by OpenSSL short name (`gost2012_256`, `md_gost12_512`, ...). `Nid::UNDEF` when unknown.
pub(crate) fn nid_from_short_name(short_name: &str) -> Nid {
    let Ok(s) = CString::new(short_name) else {
        return Nid::UNDEF;
    };
    // SAFETY: `s` is a valid NUL-terminated string for the duration of the call; OBJ_sn2nid only reads it.
    Nid::from_raw(unsafe { openssl_sys::OBJ_sn2nid(s.as_ptr()) })
}

/// Generates a GOST R 34.10-2012 key (`gost2012_256` or `gost2012_512`) with the named parameter set.
pub(crate) fn gost_keygen(
    alg_short_name: &str,
    paramset: &str,
) -> Result<PKey<Private>, ErrorStack> {
    let nid = nid_from_short_name(alg_short_name);
    let mut ctx = PkeyCtx::new_id(Id::from_raw(nid.as_raw()))?;
    ctx.keygen_init()?;
    let k = CString::new("paramset").map_err(|_| ErrorStack::get())?;
    let v = CString::new(paramset).map_err(|_| ErrorStack::get())?;
    // SAFETY: `ctx` is a live EVP_PKEY_CTX owned by this frame; both strings are NUL-terminated and outlive
    // the call.
    let rc = unsafe { EVP_PKEY_CTX_ctrl_str(ctx.as_ptr(), k.as_ptr(), v.as_ptr()) };
    if rc <= 0 {
        return Err(ErrorStack::get());
    }
    ctx.keygen()
}

/// Sets the SM2 distinguishing ID on a signing or verifying context, before the first update.
pub(crate) fn set_sm2_id<T>(pctx: &mut PkeyCtxRef<T>, id: &[u8]) -> Result<(), ErrorStack> {
    let len = c_int::try_from(id.len()).map_err(|_| ErrorStack::get())?;
    // SAFETY: `pctx` is a live context borrowed mutably for the call; OpenSSL copies `len` bytes from `id`.
    let rc = unsafe { EVP_PKEY_CTX_set1_id(pctx.as_ptr(), id.as_ptr().cast(), len) };
    if rc != 1 {
        return Err(ErrorStack::get());
    }
    Ok(())
}
