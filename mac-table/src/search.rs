//! How a reader compares a key with the keys of a bucket.

/// The way lookups compare a key with a bucket's five keys. Both give the same answers
/// (tested against each other); tables pick the fastest the CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// Five Acquire loads and five compares: any CPU.
    Scalar,
    /// Two 16-byte and one 8-byte vector loads and three `pcmpeqq`: x86-64 with SSE4.1.
    Sse41,
}

impl Search {
    /// The fastest search this CPU runs.
    pub fn detect() -> Search {
        if Search::Sse41.is_supported() {
            Search::Sse41
        } else {
            Search::Scalar
        }
    }

    /// Whether this CPU (and build) can run this search.
    pub fn is_supported(self) -> bool {
        match self {
            Search::Scalar => true,
            #[cfg(all(target_arch = "x86_64", not(loom)))]
            Search::Sse41 => std::arch::is_x86_feature_detected!("sse4.1"),
            #[cfg(not(all(target_arch = "x86_64", not(loom))))]
            Search::Sse41 => false,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Search::Scalar => "scalar",
            Search::Sse41 => "sse4.1",
        }
    }
}
