//! How the mSPRT's A/A false-positive rate approaches alpha as the
//! monitoring horizon grows (peeking every 100 observations per arm).
//! Each batch's mean and sum of squares are drawn exactly (normal and
//! scaled chi-square), so a look costs O(1).
//!
//! `cargo run --release -p flightdeck-stats --example aa_horizon`
#![allow(clippy::print_stdout)] // An example reports on stdout.

use flightdeck_stats::{SequentialMonitor, Summary};
use rand::SeedableRng;
use rand_distr::{ChiSquared, Distribution, Normal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sigma, batch) = (10.0f64, 100u64);
    let mean_dist = Normal::new(0.0, sigma / (batch as f64).sqrt())?;
    let m2_dist = ChiSquared::new((batch - 1) as f64)?;
    for looks in [20usize, 200, 2_000, 10_000] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let experiments = 2000;
        let mut hits = 0;
        for _ in 0..experiments {
            let mut monitor = SequentialMonitor::new(0.05, 2_000.0)?;
            let (mut a, mut b) = (Summary::new(), Summary::new());
            for _ in 0..looks {
                for s in [&mut a, &mut b] {
                    let mean = 50.0 + mean_dist.sample(&mut rng);
                    let var = sigma * sigma * m2_dist.sample(&mut rng) / (batch - 1) as f64;
                    s.merge(&Summary::from_moments(batch, mean, var)?);
                }
                if monitor.update(&a, &b)?.reject {
                    hits += 1;
                    break;
                }
            }
        }
        println!(
            "{looks:>6} looks (up to {:>9} per arm): false-positive rate {:.4}",
            looks as u64 * batch,
            hits as f64 / experiments as f64
        );
    }
    Ok(())
}
