"""ferry's local AWS world: moto in server mode plus the project's own AWS rules,
a simulated clock, faults on demand and a Lambda runner for the real Rust binaries."""
