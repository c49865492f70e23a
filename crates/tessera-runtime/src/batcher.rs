//! One worker thread per loaded encoder, merging concurrent requests into budgeted batches.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tessera_core::{Embedder, Encoding};
use tokio::sync::oneshot;

use crate::RuntimeError;
use crate::packing::{Budget, pack};

/// How a model's worker forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Limits on one engine call.
    pub budget: Budget,
    /// How long the worker waits for more requests once it sees several arriving together. A
    /// lone request never waits.
    pub max_wait: Duration,
    /// Requests that may wait in the queue; one more is refused with `Overloaded`.
    pub queue_capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            budget: Budget::default(),
            max_wait: Duration::from_millis(2),
            queue_capacity: 256,
        }
    }
}

type Reply = Result<Vec<Vec<f32>>, RuntimeError>;

struct Job {
    encodings: Vec<Encoding>,
    reply: oneshot::Sender<Reply>,
}

/// A cloneable handle to a model's worker; the last clone dropped stops the worker and joins it.
#[derive(Clone)]
pub(crate) struct Batcher {
    inner: Arc<Inner>,
}

struct Inner {
    model: String,
    capacity: usize,
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the worker's loop once the queued jobs are done.
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

impl Batcher {
    pub(crate) fn spawn(
        model: &str,
        embedder: Box<dyn Embedder>,
        config: BatchConfig,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(config.queue_capacity.max(1));
        let worker_model = model.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("tessera-{model}"))
            .spawn(move || run_worker(&worker_model, embedder, receiver, config))?;
        Ok(Batcher {
            inner: Arc::new(Inner {
                model: model.to_string(),
                capacity: config.queue_capacity,
                sender: Mutex::new(Some(sender)),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Queues `encodings` and returns the receiver of their vectors, or refuses when the queue is full.
    pub(crate) fn submit(
        &self,
        encodings: Vec<Encoding>,
    ) -> Result<oneshot::Receiver<Reply>, RuntimeError> {
        let (reply, receiver) = oneshot::channel();
        let unavailable = || RuntimeError::Unavailable {
            model: self.inner.model.clone(),
        };
        let sender = self
            .inner
            .sender
            .lock()
            .map_err(|_| unavailable())?
            .clone()
            .ok_or_else(unavailable)?;
        match sender.try_send(Job { encodings, reply }) {
            Ok(()) => Ok(receiver),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("tessera_requests_refused_total", "model" => self.inner.model.clone(), "reason" => "queue_full").increment(1);
                Err(RuntimeError::Overloaded {
                    model: self.inner.model.clone(),
                    capacity: self.inner.capacity,
                })
            }
            Err(TrySendError::Disconnected(_)) => Err(unavailable()),
        }
    }

    pub(crate) async fn run(&self, encodings: Vec<Encoding>) -> Reply {
        let receiver = self.submit(encodings)?;
        receiver.await.map_err(|_| RuntimeError::Unavailable {
            model: self.inner.model.clone(),
        })?
    }

    pub(crate) fn run_blocking(&self, encodings: Vec<Encoding>) -> Reply {
        let receiver = self.submit(encodings)?;
        receiver
            .blocking_recv()
            .map_err(|_| RuntimeError::Unavailable {
                model: self.inner.model.clone(),
            })?
    }
}

fn run_worker(
    model: &str,
    mut embedder: Box<dyn Embedder>,
    queue: Receiver<Job>,
    config: BatchConfig,
) {
    while let Ok(first) = queue.recv() {
        let jobs = gather(first, &queue, &config);
        // A caller that left (closed its reply channel) costs no compute.
        let (live, gone): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|job| !job.reply.is_closed());
        if !gone.is_empty() {
            metrics::counter!("tessera_requests_dropped_total", "model" => model.to_string())
                .increment(gone.len() as u64);
        }
        if !live.is_empty() {
            run_jobs(model, embedder.as_mut(), live, config.budget);
        }
    }
    tracing::debug!(model, "worker stopped");
}

/// Takes whatever is already queued; if that shows several requests arriving together, waits up
/// to `max_wait` for more while the batch is under budget.
fn gather(first: Job, queue: &Receiver<Job>, config: &BatchConfig) -> Vec<Job> {
    let mut tokens: usize = first.encodings.iter().map(Encoding::len).sum();
    let mut jobs = vec![first];
    let under_budget = |tokens: usize, jobs: &Vec<Job>| {
        tokens < config.budget.max_tokens
            && jobs.iter().map(|j| j.encodings.len()).sum::<usize>() < config.budget.max_rows
    };
    while under_budget(tokens, &jobs) {
        match queue.try_recv() {
            Ok(job) => {
                tokens += job.encodings.iter().map(Encoding::len).sum::<usize>();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    if jobs.len() > 1 {
        let deadline = Instant::now() + config.max_wait;
        while under_budget(tokens, &jobs) {
            let left = deadline.saturating_duration_since(Instant::now());
            match queue.recv_timeout(left) {
                Ok(job) => {
                    tokens += job.encodings.iter().map(Encoding::len).sum::<usize>();
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    jobs
}

/// Runs every sequence of every job through the engine in length-aware batches and replies to each job.
fn run_jobs(model: &str, embedder: &mut dyn Embedder, jobs: Vec<Job>, budget: Budget) {
    let sequences: Vec<(usize, &Encoding)> = jobs
        .iter()
        .enumerate()
        .flat_map(|(job, j)| j.encodings.iter().map(move |e| (job, e)))
        .collect();
    let lengths: Vec<usize> = sequences.iter().map(|(_, e)| e.len()).collect();
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; sequences.len()];
    let mut failure: Option<String> = None;
    let started = Instant::now();
    for batch in pack(&lengths, budget) {
        // Callers that left (disconnected, timed out) while earlier batches ran cost no more compute.
        if batch
            .iter()
            .all(|&i| jobs[sequences[i].0].reply.is_closed())
        {
            continue;
        }
        let inputs: Vec<&Encoding> = batch.iter().map(|&i| sequences[i].1).collect();
        metrics::histogram!("tessera_batch_rows", "model" => model.to_string())
            .record(inputs.len() as f64);
        match embedder.embed(&inputs) {
            Ok(outputs) if outputs.len() == batch.len() => {
                for (index, vector) in batch.into_iter().zip(outputs) {
                    vectors[index] = Some(vector);
                }
            }
            Ok(outputs) => {
                failure = Some(format!(
                    "engine returned {} vectors for {} inputs",
                    outputs.len(),
                    batch.len()
                ));
                break;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    metrics::histogram!("tessera_inference_seconds", "model" => model.to_string())
        .record(started.elapsed().as_secs_f64());
    let mut vectors = vectors.into_iter();
    for job in jobs {
        let count = job.encodings.len();
        let reply = match &failure {
            Some(message) => Err(RuntimeError::Inference {
                model: model.to_string(),
                message: message.clone(),
            }),
            None => Ok(vectors.by_ref().take(count).flatten().collect()),
        };
        let _ = job.reply.send(reply);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tessera_core::EmbedderError;

    use super::*;

    /// Records the rows of every engine call; the first call blocks until released, so requests
    /// queue up behind it deterministically.
    struct Recorder {
        calls: Arc<Mutex<Vec<usize>>>,
        gate: Arc<AtomicBool>,
    }

    impl Embedder for Recorder {
        fn dimensions(&self) -> usize {
            1
        }

        fn embed(&mut self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedderError> {
            while !self.gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.calls.lock().unwrap().push(batch.len());
            if batch.iter().any(|e| e.ids.first() == Some(&666)) {
                return Err(EmbedderError::Inference {
                    engine: "test",
                    message: "boom".into(),
                });
            }
            // The vector is the first id, so replies can be matched to their inputs.
            Ok(batch.iter().map(|e| vec![e.ids[0] as f32]).collect())
        }
    }

    fn encoding(id: u32, len: usize) -> Encoding {
        Encoding {
            ids: vec![id; len],
            type_ids: vec![0; len],
        }
    }

    fn recorder() -> (Box<Recorder>, Arc<Mutex<Vec<usize>>>, Arc<AtomicBool>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(AtomicBool::new(false));
        (
            Box::new(Recorder {
                calls: calls.clone(),
                gate: gate.clone(),
            }),
            calls,
            gate,
        )
    }

    #[test]
    fn queued_requests_are_merged_and_each_gets_its_own_vectors() {
        let (engine, calls, gate) = recorder();
        let batcher = Batcher::spawn("test", engine, BatchConfig::default()).unwrap();
        let first = batcher.submit(vec![encoding(1, 4)]).unwrap();
        std::thread::sleep(Duration::from_millis(20)); // the worker is now blocked inside the first call
        let rest: Vec<_> = (2..=9)
            .map(|id| {
                batcher
                    .submit(vec![encoding(id, 4), encoding(id + 100, 4)])
                    .unwrap()
            })
            .collect();
        gate.store(true, Ordering::SeqCst);
        assert_eq!(first.blocking_recv().unwrap().unwrap(), vec![vec![1.0]]);
        for (id, receiver) in (2..=9).zip(rest) {
            assert_eq!(
                receiver.blocking_recv().unwrap().unwrap(),
                vec![vec![id as f32], vec![(id + 100) as f32]]
            );
        }
        assert_eq!(
            *calls.lock().unwrap(),
            vec![1, 16],
            "the 8 queued requests ran as one batch"
        );
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let (engine, _, gate) = recorder();
        let config = BatchConfig {
            queue_capacity: 2,
            ..BatchConfig::default()
        };
        let batcher = Batcher::spawn("test", engine, config).unwrap();
        let running = batcher.submit(vec![encoding(1, 2)]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let queued: Vec<_> = (0..2)
            .map(|_| batcher.submit(vec![encoding(2, 2)]).unwrap())
            .collect();
        let refused = batcher.submit(vec![encoding(3, 2)]);
        assert!(matches!(
            refused,
            Err(RuntimeError::Overloaded { capacity: 2, .. })
        ));
        gate.store(true, Ordering::SeqCst);
        assert!(running.blocking_recv().unwrap().is_ok());
        for receiver in queued {
            assert!(receiver.blocking_recv().unwrap().is_ok());
        }
    }

    #[test]
    fn a_caller_that_left_costs_no_compute_and_an_engine_error_reaches_only_its_batch() {
        let (engine, calls, gate) = recorder();
        let batcher = Batcher::spawn("test", engine, BatchConfig::default()).unwrap();
        let running = batcher.submit(vec![encoding(1, 2)]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(batcher.submit(vec![encoding(2, 2)]).unwrap()); // the client disconnects
        gate.store(true, Ordering::SeqCst);
        assert!(running.blocking_recv().unwrap().is_ok());
        let failing = batcher.run_blocking(vec![encoding(666, 2)]);
        assert!(
            matches!(failing, Err(RuntimeError::Inference { .. })),
            "{failing:?}"
        );
        assert_eq!(
            batcher.run_blocking(vec![encoding(5, 2)]).unwrap(),
            vec![vec![5.0]]
        );
        assert_eq!(
            *calls.lock().unwrap(),
            vec![1, 1, 1],
            "the abandoned request never reached the engine"
        );
    }
}
