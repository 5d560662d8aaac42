//! Factor datasets shipped in the binary (to be written)
