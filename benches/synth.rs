//! Renderer speed: one 512x512 render on one thread, the same render plus encoding, and a
//! parallel batch of encoded items (what `scalpmap synth` does, minus the disk), whose
//! throughput is reported in photos per second.
//!
//! Run: `cargo bench --bench synth`. The target is 20 photos/s at 512x512 on 2 cores.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;
use scalpmap::synth::{make_item, render, scene_for, Overrides, PhotoFormat};

const SIZE: u32 = 512;

fn bench(c: &mut Criterion) {
    let ov = Overrides::default();
    let mut g = c.benchmark_group("synth");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));

    // Cycle through items so the figure is a mean over views, patterns and hair lengths.
    let mut i = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("render_512_one_thread", |b| {
        b.iter(|| {
            i = (i + 1) % 64;
            render(&scene_for(1, i, &ov), SIZE)
        })
    });
    g.bench_function("render_and_encode_512_one_thread", |b| {
        b.iter(|| {
            i = (i + 1) % 64;
            make_item(1, i, SIZE, PhotoFormat::Jpeg, &ov).unwrap()
        })
    });

    let batch = 32u64;
    g.throughput(Throughput::Elements(batch));
    g.bench_with_input(BenchmarkId::new("batch_512_all_cores", batch), &batch, |b, &n| {
        b.iter(|| (0..n).into_par_iter().map(|k| make_item(2, k, SIZE, PhotoFormat::Jpeg, &ov).unwrap().photo.len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
