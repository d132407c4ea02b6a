//! Matrix factorisation with Bayesian personalised ranking, on candle.
//!
//! For sampled triples (user u, engaged item i, other item j) it minimises
//! `softplus(-(p_u · (q_i - q_j)))` plus L2 regularisation of the rows in the
//! batch, with AdamW. Sampling and initialisation are seeded, so a run is
//! reproducible on the same data.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::{Dataset, Result};

/// Hyper-parameters of BPR.
#[derive(Clone, Debug, PartialEq)]
pub struct BprConfig {
    /// Embedding dimensions.
    pub dims: usize,
    /// Passes over the positive pairs.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// L2 weight on the rows of each batch.
    pub reg: f64,
    /// Triples per step.
    pub batch: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for BprConfig {
    fn default() -> Self {
        Self { dims: 32, epochs: 30, lr: 0.02, reg: 1e-4, batch: 1024, seed: 42 }
    }
}

impl BprConfig {
    /// The parameters as manifest entries.
    pub fn to_params(&self) -> BTreeMap<String, serde_json::Value> {
        [
            ("algorithm", json!("bpr")),
            ("dims", json!(self.dims)),
            ("epochs", json!(self.epochs)),
            ("lr", json!(self.lr)),
            ("reg", json!(self.reg)),
            ("batch", json!(self.batch)),
            ("seed", json!(self.seed)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// The training device: CUDA when built with the `cuda` feature and a GPU is present, else CPU.
pub fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    Device::Cpu
}

fn init(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.random::<f32>() - 0.5) * 2.0 * scale).collect()
}

/// Trains BPR; returns user factors, item factors (row major) and the last epoch's mean loss.
pub fn train(ds: &Dataset, cfg: &BprConfig) -> Result<(Vec<f32>, Vec<f32>, f32)> {
    let dev = device();
    let (nu, ni, d) = (ds.users.len(), ds.items.len(), cfg.dims);
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let scale = 0.1;
    let user = Var::from_tensor(&Tensor::from_vec(init(&mut rng, nu * d, scale), (nu, d), &dev)?)?;
    let item = Var::from_tensor(&Tensor::from_vec(init(&mut rng, ni * d, scale), (ni, d), &dev)?)?;
    let mut opt = AdamW::new(
        vec![user.clone(), item.clone()],
        ParamsAdamW { lr: cfg.lr, weight_decay: 0.0, ..Default::default() },
    )?;
    let mut pairs: Vec<(u32, u32)> =
        ds.positives.iter().enumerate().flat_map(|(u, items)| items.iter().map(move |&i| (u as u32, i))).collect();
    let mut last_loss = f32::NAN;
    for _epoch in 0..cfg.epochs {
        pairs.shuffle(&mut rng);
        let (mut total, mut steps) = (0f32, 0usize);
        for chunk in pairs.chunks(cfg.batch.max(1)) {
            let b = chunk.len();
            let mut us = Vec::with_capacity(b);
            let mut is = Vec::with_capacity(b);
            let mut js = Vec::with_capacity(b);
            for &(u, i) in chunk {
                let pos = &ds.positives[u as usize];
                let mut j = rng.random_range(0..ni as u32);
                // A few tries to find an item the user did not engage with.
                for _ in 0..8 {
                    if pos.binary_search(&j).is_err() {
                        break;
                    }
                    j = rng.random_range(0..ni as u32);
                }
                us.push(u);
                is.push(i);
                js.push(j);
            }
            let ut = Tensor::from_vec(us, b, &dev)?;
            let it = Tensor::from_vec(is, b, &dev)?;
            let jt = Tensor::from_vec(js, b, &dev)?;
            let ue = user.as_tensor().index_select(&ut, 0)?;
            let ie = item.as_tensor().index_select(&it, 0)?;
            let je = item.as_tensor().index_select(&jt, 0)?;
            let x = (&ue * (&ie - &je)?)?.sum(1)?;
            // softplus(-x) = relu(-x) + ln(1 + exp(-|x|)), stable for any x.
            let z = x.neg()?;
            let softplus = (z.relu()? + z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
            let loss = softplus.mean_all()?;
            let reg = ((ue.sqr()?.sum_all()? + ie.sqr()?.sum_all()?)? + je.sqr()?.sum_all()?)?
                .affine(cfg.reg / b as f64, 0.0)?;
            let objective = (&loss + reg)?;
            opt.backward_step(&objective)?;
            total += loss.to_scalar::<f32>()?;
            steps += 1;
        }
        last_loss = total / steps.max(1) as f32;
        tracing::debug!(epoch = _epoch, loss = last_loss, "bpr epoch");
    }
    let uf = user.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    let itf = item.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    Ok((uf, itf, last_loss))
}
