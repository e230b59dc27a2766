//! NumPy images in, NumPy images out: a batch of same-sized images that Python holds as a
//! named `(n, h, w, c)` `uint8` array (`python/shmpool_shm.py`) run through an image pipeline
//! by a pool of Rust worker processes ([`shmpool_kernels::imaging::batch`]), into a named output
//! array Python then reads; no pixel is copied or serialized between the two.
//!
//! `python/image_batch.py` drives it: it makes a photo-like batch with NumPy, asks this program
//! for the output's shape, creates the output array, runs the pipeline here and checks the
//! result against Pillow (or NumPy for the operations it has) within the tolerances of
//! `kernels/tests/oracle_imaging.rs`, then unlinks both arrays:
//!
//! ```sh
//! cargo build --release --example image_batch
//! python3 python/image_batch.py target/release/examples/image_batch --n 16 --h 480 --w 640 \
//!     --pipeline "resize=320x240; flip=h; rotate=90"
//! ```
//!
//! By hand:
//!
//! - `image_batch shape IN PIPELINE` prints the shape (`n h w c`) the pipeline makes of the
//!   images in the array named `IN`;
//! - `image_batch run IN OUT PIPELINE [WORKERS]` runs it from `IN` into `OUT` (which has that
//!   shape) on a pool of `WORKERS` processes (default 2).
//!
//! `PIPELINE` is operations separated by `;` (`"resize=640x480; blur=1.5"`, the `Op` syntax of
//! `shmpool images --op`). Exit status 2 for a usage error, 1 for anything that failed, with
//! the reason (and its fix) on stderr.

use shmpool::{Pool, SharedArray};
use shmpool_kernels::imaging::{Pipeline, batch};

const USAGE: &str = "usage: image_batch shape IN PIPELINE | image_batch run IN OUT PIPELINE [WORKERS]  \
                     (IN, OUT: named shmpool u8 arrays of shape (n, h, w, c) or (h, w, c); see python/image_batch.py)";

/// Opens the named `u8` array.
fn open(name: &str) -> Result<SharedArray<u8>, String> {
    // SAFETY: the Python driver does not touch the arrays until this program has exited, and
    // nothing else maps them: no one writes them behind this program's back.
    unsafe { SharedArray::<u8>::open(name) }.map_err(|e| format!("cannot open `{name}`: {e}"))
}

fn run(args: &[&str]) -> Result<(), String> {
    let parse = |text: &str| text.parse::<Pipeline>().map_err(|e| e.to_string());
    match *args {
        ["shape", input, pipeline] => {
            let dims = batch::output_shape(&parse(pipeline)?, open(input)?.shape())
                .map_err(|e| e.to_string())?;
            let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
            println!("{}", dims.join(" "));
            Ok(())
        }
        ["run", input, output, pipeline, ref rest @ ..] if rest.len() <= 1 => {
            let workers = match rest.first() {
                Some(w) => {
                    w.parse().map_err(|_| format!("WORKERS `{w}` is not a count; {USAGE}"))?
                }
                None => 2,
            };
            let pipeline = parse(pipeline)?;
            let input = open(input)?;
            let mut out = open(output)?;
            let mut pool = Pool::new(workers).map_err(|e| e.to_string())?;
            let t = std::time::Instant::now();
            batch::apply_into(&mut pool, &pipeline, &input, &mut out).map_err(|e| e.to_string())?;
            println!(
                "{:?} -> {:?} through `{}` with {workers} worker processes in {:.1} ms",
                input.shape(),
                out.shape(),
                pipeline.to_string().replace('\n', "; "),
                t.elapsed().as_secs_f64() * 1e3
            );
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Err(e) = run(&args) {
        eprintln!("image_batch: {e}");
        std::process::exit(1);
    }
}
