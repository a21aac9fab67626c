//! GrowthBook's encrypted payloads: AES-128-CBC with PKCS#7 padding, as
//! `base64(iv) + "." + base64(ciphertext)`, keyed by a base64 16-byte key.

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::DecryptError;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Base64 as the browser's `atob` reads it: padding optional.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decrypts `encrypted` with `key`.
///
/// ```
/// use flightdeck_flags::decrypt;
/// let plain = decrypt(
///     "m5ylFM6ndyOJA2OPadubkw==.Uu7ViqgKEt/dWvCyhI46q088PkAEJbnXKf3KPZjf9IEQQ+A8fojNoxw4wIbPX3aj",
///     "Zvwv/+uhpFDznZ6SX28Yjg==",
/// ).unwrap();
/// assert_eq!(plain, r#"{"feature":{"defaultValue":true}}"#);
/// ```
///
/// # Errors
///
/// [`DecryptError`] naming what is wrong: the key, the payload's shape, or
/// the decryption itself (a wrong key almost always fails the padding check).
pub fn decrypt(encrypted: &str, key: &str) -> Result<String, DecryptError> {
    let key = B64.decode(key.trim()).map_err(|_| DecryptError::BadKey)?;
    let key: [u8; 16] = key.try_into().map_err(|_| DecryptError::BadKey)?;
    let (iv, body) = encrypted.split_once('.').ok_or(DecryptError::BadPayload)?;
    let iv = B64.decode(iv).map_err(|_| DecryptError::BadPayload)?;
    let iv: [u8; 16] = iv.try_into().map_err(|_| DecryptError::BadPayload)?;
    let body = B64.decode(body).map_err(|_| DecryptError::BadPayload)?;
    let plain = Aes128CbcDec::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&body)
        .map_err(|_| DecryptError::Failed)?;
    // The browser's TextDecoder replaces invalid UTF-8 rather than failing.
    Ok(String::from_utf8_lossy(&plain).into_owned())
}
