//! Customer lifetime value.
//!
//! 1. [`summarize`] turns transactions into each customer's calibration
//!    history ([`Rfm`]: repeat purchases x, recency tₓ and age T in weeks),
//!    mean repeat spend and holdout purchases, the way Fader, Hardie and Lee
//!    (2005) do: purchases on one day count once.
//! 2. [`BgNbd::fit`] estimates the BG/NBD model of repeat purchases by
//!    maximum likelihood; [`BgNbd::expected_purchases`] and
//!    [`BgNbd::p_alive`] predict from it.
//! 3. [`GammaGamma::fit`] estimates the Gamma-Gamma model of spend;
//!    [`GammaGamma::expected_spend`] predicts a customer's amount per purchase.
//! 4. [`lifetime_value`] combines them over a horizon, discounted.
//!
//! [`cdnow`] reads the CDNOW transaction files, on which the models were
//! first published; the special functions they need are in [`crate::special`]
//! (also reachable here as [`special`]).

pub mod bgnbd;
pub mod cdnow;
pub mod gamma_gamma;
mod optimize;
pub mod summary;
pub mod value;

pub use crate::special;

pub use bgnbd::{BgNbd, Fit};
pub use gamma_gamma::{GammaGamma, Spend};
pub use summary::{CustomerSummary, Periods, Rfm, Transaction, summarize};
pub use value::{Horizon, lifetime_value};
