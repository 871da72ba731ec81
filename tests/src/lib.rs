//! Integration test support. OWNER helper C.
