//! Loads the app ELF into the address space and builds its initial stack. OWNER: helper A1.
