//! The payload format bake appends to the kernel: app ELF, argv, env. OWNER: helper B.
