//! Capability ids: a leaf that everything else (manifest, policy, audit, errors) can name
//! without depending on any capability's code. Generated from the registry's one list.

macro_rules! define_ids {
    (
        baseline { $($bv:ident: $bk:ident => $bm:ident::$bt:ident),* $(,)? }
        imports { $($iv:ident: $ik:ident => $im:ident::$it:ident),* $(,)? }
        exports { $($ev:ident: $ek:ident => $em:ident::$et:ident),* $(,)? }
    ) => {
        /// Every capability the host knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CapabilityId {
            $( $bv, )*
            $( $iv, )*
            $( $ev, )*
        }

        impl CapabilityId {
            /// Every capability, in registry order.
            pub const ALL: &[CapabilityId] = &[
                $( CapabilityId::$bv, )*
                $( CapabilityId::$iv, )*
                $( CapabilityId::$ev, )*
            ];
        }
    };
}

for_each_capability!(define_ids);
