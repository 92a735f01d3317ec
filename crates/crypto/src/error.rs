//! Errors of the cryptographic primitives.

/// Why a key, a signature or a field element was rejected.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The bytes are not the canonical compressed encoding of a point on the curve (the y
    /// coordinate is not below the field modulus, no x exists for it, or the sign bit is set for
    /// x = 0).
    #[error("invalid curve point encoding (not canonical or not on the curve)")]
    InvalidPoint,
    /// The point is on the curve but not in its prime-order subgroup (it has a component of
    /// order 2 or 4).
    #[error("curve point is not in the prime-order subgroup (small-order component)")]
    SmallSubgroupPoint,
    /// The public key is the identity point, which every secret key "zero" would produce.
    #[error("public key is the identity point")]
    IdentityKey,
    /// A signature's `s` is not below the scalar-field modulus (rejected against malleability).
    #[error("non-canonical scalar (not below the scalar-field modulus)")]
    NonCanonicalScalar,
    /// A field element's bytes are not below the base-field modulus.
    #[error("non-canonical field element (not below the field modulus)")]
    NonCanonicalField,
    /// The signature does not verify for this key and message.
    #[error("invalid signature")]
    InvalidSignature,
    /// An item of a batch failed verification.
    #[error("batch item {index} failed verification: {reason}")]
    BatchItemInvalid {
        /// The position of the first failing item in the batch.
        index: usize,
        /// Why that item failed.
        reason: Box<CryptoError>,
    },
}
