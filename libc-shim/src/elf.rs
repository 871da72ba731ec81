//! ELF parsing and validation for the app: what bake checks before baking and what the
//! loader maps. OWNER: helper A1.
