//! (being written)

use super::support::*;
