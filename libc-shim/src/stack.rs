//! The initial stack (argc, argv, envp, auxv) laid out as Linux does. OWNER: helper A1.
