//! Version 0.2.0 of `settings`, whose schema allows at most 3 retries: installed over
//! stored settings with more, the upgrade is refused and 0.1.0 keeps serving.

include!("../../settings/src/plugin.rs");
