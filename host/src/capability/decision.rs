//! The outcome of manifest ∩ policy for one capability.

use super::Capability;
use serde::Serialize;

/// The three outcomes, as shown to operators (`granted`, `denied`, `not requested`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum Verdict {
    #[serde(rename = "granted")]
    Granted,
    #[serde(rename = "denied")]
    Denied,
    #[serde(rename = "not requested")]
    NotRequested,
}

impl Verdict {
    /// The word shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Granted => "granted",
            Verdict::Denied => "denied",
            Verdict::NotRequested => "not requested",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// manifest ∩ policy for one capability, with the grant when granted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision<G> {
    /// The manifest does not ask for it.
    NotRequested,
    /// Granted, with the bounds that apply.
    Granted { grant: G },
    /// Asked for but withheld; calls get the `denied` error and are audited.
    Denied { reason: String },
}

impl<G> Decision<G> {
    /// Decide capability `C` from the manifest's request and the policy's allowance.
    pub(crate) fn decide<C: Capability<Grant = G>>(
        requested: Option<&C::Request>,
        allowed: Option<&C::Allowed>,
    ) -> Decision<G> {
        match (requested, allowed) {
            (None, _) => Decision::NotRequested,
            (Some(_), None) => Decision::Denied {
                reason: "not granted by the operator's policy".into(),
            },
            (Some(request), Some(allowed)) => match C::grant(request, allowed) {
                Ok(grant) => Decision::Granted { grant },
                Err(reason) => Decision::Denied { reason },
            },
        }
    }

    /// The grant, if granted.
    pub fn granted(&self) -> Option<&G> {
        match self {
            Decision::Granted { grant } => Some(grant),
            _ => None,
        }
    }

    /// Which of the three outcomes this is.
    pub fn verdict(&self) -> Verdict {
        match self {
            Decision::NotRequested => Verdict::NotRequested,
            Decision::Granted { .. } => Verdict::Granted,
            Decision::Denied { .. } => Verdict::Denied,
        }
    }

    /// Why it was withheld, if it was.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Denied { reason } => Some(reason),
            _ => None,
        }
    }
}
