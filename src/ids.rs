//! New ids. UUID version 7 (time-ordered, RFC 9562), as Handshake
//! generates them: consecutive ids sort together, so inserts land at the
//! right edge of the primary-key indexes instead of all over them. Ids
//! written before (version 4) and ids callers give are read and matched
//! like any other.

use uuid::Uuid;

/// A fresh, time-ordered id.
pub(crate) fn new_uuid() -> Uuid {
    Uuid::now_v7()
}
