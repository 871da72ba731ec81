//! The syscall table and handlers. OWNER: helper A2.
