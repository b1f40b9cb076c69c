//! Helpers shared by the tutorial examples and the integration tests.
