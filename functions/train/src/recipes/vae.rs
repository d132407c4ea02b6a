//! Mult-VAE (Liang et al., 2018): a variational autoencoder over each user's
//! item set with a multinomial likelihood, trained on candle.
//!
//! Encoder: the user's L2-normalised item vector (with input dropout while
//! training) → `tanh` hidden layer → mean and log-variance of a `latent`
//! Gaussian; decoder: linear `latent → items` logits. The KL term's weight
//! rises linearly from 0 to `beta` over the first `anneal_epochs`. Served
//! as matrix factorisation: a user's factors are the encoder mean (plus a
//! constant 1), an item's factors are its decoder column (plus its bias), so
//! the dot product is the decoder logit.

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::Fitted;
use crate::{Dataset, Result, bpr::device};

/// Hyper-parameters of Mult-VAE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    /// Hidden layer width.
    pub hidden: usize,
    /// Latent dimensions.
    pub latent: usize,
    /// Epochs.
    pub epochs: usize,
    /// Users per step.
    pub batch: usize,
    /// Learning rate (AdamW).
    pub lr: f64,
    /// Weight decay (AdamW).
    pub weight_decay: f64,
    /// Input dropout probability while training.
    pub dropout: f64,
    /// Final KL weight.
    pub beta: f64,
    /// Epochs over which the KL weight rises to `beta`.
    pub anneal_epochs: usize,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self {
            hidden: 600,
            latent: 200,
            epochs: 25,
            batch: 128,
            lr: 3e-3,
            weight_decay: 0.0,
            dropout: 0.5,
            beta: 0.2,
            anneal_epochs: 12,
        }
    }
}

fn uniform(rng: &mut StdRng, rows: usize, cols: usize, dev: &Device) -> Result<Var> {
    let a = (6.0 / (rows + cols) as f32).sqrt();
    let v: Vec<f32> = (0..rows * cols).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * a).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(v, (rows, cols), dev)?)?)
}

fn zeros(n: usize, dev: &Device) -> Result<Var> {
    Ok(Var::from_tensor(&Tensor::zeros((1, n), DType::F32, dev)?)?)
}

/// The sparse, L2-normalised input rows of `users` as (row of each entry,
/// item of each entry, value), with items dropped with probability `dropout`
/// (and the rest scaled by `1 / (1 - dropout)`).
fn sparse_input(
    ds: &Dataset,
    users: &[usize],
    dropout: f64,
    rng: &mut StdRng,
    dev: &Device,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (mut rows, mut items, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (r, &u) in users.iter().enumerate() {
        let list = &ds.positives[u];
        let norm = 1.0 / (list.len().max(1) as f32).sqrt();
        let keep = 1.0 / (1.0 - dropout) as f32;
        for &i in list {
            if dropout <= 0.0 || rng.random::<f64>() >= dropout {
                rows.push(r as u32);
                items.push(i);
                values.push(if dropout > 0.0 { norm * keep } else { norm });
            }
        }
    }
    let n = values.len();
    Ok((Tensor::from_vec(rows, n, dev)?, Tensor::from_vec(items, n, dev)?, Tensor::from_vec(values, (n, 1), dev)?))
}

/// The dense, L2-normalised input rows of `users`, with items dropped with
/// probability `dropout` (and the rest scaled by `1 / (1 - dropout)`).
fn input(ds: &Dataset, users: &[usize], dropout: f64, rng: &mut StdRng, dev: &Device) -> Result<Tensor> {
    let n = ds.items.len();
    let mut x = vec![0f32; users.len() * n];
    for (r, &u) in users.iter().enumerate() {
        let items = &ds.positives[u];
        let norm = 1.0 / (items.len().max(1) as f32).sqrt();
        let keep = 1.0 / (1.0 - dropout) as f32;
        for &i in items {
            if dropout > 0.0 {
                if rng.random::<f64>() >= dropout {
                    x[r * n + i as usize] = norm * keep;
                }
            } else {
                x[r * n + i as usize] = norm;
            }
        }
    }
    Ok(Tensor::from_vec(x, (users.len(), n), dev)?)
}

/// Trains Mult-VAE and returns it as factors.
pub fn fit(ds: &Dataset, cfg: &VaeConfig, seed: u64) -> Result<Fitted> {
    let dev = device();
    let (nu, ni, h, z) = (ds.users.len(), ds.items.len(), cfg.hidden, cfg.latent);
    let mut rng = StdRng::seed_from_u64(seed);
    let w1 = uniform(&mut rng, ni, h, &dev)?;
    let b1 = zeros(h, &dev)?;
    let wmu = uniform(&mut rng, h, z, &dev)?;
    let bmu = zeros(z, &dev)?;
    let wlv = uniform(&mut rng, h, z, &dev)?;
    let blv = zeros(z, &dev)?;
    let wd = uniform(&mut rng, z, ni, &dev)?;
    let bd = zeros(ni, &dev)?;
    let vars = vec![w1.clone(), b1.clone(), wmu.clone(), bmu.clone(), wlv.clone(), blv.clone(), wd.clone(), bd.clone()];
    let mut opt = AdamW::new(vars, ParamsAdamW { lr: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() })?;
    // The first layer gathers the weight rows of the user's items (sparse input).
    let encode = |(rows, items, values): &(Tensor, Tensor, Tensor), b: usize| -> Result<(Tensor, Tensor)> {
        let gathered = w1.as_tensor().index_select(items, 0)?.broadcast_mul(values)?;
        let first = Tensor::zeros((b, h), DType::F32, &dev)?.index_add(rows, &gathered, 0)?;
        let hid = first.broadcast_add(b1.as_tensor())?.tanh()?;
        let mu = hid.matmul(wmu.as_tensor())?.broadcast_add(bmu.as_tensor())?;
        let lv = hid.matmul(wlv.as_tensor())?.broadcast_add(blv.as_tensor())?;
        Ok((mu, lv))
    };
    let mut order: Vec<usize> = (0..nu).filter(|&u| !ds.positives[u].is_empty()).collect();
    let steps_per_epoch = order.len().div_ceil(cfg.batch.max(1)).max(1);
    let anneal_steps = (cfg.anneal_epochs.max(1) * steps_per_epoch) as f64;
    let mut step = 0usize;
    for _epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch.max(1)) {
            let b = chunk.len();
            let target = input(ds, chunk, 0.0, &mut rng, &dev)?;
            let x = sparse_input(ds, chunk, cfg.dropout, &mut rng, &dev)?;
            let (mu, lv) = encode(&x, b)?;
            let eps: Vec<f32> = (0..b * z)
                .map(|_| {
                    // Box-Muller from the seeded generator keeps runs reproducible.
                    let (u1, u2) = (rng.random::<f32>().max(1e-7), rng.random::<f32>());
                    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
                })
                .collect();
            let eps = Tensor::from_vec(eps, (b, z), &dev)?;
            let sample = (&mu + (eps * lv.affine(0.5, 0.0)?.exp()?)?)?;
            let logits = sample.matmul(wd.as_tensor())?.broadcast_add(bd.as_tensor())?;
            let log_p = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            // The target is normalised; the multinomial log-likelihood uses the raw counts (binary).
            let present = target.ne(0f32)?.to_dtype(DType::F32)?;
            let nll = (log_p * present)?.sum_all()?.affine(-1.0 / b as f64, 0.0)?;
            let kl = ((lv.exp()? + mu.sqr()?)? - lv.affine(1.0, 1.0)?)?.sum_all()?.affine(0.5 / b as f64, 0.0)?;
            let beta = cfg.beta * (step as f64 / anneal_steps).min(1.0);
            let loss = (nll + kl.affine(beta, 0.0)?)?;
            opt.backward_step(&loss)?;
            step += 1;
        }
    }
    // Users' factors: encoder means on their full item sets, then a 1 for the bias.
    let all: Vec<usize> = (0..nu).collect();
    let mut users = Vec::with_capacity(nu * (z + 1));
    for chunk in all.chunks(512) {
        let (mu, _) = encode(&sparse_input(ds, chunk, 0.0, &mut rng, &dev)?, chunk.len())?;
        for row in mu.to_vec2::<f32>()? {
            users.extend(row);
            users.push(1.0);
        }
    }
    let wd = wd.as_tensor().t()?.contiguous()?.to_vec2::<f32>()?;
    let bd = bd.as_tensor().flatten_all()?.to_vec1::<f32>()?;
    let mut items = Vec::with_capacity(ni * (z + 1));
    for (col, b) in wd.into_iter().zip(bd) {
        items.extend(col);
        items.push(b);
    }
    Ok(Fitted::Factors { dims: z + 1, users, items })
}
