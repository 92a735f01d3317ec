//! Error responses, encoded as one code byte with a catch-all for unknown codes.

macro_rules! wire_error {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal => $msg:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
        #[serde(from = "u8", into = "u8")]
        pub enum $name {
            $($(#[$vdoc])* #[error($msg)] $variant,)*
            /// An error this version does not know (a newer peer's), or a generic failure.
            #[error("other error")]
            Other,
        }
        impl From<u8> for $name {
            fn from(code: u8) -> Self {
                match code {
                    $($code => $name::$variant,)*
                    _ => $name::Other,
                }
            }
        }
        impl From<$name> for u8 {
            fn from(e: $name) -> u8 {
                match e {
                    $($name::$variant => $code,)*
                    $name::Other => 255,
                }
            }
        }
    };
}

wire_error!(
    /// Why a macro-chain request has no answer.
    MacroChainError {
        /// None of the locators is a known macro block on the main chain.
        UnknownLocators = 1 => "unknown locators",
    }
);

wire_error!(
    /// Why a batch-set request has no answer.
    BatchSetError {
        /// The block is unknown.
        TargetHashNotFound = 1 => "target block not found",
        /// The block is a micro block.
        MicroBlockGiven = 2 => "a micro block was given",
        /// The block is not on the main chain.
        NotOnMainChain = 3 => "target block is not on the main chain",
        /// The epoch's history is not available (pruned).
        HistoryUnavailable = 4 => "history not available",
    }
);

wire_error!(
    /// Why a history-chunk request has no answer.
    HistoryChunkError {
        /// No such epoch, verifier block or chunk index, or the history is pruned.
        CouldntProduceProof = 1 => "cannot produce that chunk",
    }
);

wire_error!(
    /// Why a block request has no answer.
    BlockRequestError {
        /// The block is unknown.
        TargetHashNotFound = 1 => "block not found",
    }
);

wire_error!(
    /// Why a missing-blocks request has no answer.
    MissingBlocksError {
        /// The target block is unknown.
        TargetHashNotFound = 1 => "target block not found",
        /// The target is not on the main chain.
        TargetBlockNotOnMainChain = 2 => "target block is not on the main chain",
        /// No locator is on the main chain.
        UnknownLocators = 3 => "unknown locators",
    }
);
