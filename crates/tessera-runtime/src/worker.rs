//! Worker threads for a loaded model (one per replica), fed by one bounded queue, running any
//! task's runner.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tessera_tasks::packing::Budget;
use tessera_tasks::registry::{AnyValue, Cancelled, DynRunner, DynStepRunner, EngineSide};
use tessera_tasks::{Batching, TaskError};
use tokio::sync::oneshot;

use crate::RuntimeError;

/// How a model's worker forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Limits on one engine call: its cost (`max_tokens`) and jobs (`max_rows`) bound a gathered
    /// batch too.
    pub budget: Budget,
    /// How long the worker waits for more jobs once it sees several arriving together. A lone
    /// job never waits.
    pub max_wait: Duration,
    /// Jobs that may wait in a model's queue; one more is refused with `Overloaded`.
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

/// What a job's caller gets back.
pub(crate) type Reply = Result<AnyValue, JobError>;

/// Why a job has no output.
#[derive(Debug)]
pub(crate) enum JobError {
    /// The task said no.
    Task(TaskError),
    /// The engine panicked while running the job's batch.
    Panicked(String),
}

struct Job {
    input: AnyValue,
    cost: usize,
    queued: Instant,
    span: tracing::Span,
    reply: oneshot::Sender<Reply>,
}

/// What a worker is told about its model.
#[derive(Clone)]
pub(crate) struct WorkerSpec {
    pub model: String,
    pub task: &'static str,
    pub batching: Batching,
    pub config: BatchConfig,
    pub panic_first_call: bool,
}

/// A handle to a model's worker. Dropping it closes the queue; the threads finish what is
/// queued and end on their own (never blocking the dropper, which may be an async thread or a
/// shutdown past its deadline). [`Worker::join`] also waits for them.
pub(crate) struct Worker {
    model: String,
    capacity: usize,
    depth: Arc<AtomicUsize>,
    sender: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.close();
    }
}

impl Worker {
    /// Starts one thread per runner (the model's replicas), all taking jobs from one queue. A
    /// step runner serves alone: continuous batching already shares it between requests.
    pub(crate) fn spawn(spec: WorkerSpec, runners: Vec<EngineSide>) -> std::io::Result<Worker> {
        let (sender, receiver) = mpsc::sync_channel(spec.config.queue_capacity.max(1));
        let queue = Arc::new(Mutex::new(receiver));
        let depth = Arc::new(AtomicUsize::new(0));
        let model = spec.model.clone();
        let capacity = spec.config.queue_capacity;
        let replicas = runners.len();
        let mut threads = Vec::with_capacity(replicas);
        for (index, runner) in runners.into_iter().enumerate() {
            let (spec, queue, depth) = (spec.clone(), queue.clone(), depth.clone());
            let name = match replicas {
                1 => format!("tessera-{}", spec.model),
                _ => format!("tessera-{}-{index}", spec.model),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || match runner {
                        EngineSide::Batch(runner) => run(spec, runner, &queue, depth, replicas),
                        EngineSide::Step(runner) => run_steps(spec, runner, &queue, depth),
                    })?,
            );
        }
        Ok(Worker {
            model,
            capacity,
            depth,
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
        })
    }

    /// Closes the queue and waits until the threads have finished what was queued and dropped
    /// the runners, so the engine's memory is free when this returns.
    pub(crate) fn join(self) {
        self.close();
        let threads = match self.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(_) => Vec::new(),
        };
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// Closes the queue and waits until `until` for the threads to finish. Returns whether they
    /// did (then the runners are dropped and the threads joined).
    pub(crate) fn stop_by(&self, until: Instant) -> bool {
        self.close();
        let Ok(mut threads) = self.threads.lock() else {
            return false;
        };
        while threads.iter().any(|t| !t.is_finished()) {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for thread in threads.drain(..) {
            let _ = thread.join();
        }
        true
    }

    fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
    }

    /// Jobs waiting in the queue now.
    pub(crate) fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Queues a job, or refuses at once when the queue is full.
    pub(crate) fn submit(
        &self,
        input: AnyValue,
        cost: usize,
    ) -> Result<oneshot::Receiver<Reply>, RuntimeError> {
        let (reply, receiver) = oneshot::channel();
        let unavailable = || RuntimeError::Unavailable {
            model: self.model.clone(),
        };
        let sender = self
            .sender
            .lock()
            .map_err(|_| unavailable())?
            .clone()
            .ok_or_else(unavailable)?;
        let job = Job {
            input,
            cost,
            queued: Instant::now(),
            span: tracing::Span::current(),
            reply,
        };
        self.depth.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(job) {
            Ok(()) => {
                publish_depth(&self.model, &self.depth);
                Ok(receiver)
            }
            Err(error) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                match error {
                    TrySendError::Full(_) => Err(RuntimeError::overloaded(
                        "queue_full",
                        format!(
                            "model `{}` is overloaded: its queue of {} requests is full; retry shortly",
                            self.model, self.capacity
                        ),
                    )),
                    TrySendError::Disconnected(_) => Err(unavailable()),
                }
            }
        }
    }
}

/// The queue the replicas share; a replica that panicked while holding it poisoned nothing
/// (the receiver has no state of its own to break).
fn receiver(queue: &Mutex<Receiver<Job>>) -> MutexGuard<'_, Receiver<Job>> {
    queue.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn run(
    spec: WorkerSpec,
    mut runner: Box<dyn DynRunner>,
    queue: &Mutex<Receiver<Job>>,
    depth: Arc<AtomicUsize>,
    replicas: usize,
) {
    let mut panic_next = spec.panic_first_call;
    let model = spec.model.as_str();
    loop {
        // One replica at a time forms its batch; with several, it takes its share of what is
        // queued, so jobs that arrive together are spread over the replicas.
        let jobs = {
            let queue = receiver(queue);
            let Ok(first) = queue.recv() else { break };
            let share = match replicas {
                1 => usize::MAX,
                _ => depth.load(Ordering::Relaxed).div_ceil(replicas).max(1),
            };
            gather(first, &queue, &spec, share)
        };
        depth.fetch_sub(jobs.len(), Ordering::Relaxed);
        publish_depth(model, &depth);
        // A caller that left (disconnected, past its deadline) costs no compute.
        let (live, gone): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|job| !job.reply.is_closed());
        if !gone.is_empty() {
            metrics::counter!("tessera_requests_dropped_total", "model" => model.to_string())
                .increment(gone.len() as u64);
        }
        if live.is_empty() {
            continue;
        }
        let mut inputs = Vec::with_capacity(live.len());
        let mut waiters = Vec::with_capacity(live.len());
        for job in live {
            stage(spec.task, model, "queue", job.queued.elapsed());
            inputs.push(job.input);
            waiters.push((job.span, job.reply));
        }
        metrics::histogram!("tessera_batch_jobs", "model" => model.to_string())
            .record(inputs.len() as f64);
        let started = Instant::now();
        let gone = |job: usize| waiters.get(job).is_none_or(|(_, reply)| reply.is_closed());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if std::mem::take(&mut panic_next) {
                panic!("injected by TESSERA_TEST_PANIC_FIRST_CALL");
            }
            runner.run_any(inputs, &Cancelled::new(&gone))
        }));
        stage(spec.task, model, "inference", started.elapsed());
        match outcome {
            Ok(outputs) if outputs.len() == waiters.len() => {
                for ((_, reply), output) in waiters.into_iter().zip(outputs) {
                    let _ = reply.send(output.map_err(JobError::Task));
                }
            }
            Ok(outputs) => {
                let message = format!(
                    "the runner returned {} results for {} jobs",
                    outputs.len(),
                    waiters.len()
                );
                for (span, reply) in waiters {
                    span.in_scope(|| tracing::error!(model, %message, "broken runner"));
                    let _ = reply.send(Err(JobError::Task(TaskError::Internal(message.clone()))));
                }
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                metrics::counter!("tessera_engine_panics_total", "model" => model.to_string())
                    .increment(1);
                for (span, reply) in waiters {
                    // Logged inside the job's span, so the request id is on the line.
                    span.in_scope(
                        || tracing::error!(model, panic = %message, "engine call panicked"),
                    );
                    let _ = reply.send(Err(JobError::Panicked(message.clone())));
                }
            }
        }
    }
    tracing::debug!(model, "worker stopped");
}

/// The loop of a step runner: admit queued jobs while it has room (blocking only when it has
/// nothing to do), then advance every admitted job one step. Each caller is answered as soon as
/// its job is admitted, with the handle its results arrive through. When the queue closes, the
/// admitted jobs still run to their end before the thread stops.
fn run_steps(
    spec: WorkerSpec,
    mut runner: Box<dyn DynStepRunner>,
    queue: &Mutex<Receiver<Job>>,
    depth: Arc<AtomicUsize>,
) {
    let model = spec.model.as_str();
    let mut open = true;
    let mut panic_next = spec.panic_first_call;
    loop {
        while open && runner.free_slots() > 0 {
            let next = if runner.busy() {
                match receiver(queue).try_recv() {
                    Ok(job) => Some(job),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        None
                    }
                }
            } else {
                match receiver(queue).recv() {
                    Ok(job) => Some(job),
                    Err(_) => {
                        open = false;
                        None
                    }
                }
            };
            let Some(job) = next else { break };
            depth.fetch_sub(1, Ordering::Relaxed);
            publish_depth(model, &depth);
            if job.reply.is_closed() {
                metrics::counter!("tessera_requests_dropped_total", "model" => model.to_string())
                    .increment(1);
                continue;
            }
            stage(spec.task, model, "queue", job.queued.elapsed());
            let Job {
                input, span, reply, ..
            } = job;
            let admitted = catch_unwind(AssertUnwindSafe(|| {
                if std::mem::take(&mut panic_next) {
                    panic!("injected by TESSERA_TEST_PANIC_FIRST_CALL");
                }
                runner.admit_any(input)
            }));
            let answer = match admitted {
                Ok(result) => result.map_err(JobError::Task),
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    metrics::counter!("tessera_engine_panics_total", "model" => model.to_string())
                        .increment(1);
                    span.in_scope(
                        || tracing::error!(model, panic = %message, "engine call panicked"),
                    );
                    Err(JobError::Panicked(message))
                }
            };
            let _ = reply.send(answer);
        }
        if !runner.busy() {
            if open {
                continue;
            }
            break;
        }
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| runner.step())) {
            let message = panic_message(panic.as_ref());
            metrics::counter!("tessera_engine_panics_total", "model" => model.to_string())
                .increment(1);
            tracing::error!(model, panic = %message, "engine step panicked; ending its jobs");
            runner.abort_all(&message);
        }
    }
    tracing::debug!(model, "worker stopped");
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Publishes a model's queue depth, after every change to it.
fn publish_depth(model: &str, depth: &AtomicUsize) {
    metrics::gauge!("tessera_model_queue_depth", "model" => model.to_string())
        .set(depth.load(Ordering::Relaxed) as f64);
}

/// Records one stage's latency for a task and model.
pub(crate) fn stage(task: &'static str, model: &str, stage: &'static str, elapsed: Duration) {
    metrics::histogram!("tessera_stage_seconds", "task" => task, "model" => model.to_string(), "stage" => stage)
        .record(elapsed.as_secs_f64());
}

/// Takes whatever is already queued, within the budget and at most `share` jobs; if that shows
/// several jobs arriving together, waits up to `max_wait` for more. Single-shot families take
/// one job at a time.
fn gather(first: Job, queue: &Receiver<Job>, spec: &WorkerSpec, share: usize) -> Vec<Job> {
    if spec.batching == Batching::Single {
        return vec![first];
    }
    let budget = spec.config.budget;
    let max_cost = match spec.batching {
        Batching::Pixels => budget.max_pixels,
        _ => budget.max_tokens,
    };
    let mut cost = first.cost;
    let mut jobs = vec![first];
    let most = budget.max_rows.min(share);
    let room = |cost: usize, jobs: &Vec<Job>| cost < max_cost && jobs.len() < most;
    while room(cost, &jobs) {
        match queue.try_recv() {
            Ok(job) => {
                cost += job.cost;
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    if jobs.len() > 1 {
        let deadline = Instant::now() + spec.config.max_wait;
        while room(cost, &jobs) {
            let left = deadline.saturating_duration_since(Instant::now());
            match queue.recv_timeout(left) {
                Ok(job) => {
                    cost += job.cost;
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use tessera_tasks::Runner;

    use super::*;

    /// Echoes each job's number; records the jobs of every call; the first call blocks until
    /// released, so jobs queue up behind it deterministically. Job 666 fails, 999 panics.
    struct Echo {
        calls: Arc<Mutex<Vec<usize>>>,
        gate: Arc<AtomicBool>,
    }

    impl Runner for Echo {
        type Input = u32;
        type Output = u32;

        fn run(&mut self, batch: Vec<u32>, _: &Cancelled<'_>) -> Vec<Result<u32, TaskError>> {
            while !self.gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.calls.lock().unwrap().push(batch.len());
            if batch.contains(&999) {
                panic!("boom");
            }
            batch
                .into_iter()
                .map(|n| {
                    if n == 666 {
                        Err(TaskError::InvalidInput("bad".into()))
                    } else {
                        Ok(n)
                    }
                })
                .collect()
        }
    }

    fn spec(batching: Batching, capacity: usize) -> WorkerSpec {
        WorkerSpec {
            model: "test".into(),
            task: "test",
            batching,
            config: BatchConfig {
                queue_capacity: capacity,
                ..BatchConfig::default()
            },
            panic_first_call: false,
        }
    }

    fn worker(
        batching: Batching,
        capacity: usize,
    ) -> (Worker, Arc<Mutex<Vec<usize>>>, Arc<AtomicBool>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(AtomicBool::new(false));
        let spec = spec(batching, capacity);
        let runner = Echo {
            calls: calls.clone(),
            gate: gate.clone(),
        };
        (
            Worker::spawn(spec, vec![EngineSide::Batch(Box::new(runner))]).unwrap(),
            calls,
            gate,
        )
    }

    fn answer(receiver: oneshot::Receiver<Reply>) -> Result<u32, String> {
        match receiver.blocking_recv().expect("a reply") {
            Ok(value) => Ok(*value.downcast::<u32>().expect("a u32")),
            Err(JobError::Task(e)) => Err(e.to_string()),
            Err(JobError::Panicked(m)) => Err(format!("panic: {m}")),
        }
    }

    /// Counts each job down from its number, one per step, sending every value; step 13
    /// panics when a job starts at 13.
    struct Countdown {
        jobs: Vec<(u32, std::sync::mpsc::Sender<Result<u32, String>>)>,
        slots: usize,
        steps: Arc<AtomicUsize>,
    }

    impl tessera_tasks::StepRunner for Countdown {
        type Input = u32;
        type Output = std::sync::mpsc::Receiver<Result<u32, String>>;

        fn free_slots(&self) -> usize {
            self.slots - self.jobs.len()
        }
        fn busy(&self) -> bool {
            !self.jobs.is_empty()
        }
        fn admit(&mut self, start: u32) -> Result<Self::Output, TaskError> {
            let (sender, receiver) = std::sync::mpsc::channel();
            self.jobs.push((start, sender));
            Ok(receiver)
        }
        fn step(&mut self) {
            self.steps.fetch_add(1, Ordering::SeqCst);
            if self.jobs.iter().any(|(n, _)| *n == 13) {
                panic!("unlucky");
            }
            // A job ends at zero, or when its caller dropped its receiver.
            self.jobs.retain_mut(|(n, sender)| {
                *n -= 1;
                sender.send(Ok(*n)).is_ok() && *n > 0
            });
        }
        fn abort_all(&mut self, message: &str) {
            for (_, sender) in self.jobs.drain(..) {
                let _ = sender.send(Err(message.to_string()));
            }
        }
    }

    fn stepping_worker(slots: usize) -> (Worker, Arc<AtomicUsize>) {
        let steps = Arc::new(AtomicUsize::new(0));
        let spec = spec(Batching::Continuous, BatchConfig::default().queue_capacity);
        let runner = Countdown {
            jobs: Vec::new(),
            slots,
            steps: steps.clone(),
        };
        (
            Worker::spawn(spec, vec![EngineSide::Step(Box::new(runner))]).unwrap(),
            steps,
        )
    }

    fn stream(
        receiver: oneshot::Receiver<Reply>,
    ) -> std::sync::mpsc::Receiver<Result<u32, String>> {
        match receiver.blocking_recv().expect("a reply") {
            Ok(value) => *value
                .downcast::<std::sync::mpsc::Receiver<Result<u32, String>>>()
                .expect("a stream"),
            Err(_) => panic!("admission failed"),
        }
    }

    #[test]
    fn a_step_runner_takes_new_jobs_between_steps_and_survives_a_panic() {
        let (worker, steps) = stepping_worker(4);
        // A job that would run for a billion steps: only a runner that takes new jobs between
        // steps can answer another one meanwhile.
        let long = stream(worker.submit(Box::new(1_000_000_000u32), 1).unwrap());
        assert_eq!(long.recv().unwrap(), Ok(999_999_999));
        let short = stream(worker.submit(Box::new(3u32), 1).unwrap());
        let values: Vec<u32> = short.iter().map(|v| v.unwrap()).collect();
        assert_eq!(values, vec![2, 1, 0]);
        assert!(steps.load(Ordering::SeqCst) > 0);
        // A panicking step ends every job with the panic's message; the worker goes on.
        let unlucky = stream(worker.submit(Box::new(13u32), 1).unwrap());
        assert_eq!(unlucky.recv().unwrap(), Err("unlucky".to_string()));
        let after = stream(worker.submit(Box::new(2u32), 1).unwrap());
        assert_eq!(after.recv().unwrap(), Ok(1));
        drop(long);
        worker.join();
    }

    #[test]
    fn stopping_waits_for_a_job_its_caller_still_wants_and_not_for_one_abandoned() {
        let (worker, _) = stepping_worker(4);
        // A job that would run for a billion steps keeps the worker past any deadline while
        // its caller listens.
        let long = stream(worker.submit(Box::new(1_000_000_000u32), 1).unwrap());
        assert_eq!(long.recv().unwrap(), Ok(999_999_999));
        let started = Instant::now();
        assert!(!worker.stop_by(Instant::now() + Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Its caller gone, it ends at the next step, and the thread with it.
        drop(long);
        assert!(worker.stop_by(Instant::now() + Duration::from_secs(10)));
        assert!(
            worker.submit(Box::new(1u32), 1).is_err(),
            "the queue is closed"
        );
    }

    /// Answers 1 when another replica is inside a call at the same time (within 5 s), else 0.
    struct Meet {
        inside: Arc<AtomicUsize>,
    }

    impl Runner for Meet {
        type Input = u32;
        type Output = u32;

        fn run(&mut self, batch: Vec<u32>, _: &Cancelled<'_>) -> Vec<Result<u32, TaskError>> {
            self.inside.fetch_add(1, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.inside.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let met = u32::from(self.inside.load(Ordering::SeqCst) >= 2);
            batch.into_iter().map(|_| Ok(met)).collect()
        }
    }

    #[test]
    fn replicas_take_jobs_from_one_queue_at_the_same_time() {
        let inside = Arc::new(AtomicUsize::new(0));
        let spec = spec(Batching::Budget, BatchConfig::default().queue_capacity);
        let runners = (0..2)
            .map(|_| {
                EngineSide::Batch(Box::new(Meet {
                    inside: inside.clone(),
                }))
            })
            .collect();
        let worker = Worker::spawn(spec, runners).unwrap();
        // Two jobs queued together are shared out, one to each replica, and both are inside
        // their engine call at once.
        let replies: Vec<_> = (0..2u32)
            .map(|n| worker.submit(Box::new(n), 1).unwrap())
            .collect();
        for reply in replies {
            assert_eq!(answer(reply), Ok(1));
        }
        worker.join();
    }

    #[test]
    fn queued_jobs_are_merged_and_each_gets_its_own_answer() {
        let (worker, calls, gate) = worker(Batching::Budget, 64);
        let first = worker.submit(Box::new(1u32), 4).unwrap();
        std::thread::sleep(Duration::from_millis(30)); // the worker now blocks inside the first call
        let rest: Vec<_> = (2..=9u32)
            .map(|n| worker.submit(Box::new(n), 4).unwrap())
            .collect();
        assert_eq!(worker.queue_depth(), 8);
        gate.store(true, Ordering::SeqCst);
        assert_eq!(answer(first), Ok(1));
        for (n, receiver) in (2..=9).zip(rest) {
            assert_eq!(answer(receiver), Ok(n));
        }
        assert_eq!(
            *calls.lock().unwrap(),
            vec![1, 8],
            "the 8 queued jobs ran as one batch"
        );
    }

    #[test]
    fn images_are_merged_up_to_the_pixel_budget() {
        let (worker, calls, gate) = worker(Batching::Pixels, 64);
        let image = 700_000; // pixels: two fit in the default budget of 4 × 640², a third tips it
        let first = worker.submit(Box::new(1u32), image).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let rest: Vec<_> = (2..=9u32)
            .map(|n| worker.submit(Box::new(n), image).unwrap())
            .collect();
        gate.store(true, Ordering::SeqCst);
        assert_eq!(answer(first), Ok(1));
        for (n, receiver) in (2..=9).zip(rest) {
            assert_eq!(answer(receiver), Ok(n));
        }
        assert_eq!(*calls.lock().unwrap(), vec![1, 3, 3, 2]);
    }

    #[test]
    fn single_shot_families_run_one_job_per_call() {
        let (worker, calls, gate) = worker(Batching::Single, 64);
        let receivers: Vec<_> = (1..=3u32)
            .map(|n| worker.submit(Box::new(n), 1).unwrap())
            .collect();
        gate.store(true, Ordering::SeqCst);
        for (n, receiver) in (1..=3).zip(receivers) {
            assert_eq!(answer(receiver), Ok(n));
        }
        assert_eq!(*calls.lock().unwrap(), vec![1, 1, 1]);
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let (worker, _, gate) = worker(Batching::Budget, 2);
        let running = worker.submit(Box::new(1u32), 1).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let queued: Vec<_> = (0..2)
            .map(|_| worker.submit(Box::new(2u32), 1).unwrap())
            .collect();
        let refused = worker.submit(Box::new(3u32), 1);
        assert!(
            matches!(
                refused,
                Err(RuntimeError::Overloaded {
                    reason: "queue_full",
                    ..
                })
            ),
            "{refused:?}"
        );
        gate.store(true, Ordering::SeqCst);
        assert_eq!(answer(running), Ok(1));
        for receiver in queued {
            assert_eq!(answer(receiver), Ok(2));
        }
    }

    #[test]
    fn errors_and_panics_reach_only_their_jobs_and_the_worker_keeps_serving() {
        let (worker, calls, gate) = worker(Batching::Budget, 64);
        let running = worker.submit(Box::new(1u32), 1).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        drop(worker.submit(Box::new(2u32), 1).unwrap()); // the caller leaves
        let failing = worker.submit(Box::new(666u32), 1).unwrap();
        let fine = worker.submit(Box::new(3u32), 1).unwrap();
        gate.store(true, Ordering::SeqCst);
        assert_eq!(answer(running), Ok(1));
        assert_eq!(answer(failing), Err("bad".to_string()));
        assert_eq!(answer(fine), Ok(3));
        let panicked = answer(worker.submit(Box::new(999u32), 1).unwrap());
        assert_eq!(panicked, Err("panic: boom".to_string()));
        assert_eq!(answer(worker.submit(Box::new(5u32), 1).unwrap()), Ok(5));
        assert_eq!(
            *calls.lock().unwrap(),
            vec![1, 2, 1, 1],
            "the abandoned job never reached the engine"
        );
    }
}
