//! Operator-set secrets (capability `secrets`): only names declared and granted.

use crate::Error;

/// The value of secret `name`.
pub fn get(name: &str) -> Result<String, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::secrets::get(name).map_err(Error::from);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::secret(name);
}
