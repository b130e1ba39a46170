//! The switch engine. (On branch `gke` only: an empty module so that `main`'s
//! `pub mod switch;` compiles until the engine is committed there; merging `main` replaces it.)
